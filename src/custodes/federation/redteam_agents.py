"""Every agent of the alliance, for a red-teaming triage: this node's registry and the
registry tables of every peer mirrored here (``custodes.redteam.affected`` matches).

A mirror holds the same schema as a node's database, so one query reads both. An agent
retired or killed is still listed: a vulnerability affects it until it is patched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
from sqlalchemy import Engine, select

from custodes.federation.mirror import PeerMirror
from custodes.federation.state import Federation
from custodes.redteam.affected import AgentRow
from custodes.registry.store import agents, models
from custodes.store.db import read_tx

__all__ = ["AllianceAgents", "agent_rows"]


def _skills(record: str) -> frozenset[str]:
    found: set[str] = set()
    for skill in orjson.loads(record).get("skills", ()):
        found.add(str(skill["id"]))
        found.update(str(t) for t in skill.get("tags", ()))
    return frozenset(found)


def agent_rows(engine: Engine) -> list[AgentRow]:
    """The agents registered in ``engine``'s registry tables, with their models."""
    query = select(
        agents.c.id, agents.c.home, agents.c.operator, agents.c.model, agents.c.status,
        agents.c.record, models.c.record.label("model_record"),
    ).outerjoin(models, models.c.id == agents.c.model)  # fmt: skip
    with read_tx(engine) as conn:
        rows = conn.execute(query.order_by(agents.c.id)).all()
    found = []
    for row in rows:
        model = orjson.loads(row.model_record) if row.model_record else {}
        found.append(
            AgentRow(
                agent_id=row.id,
                home=row.home,
                operator=row.operator,
                model=row.model,
                model_name=model.get("name"),
                model_version=model.get("version"),
                skills=_skills(row.record),
                status=row.status,
            )
        )
    return found


class AllianceAgents:
    """The agent rows of this node and of every peer mirrored here."""

    def __init__(
        self,
        engine: Engine,
        federation: Federation,
        mirror_of: Callable[[str], PeerMirror | None],
    ) -> None:
        self._engine, self._federation, self._mirror_of = engine, federation, mirror_of

    def _engines(self) -> Iterator[Engine]:
        yield self._engine
        roster = self._federation.roster
        for party in [] if roster is None else roster.body.parties:
            if party.code == self._federation.jurisdiction:
                continue
            mirror = self._mirror_of(party.code)
            if mirror is not None:
                yield mirror.engine

    def __call__(self) -> list[AgentRow]:
        rows: dict[str, AgentRow] = {}
        for engine in self._engines():
            for row in agent_rows(engine):
                rows.setdefault(row.agent_id, row)  # an agent's home registry first
        return list(rows.values())

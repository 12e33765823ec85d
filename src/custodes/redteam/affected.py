"""Which agents a triage's criteria match (pure: rows in, ``Affected`` out).

The criteria are AVID-style ``Affects``: models (by registry id, ``model:...``, or by
name, case-insensitively), their versions (empty: every version), skills (an AgentCard
skill's id or one of its tags) and agents named outright. An agent is affected when it
is named, or runs a named model (of a named version, when versions are given), or has a
named skill. Where the rows come from (this node's registry and every peer mirror's) is
the adapter's business: ``custodes.federation.redteam_agents``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from custodes.redteam.models import Affected, Affects

__all__ = ["AgentRow", "find_affected"]


@dataclass(frozen=True)
class AgentRow:
    """One registered agent as the search sees it."""

    agent_id: str
    home: str
    operator: str
    model: str | None = None  # the registry id, model:...
    model_name: str | None = None
    model_version: str | None = None
    skills: frozenset[str] = frozenset()  # skill ids and tags
    status: str = "active"


def _model_match(criteria: Affects, row: AgentRow) -> list[str]:
    wanted = {m.lower() for m in criteria.models}
    names = {n.lower() for n in (row.model, row.model_name) if n}
    if not wanted or not wanted & names:
        return []
    if not criteria.versions:
        return ["model"]
    return ["model", "version"] if row.model_version in criteria.versions else []


def _matched(criteria: Affects, row: AgentRow) -> tuple[str, ...]:
    matched: list[str] = _model_match(criteria, row)
    if set(criteria.skills) & row.skills:
        matched.append("skill")
    if row.agent_id in criteria.agents:
        matched.append("named")
    return tuple(matched)


def find_affected(criteria: Affects, rows: Iterable[AgentRow]) -> tuple[Affected, ...]:
    """The agents of ``rows`` that ``criteria`` match, by agent id, once each."""
    found: dict[str, Affected] = {}
    for row in rows:
        matched = _matched(criteria, row)
        if not matched or row.agent_id in found:
            continue
        found[row.agent_id] = Affected(
            agent_id=row.agent_id,
            home=row.home,
            operator=row.operator,
            model=row.model,
            model_version=row.model_version,
            matched=matched,
        )
    return tuple(found[a] for a in sorted(found))

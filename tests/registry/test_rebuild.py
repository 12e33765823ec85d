"""custodes.registry.rebuild: the registry is exactly what a replay of the log says.

A mixed history (principals, operators, agents, updates, rotations, models, orders,
signer retirements, decisions with idempotency keys and their retries, refused writes)
rebuilds to equal tables on SQLite and PostgreSQL; a projection row changed behind the
log's back is found.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Connection, delete, select, update

from custodes.audits.store import AUDIT_TABLES
from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.store import idempotency, signers
from custodes.registry import rebuild
from custodes.registry.models import (
    AgentChanges,
    AgentRotateKey,
    AgentUpdate,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    Selector,
    Skill,
)
from custodes.registry.store import PROJECTION_TABLES, agents, kill_orders, private_fields
from custodes.sdk.decisions import sign_committed_decision
from custodes.store.db import write_tx
from tests.registry.support import (
    CONTACT,
    HOST,
    OTHER,
    World,
    b64,
    decision,
    fresh_slug,
    issue,
    now,
    order,
    register_agent,
    submit,
)


@dataclass(frozen=True)
class History:
    world: World
    revoked: str  # an agent revoked by its home regulator
    retired_key: str  # a key retired by rotation
    lifted_order: str  # a suspension lifted by a reinstate order
    decisions: int  # distinct decisions with an idempotency key


def _decisions(world: World, key: EnvelopeSigner, agent_id: str) -> int:
    log = world.node.log
    batch = [decision(key, agent_id, n, idempotency_key=f"k{n}") for n in range(5)]
    first = log.append(batch)
    assert log.append(batch[:3]) == first[:3]  # a retried batch: the original indices
    assert log.append([batch[4], decision(key, agent_id, 9)])[0] == first[4]
    within = decision(key, agent_id, 10, idempotency_key="k10")
    twice = log.append([within, within])
    assert twice[0] == twice[1]  # a duplicate inside one batch is stored once
    committed = [
        sign_committed_decision(key, agent_id, f"c{n}", "r", idempotency_key=f"c{n}").to_json()
        for n in range(3)
    ]
    first = log.append(committed[:2])
    assert log.append(committed)[:2] == first  # committed records retry the same way
    return 6 + 3


def _refusals(world: World, agent_id: str) -> None:
    """Refused writes leave nothing for a replay to disagree with."""
    for attempt in (
        lambda: order(world.node, world.host, "revoke", agent_id),
        lambda: register_agent(world, world.globex.key),
        lambda: world.node.log.append([decision(EnvelopeSigner.generate(), agent_id)]),
    ):
        with pytest.raises(CustodesError):
            attempt()


@pytest.fixture(scope="module")
def history(world: World) -> History:
    node = world.node
    keys = [EnvelopeSigner.generate() for _ in range(3)]
    trader = register_agent(
        world,
        keys[0],
        operating_jurisdictions=(HOST, OTHER),
        skills=(Skill(id="trading", name="Trading"),),
    )
    revoked = register_agent(world, keys[1], sector="energy")
    other = register_agent(world, keys[2], by=world.home, risk_tier="critical")
    card = orjson.loads(
        (Path(__file__).parent / "fixtures" / "georoute-agent-card.json").read_bytes()
    )
    register_agent(world, EnvelopeSigner.generate(), card=card)  # its card's digest is kept
    change = AgentChanges(version="2.0", contact=CONTACT)  # the contact stays off the log
    submit(
        node,
        world.acme,
        AgentUpdate(actor=world.acme.id, at=now(), agent_id=trader, changes=change),
    )
    territories = AgentChanges(operating_jurisdictions=(HOST,))  # regulator-set
    submit(
        node,
        world.home,
        AgentUpdate(actor=world.home.id, at=now(), agent_id=trader, changes=territories),
    )
    rotated = EnvelopeSigner.generate()
    rotation = AgentRotateKey(
        actor=world.acme.id, at=now(), agent_id=other, add=(b64(rotated),), retire=(keys[2].keyid,)
    )
    submit(node, world.acme, rotation)
    model = ModelRecord(
        id=f"model:{fresh_slug('m')}",
        provider="Example Labs",
        name="Example",
        version="1",
        digest="sha256:" + "ef" * 32,
        training_compute_flop=1e22,
    )
    submit(node, world.acme, ModelRegister(actor=world.acme.id, at=now(), model=model))
    corrected = model.model_copy(update={"version": "1.1"})
    submit(node, world.home, ModelUpdate(actor=world.home.id, at=now(), model=corrected))
    retire = ModelRetire(actor=world.acme.id, at=now(), model_id=model.id, reason="superseded")
    submit(node, world.acme, retire)
    _, suspension = order(node, world.acme, "suspend", trader)
    order(node, world.acme, "reinstate", trader, lifts=suspension.order_id)
    order(node, world.host, "suspend", trader, territory=HOST)
    count = _decisions(world, keys[0], trader) + _decisions(world, rotated, other)
    order(node, world.home, "revoke", revoked)
    trading = issue(node, world.home, "suspend", selector=Selector(skill="trading"))
    issue(node, world.home, "reinstate", lifts=trading.order.order_id)
    issue(node, world.home, "suspend", selector=Selector(sector="energy", operator=world.acme.id))
    plain = EnvelopeSigner.generate()
    node.register_signer("witness-tool", plain.public_key)
    node.register_signer("witness-tool", plain.public_key, status="retired")
    _refusals(world, trader)
    return History(world, revoked, keys[2].keyid, suspension.order_id, count)


def test_a_mixed_history_rebuilds_to_equal_tables(history: History) -> None:
    node = history.world.node
    progress: list[tuple[int, int]] = []
    report = rebuild(node.store, lambda done, total: progress.append((done, total)))
    assert report.entries == node.store.sequenced_size()
    assert progress[-1] == (report.entries, report.entries)
    # the roster's and the audit projections too
    assert set(report.tables) == {*PROJECTION_TABLES, "roster_versions", *AUDIT_TABLES}
    unequal = {t: counts for t, counts in report.tables.items() if not counts[2]}
    assert unequal == {}
    assert report.equal
    empty = [t for t in PROJECTION_TABLES if report.tables[t][0] == 0]
    assert empty == []  # the history touched every registry table (no roster here)
    assert report.tables["idempotency"][0] == history.decisions


def test_private_fields_are_kept_beside_the_log_and_not_rebuilt(history: History) -> None:
    """The clear text is not derivable from the log: rebuild neither needs nor compares it,
    and erasing it leaves the replay (and every proof) as it was."""
    node = history.world.node
    assert "private_fields" not in PROJECTION_TABLES
    with write_tx(node.engine) as conn:
        kept = conn.execute(select(private_fields)).all()
        assert kept  # operators' and the trader's contacts
        conn.execute(delete(private_fields))
    try:
        assert rebuild(node.store).equal
    finally:
        with write_tx(node.engine) as conn:
            conn.execute(private_fields.insert(), [dict(r._mapping) for r in kept])


Tamper = Callable[[Connection, History], Callable[[Connection], None]]


def _revive_revoked(conn: Connection, h: History) -> Callable[[Connection], None]:
    conn.execute(update(agents).where(agents.c.id == h.revoked).values(status="active"))
    return lambda c: c.execute(
        update(agents).where(agents.c.id == h.revoked).values(status="revoked")
    )


def _revive_retired_key(conn: Connection, h: History) -> Callable[[Connection], None]:
    conn.execute(update(signers).where(signers.c.keyid == h.retired_key).values(status="active"))
    return lambda c: c.execute(
        update(signers).where(signers.c.keyid == h.retired_key).values(status="retired")
    )


def _unlift_order(conn: Connection, h: History) -> Callable[[Connection], None]:
    where = kill_orders.c.order_id == h.lifted_order
    lifted = conn.execute(select(kill_orders.c.lifted_index).where(where)).scalar_one()
    conn.execute(update(kill_orders).where(where).values(status="active", lifted_index=None))
    return lambda c: c.execute(
        update(kill_orders).where(where).values(status="lifted", lifted_index=lifted)
    )


def _forget_idempotency_key(conn: Connection, h: History) -> Callable[[Connection], None]:
    row = conn.execute(select(idempotency).limit(1)).one()
    conn.execute(
        delete(idempotency).where(idempotency.c.agent == row.agent, idempotency.c.key == row.key)
    )
    return lambda c: c.execute(idempotency.insert().values(**row._mapping))


@pytest.mark.parametrize(
    ("tamper", "table"),
    [
        pytest.param(_revive_revoked, "agents", id="revoked-agent-made-active"),
        pytest.param(_revive_retired_key, "signers", id="retired-key-made-active"),
        pytest.param(_unlift_order, "kill_orders", id="lifted-order-made-active"),
        pytest.param(_forget_idempotency_key, "idempotency", id="idempotency-key-deleted"),
    ],
)
def test_a_tampered_projection_is_reported(history: History, tamper: Tamper, table: str) -> None:
    node = history.world.node
    with write_tx(node.engine) as conn:
        restore = tamper(conn, history)
    try:
        report = rebuild(node.store)
    finally:
        with write_tx(node.engine) as conn:
            restore(conn)
    assert not report.equal
    assert {t for t, (_live, _rebuilt, same) in report.tables.items() if not same} == {table}
    assert rebuild(node.store).equal

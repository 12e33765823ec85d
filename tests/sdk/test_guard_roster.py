"""The guard checks each order's issuer against the roster and the registry, not only the
node's countersignature on the push."""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custodes.demo.fakes import FakeClock, FakeNode
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import PartyRegulator, SignedRoster, found_roster
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.sdk.guard import Guard, Halted
from custodes.sdk.issuers import ORDER_TYPE, IssuerKeys, UnverifiedOrder
from tests.sdk.support import AGENT, eventually, make_node


def _regulator(rid: str, key: EnvelopeSigner) -> PartyRegulator:
    return PartyRegulator(id=rid, name=rid, public_key=base64.b64encode(key.public_key).decode())


def _roster(tmp_path: Path, gb: EnvelopeSigner, au: EnvelopeSigner) -> SignedRoster:
    parties = []
    for code, status, rid, key in (
        ("GB", "member", "regulator:fake", gb),
        ("FR", "member", "regulator:fr", EnvelopeSigner.generate()),
        ("AU", "partner", "regulator:au", au),
    ):
        parties.append(
            node_party(
                tmp_path / code,
                code=code,
                name=code,
                status=status,  # type: ignore[arg-type]
                urls=[f"http://{code.lower()}.example"],
                origin=f"{code.lower()}.example/log",
                regulators=[_regulator(rid, key)],
            )
        )
    votes = [roster_signer(tmp_path / c) for c in ("GB", "FR")]
    return found_roster("t", parties, votes, expires=datetime.now(UTC) + timedelta(days=1))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def node(clock: FakeClock) -> Iterator[FakeNode]:
    fake = make_node(clock, AGENT_KEY)
    yield fake
    fake.close()


AGENT_KEY = EnvelopeSigner.generate()
AU_KEY = EnvelopeSigner.generate()


@pytest.fixture
def guard(tmp_path: Path, node: FakeNode, clock: FakeClock) -> Iterator[Guard]:
    roster = _roster(tmp_path, node.regulator, AU_KEY)
    guard = Guard(
        AGENT,
        AGENT_KEY,
        node.url,
        node.public_key,
        safe_state=lambda: None,
        recorder=None,
        clock=clock,
        http=node.client(),
        retry_initial=0.02,
        retry_max=0.1,
        poll=0.005,
        issuers=IssuerKeys(roster),
    )
    guard.start()
    assert guard.wait_for_lease(5)
    assert node.wait_for_subscribers()
    yield guard
    guard.stop()


def _allowed(guard: Guard, territory: str) -> bool:
    try:
        guard.check(territory)
    except Halted:
        return False
    return True


def test_a_countersigned_order_not_signed_by_a_known_regulator_is_ignored(
    guard: Guard, node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    roster_key = node.regulator
    node.regulator = EnvelopeSigner.generate()  # the node pushes it, countersigned, as ever
    with caplog.at_level(logging.WARNING, logger="custodes.sdk.guard"):
        node.suspend(AGENT, territory="FR")
        node.regulator = roster_key
        node.suspend(AGENT, territory="GB")  # pushed after it, on the same stream
        eventually(lambda: not _allowed(guard, "GB"))
    assert _allowed(guard, "FR")  # the first order was read, and ignored
    assert "not signed by regulator:fake" in caplog.text


def test_a_partners_regulator_orders_nothing(guard: Guard, node: FakeNode) -> None:
    roster_key = node.regulator
    node.regulator = AU_KEY  # the roster's key for regulator:au, a partner
    node.suspend(AGENT, territory="FR")
    node.regulator = roster_key
    node.suspend(AGENT, territory="GB")
    eventually(lambda: not _allowed(guard, "GB"))
    assert _allowed(guard, "FR")


def test_an_order_by_the_rosters_regulator_halts_as_before(guard: Guard, node: FakeNode) -> None:
    node.suspend(AGENT, territory="FR")
    eventually(lambda: not _allowed(guard, "FR"))
    assert _allowed(guard, "GB")


# -- IssuerKeys, the pure part ---------------------------------------------------------


def _order(key: EnvelopeSigner, actor: str, **changes: Any) -> tuple[dict[str, Any], Any]:
    order = {
        "v": 1,
        "op": "suspend",
        "order_id": uuid.uuid4().hex,
        "agent_id": AGENT,
        "scope": "territorial",
        "territory": "FR",
        "reason": "r",
        "actor": actor,
        "at": "2026-12-03T18:00:00Z",
        "lifts": None,
    }
    envelope = sign_envelope(ORDER_TYPE, canonical_dumps(order), [key]).to_json()
    return order | changes, envelope


def test_an_operator_is_known_from_the_registry(tmp_path: Path) -> None:
    operator = EnvelopeSigner.generate()
    asked: list[str] = []

    def registry(name: str) -> list[bytes]:
        asked.append(name)
        return [operator.public_key] if name == "operator:acme" else []

    keys = IssuerKeys(_roster(tmp_path, EnvelopeSigner.generate(), AU_KEY), registry)
    pushed, envelope = _order(operator, "operator:acme")
    assert keys.verify(envelope, pushed) == "operator:acme"
    assert keys.verify(envelope, pushed) == "operator:acme"
    assert asked == ["operator:acme"]  # cached
    pushed, envelope = _order(operator, "regulator:xx")
    with pytest.raises(UnverifiedOrder):  # a regulator is the roster's alone
        keys.verify(envelope, pushed)
    assert "regulator:xx" not in asked


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"territory": "DE"}, "territory"), ({"op": "revoke"}, "op"), ({"agent_id": "x"}, "agent")],
)
def test_the_signed_order_must_say_what_the_push_says(
    tmp_path: Path, changes: dict[str, Any], field: str
) -> None:
    regulator = EnvelopeSigner.generate()
    keys = IssuerKeys(_roster(tmp_path, regulator, AU_KEY))
    pushed, envelope = _order(regulator, "regulator:fake", **changes)
    with pytest.raises(UnverifiedOrder, match=field):
        keys.verify(envelope, pushed)


def test_a_push_without_the_orders_envelope_is_unverified(tmp_path: Path) -> None:
    keys = IssuerKeys(_roster(tmp_path, EnvelopeSigner.generate(), AU_KEY))
    pushed, _ = _order(EnvelopeSigner.generate(), "regulator:fake")
    with pytest.raises(UnverifiedOrder, match="no signed order envelope"):
        keys.verify(None, pushed)

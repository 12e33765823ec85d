"""The runtime guard against a fake home node, on a fake clock: leases renewed at
half-life, fail closed when the node is gone, kill orders pushed, one safe state per halt."""

from __future__ import annotations

import itertools
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from custodes.client import Client
from custodes.demo.fakes import FakeClock, FakeNode
from custodes.killswitch.broadcast import PushSigner
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.guard import Guard, Halted
from custodes.sdk.leases import Lease, LeaseError
from custodes.sdk.pushes import stream_nonce
from custodes.sdk.recorder import DecisionRecorder
from tests.sdk.support import AGENT, eventually, make_guard, make_node


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def signer() -> EnvelopeSigner:
    return EnvelopeSigner.generate()


@pytest.fixture
def node(clock: FakeClock, signer: EnvelopeSigner) -> Iterator[FakeNode]:
    fake = make_node(clock, signer)
    yield fake
    fake.close()


class Hooks:
    """Counts safe-state and territorial-halt calls."""

    def __init__(self, delay: float = 0.0) -> None:
        self.safe_states = 0
        self.territories: list[str] = []
        self._delay = delay
        self._lock = threading.Lock()

    def safe_state(self) -> None:
        with self._lock:
            self.safe_states += 1
        time.sleep(self._delay)  # a slow hook widens any race

    def territorial(self, territory: str) -> None:
        self.territories.append(territory)


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def guards() -> Iterator[list[Guard]]:
    started: list[Guard] = []
    yield started
    for guard in started:
        guard.stop()


@pytest.fixture
def new_guard(
    node: FakeNode,
    clock: FakeClock,
    signer: EnvelopeSigner,
    hooks: Hooks,
    guards: list[Guard],
) -> Callable[..., Guard]:
    def build(*, start: bool = True, **kw: Any) -> Guard:
        kw.setdefault("safe_state", hooks.safe_state)
        kw.setdefault("on_territorial_halt", hooks.territorial)
        guard = make_guard(node, clock, signer, **kw)
        guards.append(guard)
        if start:
            guard.start()
            assert guard.wait_for_lease(5)
            assert node.wait_for_subscribers()
        return guard

    return build


def reason(guard: Guard, territory: str = "GB") -> str | None:
    try:
        guard.check(territory)
    except Halted as halt:
        return halt.reason
    return None


def test_no_action_before_the_first_lease(new_guard: Callable[..., Guard], hooks: Hooks) -> None:
    guard = new_guard(start=False)
    assert reason(guard) == "no_lease"
    ran: list[int] = []
    with pytest.raises(Halted):
        guard.run(ran.append, "GB", 1)
    with pytest.raises(Halted), guard.action("GB"):
        ran.append(2)
    assert ran == []
    assert hooks.safe_states == 0  # never operated: nothing to bring to a safe state


def test_a_lease_allows_actions_in_its_territories(
    new_guard: Callable[..., Guard], node: FakeNode
) -> None:
    guard = new_guard()
    assert guard.run(lambda x: x * 2, "GB", 21) == 42
    with guard.action("FR"):
        pass
    assert reason(guard, "DE") == "territory_not_leased"
    assert node.lease_requests == 1


def test_the_lease_is_renewed_at_half_life(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock
) -> None:
    guard = new_guard()
    first = guard.lease
    assert first is not None
    assert first.lifetime == 60
    clock.advance(29.9)
    time.sleep(0.1)  # the keeper polls every 5 ms: it has had time to act, and did not
    assert node.lease_requests == 1
    clock.advance(0.1)
    eventually(lambda: node.lease_requests == 2)
    eventually(lambda: guard.lease is not None and guard.lease.lease_id != first.lease_id)
    assert guard.lease is not None
    assert guard.lease.nbf == first.nbf + 30


def test_node_unreachable_the_agent_acts_until_expiry_then_never(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    guard = new_guard()
    lease = guard.lease
    assert lease is not None
    node.set_reachable(False)
    acted: list[float] = []
    refused: list[tuple[float, str]] = []
    for _ in range(120):
        clock.advance(1)
        try:
            guard.run(acted.append, "GB", clock())
        except Halted as halt:
            refused.append((clock(), halt.reason))
    assert acted == [lease.nbf + s for s in range(1, 60)]  # every second until exp
    assert [t for t in acted if t >= lease.exp] == []  # zero actions after exp
    assert refused[0] == (lease.exp, "lease_expired")
    assert len(refused) == 61
    assert node.lease_requests == 1  # every renewal failed to connect
    eventually(lambda: hooks.safe_states == 1)


def test_a_lapse_runs_the_safe_state_with_nobody_calling(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    guard = new_guard()
    guard.check("GB")
    node.set_reachable(False)
    clock.advance(61)
    eventually(lambda: hooks.safe_states == 1)


def test_when_the_node_returns_the_agent_resumes(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    guard = new_guard()
    node.set_reachable(False)
    clock.advance(61)
    assert reason(guard) == "lease_expired"
    node.set_reachable(True)
    clock.advance(1)  # past the keeper's backoff
    eventually(lambda: reason(guard) is None)
    eventually(lambda: hooks.safe_states == 1)


def test_safe_state_runs_once_under_twenty_concurrent_checks(
    node: FakeNode, clock: FakeClock, signer: EnvelopeSigner, guards: list[Guard]
) -> None:
    hooks = Hooks(delay=0.05)
    guard = make_guard(node, clock, signer, safe_state=hooks.safe_state)
    guards.append(guard)
    guard.renew()
    guard.check("GB")
    clock.advance(60)
    barrier = threading.Barrier(20)
    reasons: list[str] = []

    def act() -> None:
        barrier.wait()
        try:
            guard.check("GB")
        except Halted as halt:
            reasons.append(halt.reason)

    threads = [threading.Thread(target=act) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reasons == ["lease_expired"] * 20
    assert hooks.safe_states == 1


def _fast_recorder(node: FakeNode, signer: EnvelopeSigner, tmp_path: Path) -> DecisionRecorder:
    """A recorder delivering halt records to ``node`` at once (short flush and retry)."""
    ledger = Client(node.url, http=node.client())
    return DecisionRecorder(
        ledger, AGENT, signer, tmp_path / "spool", flush_interval=0.01, retry_initial=0.01
    )


def test_a_kill_order_halts_at_once_and_the_halt_is_recorded(
    node: FakeNode, clock: FakeClock, signer: EnvelopeSigner, hooks: Hooks, tmp_path: Path
) -> None:
    recorder = _fast_recorder(node, signer, tmp_path)
    guard = make_guard(node, clock, signer, safe_state=hooks.safe_state, recorder=recorder)
    try:
        guard.start()
        assert guard.wait_for_lease(5)
        assert node.wait_for_subscribers()
        guard.check("GB")
        order_id = node.suspend(AGENT, reason="market abuse inquiry")
        eventually(lambda: hooks.safe_states == 1)  # pushed: no clock has moved
        assert reason(guard) == reason(guard, "FR") == "kill_order"
        assert recorder.flush(5)
    finally:
        guard.stop()
        recorder.close()
    halts = [d for d in node.decisions() if d.action == "halt"]
    assert len(halts) == 1
    assert halts[0].agent == AGENT
    assert "kill_order" in halts[0].rationale
    assert order_id in halts[0].rationale


def test_reinstated_and_leased_again_the_agent_acts_and_a_new_halt_is_a_new_episode(
    new_guard: Callable[..., Guard], node: FakeNode, hooks: Hooks
) -> None:
    guard = new_guard()
    guard.check("GB")
    first = node.suspend(AGENT)
    eventually(lambda: hooks.safe_states == 1)
    node.reinstate(first)
    eventually(lambda: reason(guard) is None)  # the reinstate also asks for a lease at once
    node.suspend(AGENT)
    eventually(lambda: hooks.safe_states == 2)
    assert reason(guard) == "kill_order"


def test_a_territorial_suspension_refuses_only_that_territory(
    new_guard: Callable[..., Guard], node: FakeNode, hooks: Hooks
) -> None:
    guard = new_guard()
    guard.check("FR")
    node.suspend(AGENT, territory="FR")
    eventually(lambda: reason(guard, "FR") == "kill_order")
    assert reason(guard, "GB") is None
    eventually(lambda: hooks.territories == ["FR"])
    assert hooks.safe_states == 0


def test_a_reinstate_missed_while_the_stream_was_down_is_settled_by_the_next_lease(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    guard = new_guard()
    order_id = node.suspend(AGENT)
    eventually(lambda: reason(guard) == "kill_order")
    node.set_reachable(False)  # the stream is cut; the reinstate below is never pushed
    node.reinstate(order_id)
    node.set_reachable(True)
    time.sleep(0.05)
    assert reason(guard) == "kill_order"  # still halted: nothing told it otherwise yet
    clock.advance(30)  # the renewal at half-life
    eventually(lambda: reason(guard) is None)


def test_a_suspension_issued_while_the_stream_was_down_arrives_on_reconnect(
    new_guard: Callable[..., Guard], node: FakeNode, hooks: Hooks
) -> None:
    guard = new_guard()
    node.set_reachable(False)
    node.suspend(AGENT)
    node.set_reachable(True)
    eventually(lambda: reason(guard) == "kill_order")  # replayed with the active orders
    eventually(lambda: hooks.safe_states == 1)


def test_a_refused_renewal_drops_the_lease_before_it_expires(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    guard = new_guard()
    node.refuse_leases = True
    clock.advance(30)
    eventually(lambda: reason(guard) == "no_lease")
    eventually(lambda: hooks.safe_states == 1)


def _forged(node: FakeNode) -> None:
    node.lease_signer = EnvelopeSigner.generate()


def _other_agent(node: FakeNode) -> None:
    node.lease_hook = lambda p: p | {"agent_id": "urn:custodes:gb:agent:other"}


def _other_key(node: FakeNode) -> None:
    node.lease_hook = lambda p: p | {"keyid": "ab" * 32}


def _replayed(node: FakeNode) -> None:
    # A lease captured earlier answers an earlier request: another nonce, older times.
    node.lease_hook = lambda p: (
        p | {"nonce": "00" * 16, "nbf": p["nbf"] - 600, "exp": p["exp"] - 600}
    )


@pytest.mark.parametrize("tamper", [_forged, _other_agent, _other_key, _replayed])
def test_a_bad_lease_is_refused_and_grants_nothing(
    tamper: Callable[[FakeNode], None],
    new_guard: Callable[..., Guard],
    node: FakeNode,
    clock: FakeClock,
) -> None:
    tamper(node)
    guard = new_guard(start=False)
    with pytest.raises(LeaseError):
        guard.renew()
    guard.start()
    clock.advance(1)
    eventually(lambda: node.lease_requests >= 3)  # it keeps asking, and keeps refusing
    assert guard.lease is None
    assert reason(guard) == "no_lease"


def test_a_territorial_halt_is_recorded_for_its_jurisdiction(
    node: FakeNode, clock: FakeClock, signer: EnvelopeSigner, hooks: Hooks, tmp_path: Path
) -> None:
    recorder = _fast_recorder(node, signer, tmp_path)
    guard = make_guard(
        node,
        clock,
        signer,
        safe_state=hooks.safe_state,
        recorder=recorder,
        on_territorial_halt=hooks.territorial,
    )
    try:
        guard.start()
        assert guard.wait_for_lease(5)
        assert node.wait_for_subscribers()
        guard.check("FR")
        order_id = node.suspend(AGENT, territory="FR")
        eventually(lambda: hooks.territories == ["FR"])
        assert recorder.flush(5)
    finally:
        guard.stop()
        recorder.close()
    halts = [d for d in node.decisions() if d.action == "halt"]
    assert [(d.jurisdiction, order_id in d.rationale) for d in halts] == [("FR", True)]
    assert hooks.safe_states == 0


def test_a_slow_agent_clock_cannot_stretch_a_lease(signer: EnvelopeSigner) -> None:
    """The lease is timed on the agent's own clock from when it asked: an agent whose
    clock runs 20 s behind the node's still stops one lifetime (60 s) later, not 80 s."""
    node_clock = FakeClock()
    agent_clock = FakeClock(node_clock() - 20)
    node = make_node(node_clock, signer, ttl=60)
    guard = make_guard(node, agent_clock, signer)
    try:
        guard.start()
        assert guard.wait_for_lease(5)
        node.set_reachable(False)
        for clock in (node_clock, agent_clock):
            clock.advance(59)
        guard.check("GB")
        for clock in (node_clock, agent_clock):
            clock.advance(2)
        with pytest.raises(Halted) as caught:
            guard.check("GB")
        assert caught.value.reason == "lease_expired"
    finally:
        guard.stop()


# -- pushed events the node did not countersign for this guard --------------------------

OTHER = "urn:custodes:gb:agent:other"
FAR_AHEAD = 10**9  # a log index beyond any order: it would settle every order on a renewal


def _order(agent_id: str = AGENT, territory: str | None = None) -> dict[str, Any]:
    return {
        "v": 1,
        "op": "suspend",
        "order_id": uuid.uuid4().hex,
        "agent_id": agent_id,
        "scope": "territorial" if territory else "global",
        "territory": territory,
        "reason": "forged",
        "actor": "regulator:gb",
        "at": "2026-01-01T00:00:00+00:00",
        "lifts": None,
    }


def _event(signer: EnvelopeSigner | None, stream: str, order: dict[str, Any]) -> dict[str, Any]:
    """An order event at FAR_AHEAD: countersigned by ``signer`` for ``stream`` (or not at
    all); its unsigned fields say the same as the signed ones."""
    unsigned = {"index": FAR_AHEAD, "order": order, "envelope": {}}
    if signer is None:
        return unsigned
    return PushSigner(signer, stream).sign(unsigned)


FORGERIES: dict[str, Callable[[FakeNode, str], dict[str, Any]]] = {
    "unsigned": lambda node, stream: _event(None, stream, _order()),
    "signed by another key": lambda node, stream: _event(
        EnvelopeSigner.generate(), stream, _order()
    ),
    "signed by the node for another agent": lambda node, stream: _event(
        node.signer, stream_nonce(), _order(OTHER)
    ),
    "signed by the node for an earlier connection": lambda node, stream: _event(
        node.signer, stream_nonce(), _order()
    ),
}


@pytest.mark.parametrize("forge", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_push_neither_halts_nor_records_nor_drops_a_genuine_order(
    forge: Callable[[FakeNode, str], dict[str, Any]],
    node: FakeNode,
    *,
    clock: FakeClock,
    signer: EnvelopeSigner,
    hooks: Hooks,
    tmp_path: Path,
) -> None:
    """The renewal race: a lease issued before a genuine FR suspension arrives after it.
    The guard settles only orders at or below the horizon it had when it asked; a forged
    event far ahead must not have moved that horizon, or the lease would lift FR."""
    recorder = _fast_recorder(node, signer, tmp_path)
    guard = make_guard(
        node,
        clock,
        signer,
        safe_state=hooks.safe_state,
        recorder=recorder,
        on_territorial_halt=hooks.territorial,
    )
    try:
        guard.start()
        assert guard.wait_for_lease(5)
        assert node.wait_for_subscribers()
        (stream,) = node.stream_nonces()
        assert node.inject(forge(node, stream)) == 1
        node.suspend(AGENT, territory="DE")  # genuine, behind the forgery: once it is
        eventually(lambda: hooks.territories == ["DE"])  # applied, so was the forgery

        def genuine_order_during_the_renewal(lease: dict[str, Any]) -> dict[str, Any]:
            node.suspend(AGENT, territory="FR")  # after the lease's territories were chosen
            eventually(lambda: reason(guard, "FR") == "kill_order")  # the stream is in order
            return lease

        node.lease_hook = genuine_order_during_the_renewal
        lease = guard.renew()
        assert lease.jurisdictions == frozenset({"GB", "FR"})
        assert reason(guard, "FR") == "kill_order"
        assert reason(guard, "GB") is None
        assert guard.halted() is None
        # The guard records the FR halt, then runs its hook: once the hook has run, the
        # record is in the recorder, and flushing delivers it (no race with the guard).
        eventually(lambda: hooks.territories == ["DE", "FR"])
        assert recorder.flush(5)
    finally:
        guard.stop()
        recorder.close()
    assert hooks.safe_states == 0
    halts = [d for d in node.decisions() if d.action == "halt"]
    assert [d.jurisdiction for d in halts] == ["DE", "FR"]


def test_an_order_event_replayed_to_a_fresh_guard_is_ignored(
    new_guard: Callable[..., Guard], node: FakeNode, hooks: Hooks
) -> None:
    """A genuine suspension, captured from the stream and replayed after it was lifted,
    to a guard that never saw the reinstate (a restarted agent)."""
    first = new_guard()
    order_id = node.suspend(AGENT)
    eventually(lambda: hooks.safe_states == 1)
    captured = node.pushed[-1]
    node.reinstate(order_id)
    eventually(lambda: reason(first) is None)
    first.stop()
    eventually(lambda: node.subscribers() == 0)
    second = new_guard()
    second.check("GB")
    node.inject(captured)
    node.suspend(AGENT, territory="FR")  # a genuine order behind the replay, as a barrier
    eventually(lambda: hooks.territories == ["FR"])
    assert reason(second, "GB") is None
    assert hooks.safe_states == 1


def test_a_flood_of_forged_pushes_is_logged_once(
    new_guard: Callable[..., Guard],
    node: FakeNode,
    hooks: Hooks,
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = new_guard()
    with caplog.at_level(logging.WARNING, logger="custodes.sdk.guard"):
        for _ in range(200):
            node.inject(_event(None, "", _order()))
        node.suspend(AGENT, territory="FR")  # genuine, behind the flood
        eventually(lambda: hooks.territories == ["FR"])
    ignored = [r for r in caplog.records if "ignoring a kill-order event" in r.getMessage()]
    assert len(ignored) == 1
    assert reason(guard, "GB") is None


def _refusal(guard: Guard, territory: str = "GB") -> Halted:
    with pytest.raises(Halted) as caught:
        guard.check(territory)
    return caught.value


def test_a_refusal_names_the_orders_reason_and_issuer(
    new_guard: Callable[..., Guard], node: FakeNode
) -> None:
    guard = new_guard()
    order_id = node.suspend(AGENT, reason="market abuse inquiry")
    eventually(lambda: reason(guard) == "kill_order")
    halt = _refusal(guard)
    assert (halt.order_id, halt.order_reason, halt.issuer) == (
        order_id,
        "market abuse inquiry",
        "regulator:fake",
    )
    assert "suspend by regulator:fake: market abuse inquiry" in halt.message
    assert halt.detail["issuer"] == "regulator:fake"


def test_a_territorial_refusal_names_the_territorys_order(
    new_guard: Callable[..., Guard], node: FakeNode
) -> None:
    guard = new_guard()
    node.suspend(AGENT, territory="FR", reason="no French licence")
    eventually(lambda: reason(guard, "FR") == "kill_order")
    halt = _refusal(guard, "FR")
    assert (halt.territory, halt.order_reason) == ("FR", "no French licence")
    assert reason(guard, "GB") is None


def test_a_lifted_halt_calls_on_resume_once_and_logs_the_recovery(
    new_guard: Callable[..., Guard], node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    resumed: list[int] = []
    guard = new_guard(on_resume=lambda: resumed.append(1))
    order_id = node.suspend(AGENT)
    eventually(lambda: reason(guard) == "kill_order")
    assert resumed == []  # a halt is not a resume
    with caplog.at_level(logging.INFO, logger="custodes.sdk.guard"):
        node.reinstate(order_id)
        eventually(lambda: reason(guard) is None and resumed == [1])
    recovered = [r.getMessage() for r in caplog.records if "resumed after a halt" in r.getMessage()]
    assert len(recovered) == 1
    assert AGENT in recovered[0]


def test_the_first_lease_is_not_a_resume(new_guard: Callable[..., Guard]) -> None:
    resumed: list[int] = []
    guard = new_guard(on_resume=lambda: resumed.append(1))
    guard.renew()  # operating, renewed again: never halted, nothing to resume from
    assert reason(guard) is None
    assert resumed == []


def test_a_lapsed_lease_renewed_resumes_the_guard(
    new_guard: Callable[..., Guard], node: FakeNode, clock: FakeClock, hooks: Hooks
) -> None:
    resumed: list[int] = []
    guard = new_guard(on_resume=lambda: resumed.append(1))
    node.set_reachable(False)
    clock.advance(61)  # past the 60 s lease: fail closed
    eventually(lambda: reason(guard) == "lease_expired")
    eventually(lambda: hooks.safe_states == 1)
    node.set_reachable(True)
    clock.advance(1)  # past any retry backoff: the keeper asks again
    eventually(lambda: resumed == [1])
    assert reason(guard) is None


def test_concurrent_renewals_never_hold_a_newer_lease_before_an_older_one(
    new_guard: Callable[..., Guard], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A caller's renew() racing the renewal thread's: without one renewal at a time, the
    newer answer could be held first and the older then refused as a replay (seen as a
    LeaseError ending `custodes demo` on a loaded machine)."""
    guard = new_guard(start=False)
    first_in, second_in = threading.Event(), threading.Event()
    calls = itertools.count()

    def answer(*_args: Any, **_kwargs: Any) -> Lease:
        n = next(calls)
        if n == 0:  # the first request waits to see whether a second runs meanwhile
            first_in.set()
            second_in.wait(2)
        else:
            second_in.set()
        return Lease(
            f"lease-{n}", guard.agent_id, "k", frozenset({"GB"}), 1_000.0 + n, 2_000.0, "node"
        )

    monkeypatch.setattr("custodes.sdk.guard.request_lease", answer)
    errors: list[BaseException] = []

    def renew() -> None:
        try:
            guard.renew()
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=renew)
    first.start()
    assert first_in.wait(10)
    second = threading.Thread(target=renew)
    second.start()
    first.join(10)
    second.join(10)
    assert errors == []
    assert guard.lease is not None
    assert guard.lease.lease_id == "lease-1"

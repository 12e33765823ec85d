"""The kill switch end to end: real node processes, real guards, real HTTP.

Each test starts its own GB node (``custodes serve`` on loopback), enrols agents through
the registry API and runs the SDK's ``Guard`` (leases plus the server-sent kill-order
stream) and ``DecisionRecorder`` against it:

1. a kill order halts the guards it names within a second (push, not lease expiry),
   runs each safe-state hook once, logs each halt, and a reinstate lets them act again;
2. a host regulator suspends an agent in its own territory only, and can do no more;
3. with the node SIGKILLed, no action passes after the lease expires; decisions
   recorded meanwhile are spooled and reach the restarted node exactly once;
4. forged and replayed lease requests and kill orders get a 4xx JSON error and write
   nothing.

Then ``Guard.stop`` ending the kill-order reader at once, a lease request replayed
after a restart being refused (nonces are kept in the database), and every pushed order
countersigned by the node for the subscriber's stream.

Waits are for what a test observes (a refusal, a hook, a flushed recorder), each bounded
by ``WAIT_S``; nothing compares counts read at two moments while a guard may still write.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from custodes.client import Client
from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE
from custodes.registry.service import ORDER_TYPE
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent, register_principal
from custodes.sdk.guard import Halted
from custodes.sdk.leases import LEASE_REQUEST_TYPE, lease_request
from custodes.sdk.pushes import UnverifiedPush, sse_events, stream_nonce, verify_push
from tests.integration.nodes import (
    GuardedAgent,
    assert_error,
    close_all,
    decisions_by,
    entry_payloads,
    gb_node,
    node_public_key,
    sequenced_size,
)
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

AGENTS = 20
# A pushed order, not the lease, must be what halts the guard. The lease (60 s, renewed
# at half-life) always has at least 30 s left, so 10 s tells the two apart even on a busy
# CI machine; push latency itself is measured in benchmarks/bench_killswitch.py.
PUSH_BOUND_S = 10.0
SHORT_TTL = 4
WAIT_S = 15.0  # how long to wait for what must happen (a bound, never a measurement)
_JSON = {"Content-Type": "application/json"}


@dataclass
class Node:
    process: NodeProcess
    key: bytes
    authorities: Authorities

    @property
    def url(self) -> str:
        return self.process.url


@contextlib.contextmanager
def running_gb_node(tmp_path: Path, settings: dict[str, str] | None = None) -> Iterator[Node]:
    """A fresh GB node with its regulator and operator; SIGKILLed at the end (a graceful
    stop waits out uvicorn's shutdown grace for any event stream still open)."""
    process = gb_node(tmp_path / "node", tmp_path / "serve.log", settings=settings)
    process.start()
    http = httpx.Client(base_url=process.url, timeout=10.0)
    try:
        authorities = bootstrap(process.url, ADMIN_TOKEN, "GB", client=http)
        yield Node(process, node_public_key(process.url), authorities)
    finally:
        http.close()
        process.kill()


@contextlib.contextmanager
def guarded_agents(
    node: Node, tmp_path: Path, count: int, **guard_options: Any
) -> Iterator[list[GuardedAgent]]:
    """``count`` finance agents (critical: the short lease) operating in GB and FR."""
    agents: list[GuardedAgent] = []
    try:
        for i in range(count):
            signer = EnvelopeSigner.generate()
            agent_id = enrol_agent(node.authorities, signer, f"agent-{i}", operating=["FR"])
            agents.append(
                GuardedAgent.start(
                    node.url, node.key, agent_id, signer, tmp_path / f"spool-{i}", **guard_options
                )
            )
        for agent in agents:
            assert agent.guard.wait_for_lease(10.0), f"{agent.agent_id} got no lease"
        yield agents
    finally:
        close_all(agents)


@dataclass
class Actions:
    """One agent acting in a loop: when each check passed or was first refused."""

    agent: GuardedAgent
    territory: str = "GB"
    record: bool = False
    passed: list[tuple[float, float]] = field(default_factory=list)
    first_refusal: float | None = None
    errors: list[str] = field(default_factory=list)

    def loop(self, stop: threading.Event, pace: float) -> None:
        while not stop.is_set():
            began = time.time()
            try:
                self.agent.guard.check(self.territory)
            except Halted:
                if self.first_refusal is None:
                    self.first_refusal = time.time()
            except Exception as exc:
                self.errors.append(repr(exc))
            else:
                self.passed.append((began, time.time()))
                if self.record:
                    self.agent.recorder.record("act", f"action at {began:.3f}")
            stop.wait(pace)

    @property
    def halted_at(self) -> float:
        assert self.first_refusal is not None, f"{self.agent.agent_id} was never refused"
        return self.first_refusal

    def passed_after(self, moment: float) -> list[tuple[float, float]]:
        return [p for p in self.passed if p[0] >= moment]


@contextlib.contextmanager
def acting(
    agents: list[GuardedAgent], pace: float, *, record: bool = False
) -> Iterator[list[Actions]]:
    stop = threading.Event()
    actions = [Actions(agent, record=record) for agent in agents]
    threads = [
        threading.Thread(target=a.loop, args=(stop, pace), daemon=True, name=f"actor-{i}")
        for i, a in enumerate(actions)
    ]
    for thread in threads:
        thread.start()
    try:
        yield actions
    finally:
        stop.set()
        for thread in threads:
            thread.join(5.0)
    for action in actions:
        assert not action.errors, action.errors


def _halts_in_log(node: Node, agents: list[GuardedAgent]) -> dict[str, list[dict[str, Any]]]:
    """Each agent's halt decisions in the node's log, once its recorder has flushed."""
    for agent in agents:
        assert agent.recorder.flush(timeout=10.0), agent.recorder.last_error
    halts: dict[str, list[dict[str, Any]]] = {a.agent_id: [] for a in agents}
    token = _home_regulator_token(node.url)
    for index, kind, payload in entry_payloads(node.url):
        # The SDK logs halts as commitments: the public kind says it is a halt.
        said = payload.get("kind") or payload.get("action")
        if kind == DECISION_TYPE and said == "halt" and payload["agent"] in halts:
            halts[payload["agent"]].append(_opened(node.url, index, payload, token))
    return halts


def _home_regulator_token(url: str) -> str:
    """A token of a GB regulator: it reads the clear text of the node's agents' records."""
    with httpx.Client(base_url=url, timeout=10.0) as http:
        pid = f"regulator:reader-{uuid.uuid4().hex[:8]}"
        key = EnvelopeSigner.generate()
        return register_principal(
            http, ADMIN_TOKEN, pid, role="regulator", jurisdiction="GB", key=key
        )


def _opened(url: str, index: int, payload: dict[str, Any], token: str) -> dict[str, Any]:
    """A committed record's clear text as its home regulator reads it (a plain one as logged)."""
    if payload.get("v") != 2:
        return payload
    answer = httpx.get(
        f"{url}/api/v1/decisions/{index}/clear", headers={"Authorization": f"Bearer {token}"}
    )
    answer.raise_for_status()
    record: dict[str, Any] = answer.json()["record"]
    return record


# -- 1. propagation -------------------------------------------------------------------


def test_a_kill_order_halts_the_named_guards_within_a_second(tmp_path: Path) -> None:
    with running_gb_node(tmp_path) as node, guarded_agents(node, tmp_path, AGENTS) as agents:
        assert all(a.guard.lease is not None and a.guard.lease.lifetime == 60 for a in agents)
        halted, kept = agents[: AGENTS // 2], agents[AGENTS // 2 :]
        orders: dict[str, tuple[str, float, float]] = {}
        with acting(agents, pace=0.002) as actions:
            time.sleep(0.2)  # every actor is acting
            for agent in halted:
                sent = time.time()
                answer = node.authorities.regulator.order("suspend", agent.agent_id, "test halt")
                orders[agent.agent_id] = (answer["order_id"], sent, time.time())
                assert answer["status"] == "suspended"
            wait_until(
                "every suspended guard to refuse",
                lambda: all(a.first_refusal is not None for a in actions[: len(halted)]),
                timeout=WAIT_S,
            )
            last_order = max(o[2] for o in orders.values())
            wait_until(
                "every survivor to act after the last order",
                lambda: all(a.passed_after(last_order) for a in actions[len(halted) :]),
                timeout=WAIT_S,
            )
            wait_until(  # each hook runs once its halt is recorded
                "every suspended guard's safe-state hook",
                lambda: all(a.safe_states for a in halted),
                timeout=WAIT_S,
            )
        by_agent = {a.agent.agent_id: a for a in actions}
        delays = sorted(by_agent[a.agent_id].halted_at - orders[a.agent_id][1] for a in halted)
        print(
            f"order sent -> guard refuses: median {delays[len(delays) // 2] * 1000:.1f} ms,"
            f" max {delays[-1] * 1000:.1f} ms over {len(delays)} guards"
        )
        for agent in halted:
            act = by_agent[agent.agent_id]
            _order_id, sent, _accepted = orders[agent.agent_id]
            delay = act.halted_at - sent
            assert delay < PUSH_BOUND_S, f"{agent.agent_id} refused {delay:.3f}s after the order"
            assert not act.passed_after(act.halted_at), "an action passed after the halt"
            assert agent.guard.lease is not None
            assert agent.guard.lease.exp > time.time()
        for agent in kept:
            act = by_agent[agent.agent_id]
            assert act.first_refusal is None, f"{agent.agent_id} was refused without an order"
        time.sleep(0.2)  # a second safe-state call, if any, would have happened by now
        logged = _halts_in_log(node, agents)
        for agent in halted:
            assert len(agent.safe_states) == 1, agent.safe_states
            halts = logged[agent.agent_id]
            assert len(halts) == 1, halts
            assert halts[0]["idempotency_key"] in agent.recorder.keys_for("halt")
            assert orders[agent.agent_id][0] in halts[0]["rationale"]
        for agent in kept:
            assert agent.safe_states == []
            assert logged[agent.agent_id] == []

        for agent in halted:
            old = agent.guard.lease
            assert old is not None
            node.authorities.regulator.order(
                "reinstate", agent.agent_id, "cleared", lifts=orders[agent.agent_id][0]
            )
            wait_until(
                f"{agent.agent_id} to act again on a fresh lease",
                lambda a=agent, o=old: (
                    a.guard.lease is not None
                    and a.guard.lease.lease_id != o.lease_id
                    and a.allowed("GB")
                ),
                timeout=WAIT_S,
            )
            assert len(agent.safe_states) == 1  # a reinstate is no second halt


# -- 2. territorial -------------------------------------------------------------------


def _principal(node: Node, pid: str, role: str, jurisdiction: str) -> tuple[str, EnvelopeSigner]:
    """Register ``pid`` through the admin API; its API token and signing key."""
    key = EnvelopeSigner.generate()
    with httpx.Client(base_url=node.url, timeout=10.0) as http:
        token = register_principal(
            http, ADMIN_TOKEN, pid, role=role, jurisdiction=jurisdiction, key=key
        )
    return token, key


def _host_regulator(node: Node, jurisdiction: str) -> Client:
    pid = f"regulator:{jurisdiction.lower()}"
    token, key = _principal(node, pid, "regulator", jurisdiction)
    return Client(node.url, principal=pid, token=token, key=key)


def test_a_host_regulator_halts_an_agent_only_in_its_territory(tmp_path: Path) -> None:
    with running_gb_node(tmp_path) as node, guarded_agents(node, tmp_path, 1) as (agent,):
        france = _host_regulator(node, "FR")
        try:
            assert agent.allowed("FR")
            assert agent.allowed("GB")
            order = france.order("suspend", agent.agent_id, "FR market abuse", territory="FR")
            assert order["status"] == "active"  # nowhere suspended globally
            wait_until("the guard to refuse in FR", lambda: not agent.allowed("FR"), WAIT_S)
            # The guard records the FR halt, then calls the hook; once the record is in the
            # log, nothing else writes unless a refused order does.
            wait_until("the territorial-halt hook", lambda: agent.territorial, WAIT_S)
            assert agent.recorder.flush(timeout=WAIT_S), agent.recorder.last_error
            assert agent.allowed("GB")
            assert agent.guard.halted() is None
            lease = agent.guard.renew()
            assert lease.jurisdictions == frozenset({"GB"})
            assert agent.allowed("GB")
            assert not agent.allowed("FR")

            size = sequenced_size(node.url)
            for op, territory in (
                ("revoke", None),
                ("revoke", "FR"),
                ("suspend", None),
                ("suspend", "GB"),
            ):
                with pytest.raises(CustodesError) as refused:
                    france.order(op, agent.agent_id, "overreach", territory=territory)
                assert refused.value.status == 403, (op, territory, refused.value)
            written = [(i, kind) for i, kind, _ in entry_payloads(node.url, size)]
            assert not [w for w in written if w[1] != DECISION_TYPE], "a refused order wrote"
            status = france.agent(agent.agent_id)
            assert status["status"] == "active"
            assert status["suspended_in"] == ["FR"]
            assert agent.allowed("GB")

            assert agent.territorial
            assert {t for t, _ in agent.territorial} == {"FR"}
            assert len(agent.territorial) == 1
            assert agent.safe_states == []
            halts = _halts_in_log(node, [agent])[agent.agent_id]
            assert [h.get("jurisdiction") for h in halts] == ["FR"]
        finally:
            france.close()


# -- 3. fail closed -------------------------------------------------------------------


def test_with_the_node_killed_no_action_passes_after_the_lease(tmp_path: Path) -> None:
    settings = {"lease_ttl_critical": str(SHORT_TTL)}
    with running_gb_node(tmp_path, settings) as node, guarded_agents(node, tmp_path, 3) as agents:
        assert all(
            a.guard.lease is not None and a.guard.lease.lifetime == SHORT_TTL for a in agents
        )
        port = node.process.port
        with acting(agents, pace=0.02, record=True) as actions:
            time.sleep(1.0)
            killed = time.time()
            node.process.kill()
            wait_until(
                "every guard to halt on its own lease",
                lambda: all(a.first_refusal is not None for a in actions),
                timeout=SHORT_TTL + WAIT_S,
            )
            time.sleep(0.5)  # keep trying: nothing may pass any more
        for agent, act in zip(agents, actions, strict=True):
            lease = agent.guard.lease
            assert lease is not None
            assert lease.exp <= killed + SHORT_TTL + 1
            assert act.passed_after(killed), "the guard stopped before its lease expired"
            late = [p for p in act.passed if p[0] >= lease.exp]
            assert not late, f"{len(late)} actions passed after the lease expired at {lease.exp}"
            assert len(agent.safe_states) == 1
            assert agent.recorder.pending() > 0, "nothing was spooled during the outage"
            assert agent.recorder.keys_for("halt")
            print(
                f"{agent.agent_id}: {len(act.passed_after(killed))} actions on the lease after "
                f"the kill, lease expired {lease.exp - killed:.2f}s after it, first refusal "
                f"{act.halted_at - lease.exp:+.3f}s from expiry, last pass ended "
                f"{max(p[1] for p in act.passed) - lease.exp:+.3f}s, "
                f"{agent.recorder.pending()} decisions spooled"
            )

        restarted = gb_node(tmp_path / "node", tmp_path / "serve.log", port=port, settings=settings)
        restarted.start()
        try:
            since = time.time()
            for agent in agents:
                assert agent.recorder.flush(timeout=15.0), agent.recorder.last_error
            for agent in agents:
                keys = Counter(
                    d.get("idempotency_key") for d in decisions_by(restarted.url, agent.agent_id)
                )
                duplicates = {k: n for k, n in keys.items() if n > 1}
                assert not duplicates, f"decisions logged twice: {duplicates}"
                assert set(keys) == set(agent.recorder.recorded)
            for agent in agents:
                wait_until(
                    f"{agent.agent_id} to act on a fresh lease",
                    lambda a=agent: (
                        a.guard.lease is not None and a.guard.lease.exp > since and a.allowed("GB")
                    ),
                    timeout=10.0,
                )
        finally:
            restarted.kill()


# -- 4. forged and replayed requests ----------------------------------------------------


def _post(url: str, path: str, body: bytes, token: str | None = None) -> httpx.Response:
    headers = dict(_JSON) | ({"Authorization": f"Bearer {token}"} if token else {})
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=10.0)


def _tampered(envelope: Envelope, payload: bytes) -> bytes:
    forged = envelope.to_json() | {"payload": base64.b64encode(payload).decode()}
    return canonical_dumps(forged)


def _order(actor: str, agent_id: str, **changes: Any) -> bytes:
    order = {
        "v": 1,
        "op": "suspend",
        "order_id": secrets.token_hex(12),
        "agent_id": agent_id,
        "scope": "global",
        "reason": "forged",
        "actor": actor,
        "at": datetime.now(UTC).isoformat(),
    } | changes
    return canonical_dumps({k: v for k, v in order.items() if v is not None})


def _signed(payload_type: str, payload: bytes, signer: EnvelopeSigner) -> Envelope:
    return sign_envelope(payload_type, payload, [signer])


def _lease_request_at(signer: EnvelopeSigner, agent_id: str, at: float) -> bytes:
    payload = {"v": 1, "agent_id": agent_id, "nonce": secrets.token_hex(16), "at": int(at)}
    return _signed(LEASE_REQUEST_TYPE, canonical_dumps(payload), signer).to_bytes()


def test_forged_and_replayed_requests_are_refused_and_write_nothing(tmp_path: Path) -> None:
    with running_gb_node(tmp_path) as node:
        alice, bob, mallory = (EnvelopeSigner.generate() for _ in range(3))
        alice_id = enrol_agent(node.authorities, alice, "alice", operating=["FR"])
        enrol_agent(node.authorities, bob, "bob")
        # A second home (GB) regulator and an operator whose tokens and keys we hold.
        actor = "regulator:gb-desk"
        reg_token, reg_key = _principal(node, actor, "regulator", "GB")
        op_token, _op_key = _principal(node, "operator:other", "operator", "GB")

        genuine = lease_request(alice, alice_id, time.time()).to_bytes()
        assert _post(node.url, "/api/v1/leases", genuine).status_code == 201
        real_order = _signed(ORDER_TYPE, _order(actor, alice_id), reg_key)
        assert _post(node.url, "/api/v1/kill-orders", real_order.to_bytes(), reg_token).is_success
        size = sequenced_size(node.url)
        orders = httpx.get(f"{node.url}/api/v1/kill-orders", timeout=5).json()

        lease_cases = {
            "replayed": (genuine, 403, "replayed_request"),
            "signed by another agent": (
                _lease_request_at(bob, alice_id, time.time()),
                403,
                "signer_mismatch",
            ),
            "signed by an unknown key": (
                _lease_request_at(mallory, alice_id, time.time()),
                403,
                "unknown_signer",
            ),
            "stale": (_lease_request_at(alice, alice_id, time.time() - 120), 403, "stale_request"),
            "tampered": (
                _tampered(
                    lease_request(alice, alice_id, time.time()),
                    canonical_dumps(
                        {
                            "v": 1,
                            "agent_id": alice_id,
                            "nonce": "ab" * 16,
                            "at": int(time.time()) + 1,
                        }
                    ),
                ),
                422,
                "bad_signature",
            ),
            "not a lease request": (real_order.to_bytes(), 422, "unsupported_payload_type"),
            "from a suspended agent": (
                _lease_request_at(alice, alice_id, time.time()),
                403,
                "agent_halted",
            ),
        }
        for name, (body, status, code) in lease_cases.items():
            response = _post(node.url, "/api/v1/leases", body)
            assert response.status_code != 201, name
            assert_error(response, status, code)

        order_cases = {
            "replayed": (real_order.to_bytes(), reg_token, 409, "order_exists"),
            "signed by a key not the token's": (
                _signed(ORDER_TYPE, _order(actor, alice_id), reg_key).to_bytes(),
                op_token,
                403,
                "signer_mismatch",
            ),
            "signed by an unknown key": (
                _signed(ORDER_TYPE, _order(actor, alice_id), mallory).to_bytes(),
                reg_token,
                403,
                "unknown_signer",
            ),
            "tampered": (
                _tampered(
                    _signed(ORDER_TYPE, _order(actor, alice_id), reg_key),
                    _order(actor, alice_id, op="revoke"),
                ),
                reg_token,
                422,
                "bad_signature",
            ),
            "actor not the token's": (
                _signed(ORDER_TYPE, _order("regulator:fr", alice_id), reg_key).to_bytes(),
                reg_token,
                403,
                "actor_mismatch",
            ),
            "no token": (
                _signed(ORDER_TYPE, _order(actor, alice_id), reg_key).to_bytes(),
                None,
                401,
                "missing_token",
            ),
            "lifts nothing": (
                _signed(
                    ORDER_TYPE,
                    _order(actor, alice_id, op="reinstate", lifts="nothing-here"),
                    reg_key,
                ).to_bytes(),
                reg_token,
                404,
                "unknown_order",
            ),
            "not a kill order": (genuine, reg_token, 422, "unsupported_payload_type"),
        }
        for name, (body, token, status, code) in order_cases.items():
            response = _post(node.url, "/api/v1/kill-orders", body, token)
            assert response.status_code != 201, name
            assert_error(response, status, code)

        assert sequenced_size(node.url) == size
        assert httpx.get(f"{node.url}/api/v1/kill-orders", timeout=5).json() == orders
        assert node.authorities.regulator.agent(alice_id)["status"] == "suspended"
        # No index was burned either: the next genuine write lands right at the end.
        lift = _order(actor, alice_id, op="reinstate", lifts=orders[0]["order_id"])
        body = _signed(ORDER_TYPE, lift, reg_key).to_bytes()
        answer = _post(node.url, "/api/v1/kill-orders", body, reg_token)
        assert answer.status_code == 201, answer.text
        assert answer.json()["index"] == size


# -- stopping, and a known bug --------------------------------------------------------


def test_guard_stop_ends_the_kill_order_reader(tmp_path: Path) -> None:
    """Between heartbeats the reader is blocked in recv(); stop must still end it."""
    before = set(threading.enumerate())
    with running_gb_node(tmp_path) as node, guarded_agents(node, tmp_path, 1) as (agent,):
        readers = [
            t for t in set(threading.enumerate()) - before if t.name == "custodes-kill-orders"
        ]
        assert len(readers) == 1
        wait_until("the kill-order stream", lambda: agent.guard.stream_connected, WAIT_S)
        time.sleep(0.2)  # past the first line: blocked until the next event or heartbeat
        agent.guard.stop(timeout=1.5)
        assert not readers[0].is_alive(), "the kill-order reader outlived Guard.stop"


def test_a_lease_request_replayed_after_a_restart_is_refused(tmp_path: Path) -> None:
    with running_gb_node(tmp_path) as node:
        alice = EnvelopeSigner.generate()
        alice_id = enrol_agent(node.authorities, alice, "alice")
        genuine = lease_request(alice, alice_id, time.time()).to_bytes()
        assert _post(node.url, "/api/v1/leases", genuine).status_code == 201
        node.process.kill()
        node.process.start()  # same port, same data directory
        assert_error(_post(node.url, "/api/v1/leases", genuine), 403, "replayed_request")


def _order_events(lines: Iterator[str]) -> Iterator[str]:
    for event in sse_events(lines):
        if event is not None and event[0] == "order":
            yield event[1]


def test_the_node_countersigns_each_push_for_the_subscribers_stream(tmp_path: Path) -> None:
    with running_gb_node(tmp_path) as node:
        alice = EnvelopeSigner.generate()
        alice_id = enrol_agent(node.authorities, alice, "alice")
        regulator = node.authorities.regulator
        suspended = regulator.order("suspend", alice_id, "test")
        nonce = stream_nonce()
        check = {"node_public_key": node.key, "agent_id": alice_id, "stream": nonce}
        params = {"agent_id": alice_id, "nonce": nonce}
        with httpx.stream("GET", f"{node.url}/api/v1/kill-orders/stream", params=params) as sse:
            events = _order_events(sse.iter_lines())
            snapshot = next(events)  # the active order, first on every connection
            lifted = regulator.order("reinstate", alice_id, "ok", lifts=suspended["order_id"])
            live = next(events)
        first = verify_push(snapshot, **check, after_seq=0)
        second = verify_push(live, **check, after_seq=first.seq)
        assert (first.index, first.order["order_id"]) == (suspended["index"], suspended["order_id"])
        assert (second.index, second.order["lifts"]) == (lifted["index"], suspended["order_id"])
        for replayed, stream, after in ((live, stream_nonce(), 0), (snapshot, nonce, second.seq)):
            with pytest.raises(UnverifiedPush):
                verify_push(replayed, **(check | {"stream": stream}), after_seq=after)
        bad = httpx.get(
            f"{node.url}/api/v1/kill-orders/stream", params={"nonce": "n0t-hex"}, timeout=10.0
        )
        assert_error(bad, 422)

"""Test doubles for code that embeds the SDK: a manual clock and a fake home node.

``FakeNode`` speaks the node's HTTP contract (docs/design/0004) through
``httpx.MockTransport``: it issues leases signed with its own entry key, appends
decision entries with deduplication by (agent, idempotency key), and pushes kill orders
to server-sent-event subscribers (the active ones first on each connection, as the
node does), each event countersigned for its stream as the node does. Switches make it
unreachable, overloaded (503 with Retry-After), refuse leases, lose the answers to
appends, or issue forged leases; ``inject`` puts raw (forged) events into the open
streams, and ``pushed`` keeps every event sent, for replays::

    clock = FakeClock()
    node = FakeNode(clock, lease_ttl=60)
    node.register_agent(agent_id, signer.public_key, ["GB", "FR"])
    guard = Guard(agent_id, signer, node.url, node.public_key, safe_state=stop,
                  recorder=None, clock=clock, http=node.client())
"""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from custodes.errors import AuthError, BadRequest, CustodesError, Overloaded
from custodes.killswitch.broadcast import PushSigner
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.commitments import open_decision, parse_opening
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    key_thumbprint,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import EnvelopeError
from custodes.ledger.payloads import (
    DECISION_TYPE,
    CommittedDecision,
    DecisionRecord,
    validate_payload,
)
from custodes.sdk.leases import LEASE_REQUEST_TYPE, LEASE_TYPE

__all__ = ["KILL_ORDER_TYPE", "FakeClock", "FakeNode"]

KILL_ORDER_TYPE = "application/vnd.custodes.kill-order+json"
_REQUEST_WINDOW = 30.0


class FakeClock:
    """Time that moves only when a test says so; call it like ``time.time``."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self._now += seconds
            return self._now

    def set(self, now: float) -> None:
        with self._lock:
            self._now = now


@dataclass
class _Agent:
    agent_id: str
    public_key: bytes
    jurisdictions: tuple[str, ...]


def _chunk(data: dict[str, Any]) -> bytes:
    return b"event: order\ndata: " + orjson.dumps(data) + b"\n\n"


class _EventStream(httpx.SyncByteStream):
    """One subscriber's server-sent events; a comment heartbeat when idle."""

    def __init__(
        self,
        agent_id: str | None,
        heartbeat: float,
        on_close: Callable[[], None],
        push: PushSigner,
    ):
        self.agent_id = agent_id
        self._heartbeat, self._on_close, self._push = heartbeat, on_close, push
        self._queue: queue.Queue[bytes | None] = queue.Queue()

    def put(self, chunk: bytes | None) -> None:
        self._queue.put(chunk)

    @property
    def nonce(self) -> str:
        return self._push.nonce

    def send(self, event: dict[str, Any]) -> bytes:
        """Countersign ``event`` for this stream and queue it; return the chunk sent."""
        chunk = _chunk(self._push.sign(event))
        self._queue.put(chunk)
        return chunk

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                chunk = self._queue.get(timeout=self._heartbeat)
            except queue.Empty:
                yield b": heartbeat\n\n"
                continue
            if chunk is None:
                return
            yield chunk

    def close(self) -> None:
        self._queue.put(None)
        self._on_close()


def _error(exc: CustodesError) -> httpx.Response:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else {}
    return httpx.Response(exc.status, json=exc.to_json(), headers=headers)


def _seconds(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


class FakeNode:
    """A home node in memory, for SDK tests (see the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        url: str = "https://node.fake.custodes.example",
        lease_ttl: float = 60.0,
        heartbeat: float = 0.05,
        issuer: str = "node.fake.custodes.example",
    ) -> None:
        self.clock, self.url, self.issuer = clock, url, issuer
        self.lease_ttl, self.heartbeat = lease_ttl, heartbeat
        self.signer = EnvelopeSigner.generate()
        self.regulator = EnvelopeSigner.generate()
        self.public_key = self.signer.public_key
        # switches a test flips
        self.reachable = True
        self.unavailable: int | None = None  # e.g. 503: every request answers this status
        self.retry_after = 0
        self.refuse_leases = False
        self.lose_responses = 0  # appends stored but answered with a dropped connection
        self.lease_signer = self.signer  # set another key to issue forged leases
        self.lease_hook: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        # what the node saw
        self.log: list[Envelope] = []
        self._clear: dict[int, DecisionRecord] = {}  # a committed decision's clear record
        self.received = 0  # decision entries received, duplicates and lost answers included
        self.lease_requests = 0
        self.pushed: list[bytes] = []  # every order event sent, countersigned
        self._lock = threading.Lock()
        self._agents: dict[str, _Agent] = {}  # by key id
        self._dedup: dict[tuple[str, str], int] = {}
        self._nonces: set[str] = set()
        self._orders: dict[str, dict[str, Any]] = {}  # active, by order id
        self._events: dict[str, dict[str, Any]] = {}  # the active orders' stream events
        self._streams: list[_EventStream] = []
        self.transport = httpx.MockTransport(self._handle)

    # -- set-up and inspection -------------------------------------------------------

    def client(self) -> httpx.Client:
        """An httpx client wired to this node (``Guard(http=...)``, ``Client(url, http=...)``)."""
        return httpx.Client(transport=self.transport, base_url=self.url)

    def register_agent(
        self, agent_id: str, public_key: bytes, jurisdictions: Iterable[str] = ("GB",)
    ) -> None:
        agent = _Agent(agent_id, public_key, tuple(jurisdictions))
        with self._lock:
            self._agents[key_thumbprint(public_key)] = agent

    def decisions(self) -> list[DecisionRecord]:
        """The decision records in the log, in log order (committed ones in clear)."""
        with self._lock:
            found = [(i, e) for i, e in enumerate(self.log) if e.payload_type == DECISION_TYPE]
            clear = dict(self._clear)
        return [clear.get(i) or DecisionRecord.model_validate_json(e.payload) for i, e in found]

    def subscribers(self) -> int:
        with self._lock:
            return len(self._streams)

    def stream_nonces(self) -> list[str]:
        """The challenge of each open stream (what its countersignatures are bound to)."""
        with self._lock:
            return [stream.nonce for stream in self._streams]

    def wait_for_subscribers(self, count: int = 1, timeout: float = 5.0) -> bool:
        """Wait (real time) until ``count`` streams are open, so a pushed order is seen."""
        deadline = time.monotonic() + timeout
        while self.subscribers() < count:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def set_reachable(self, reachable: bool) -> None:
        """Unreachable: every request fails to connect and open streams are cut."""
        self.reachable = reachable
        if not reachable:
            self._end_streams()

    def close(self) -> None:
        self._end_streams()

    def inject(self, data: dict[str, Any] | bytes) -> int:
        """Put an ``order`` event with ``data`` (or raw SSE bytes) into every open stream,
        as an attacker on the path would; return how many streams got it."""
        chunk = data if isinstance(data, bytes) else _chunk(data)
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.put(chunk)
        return len(streams)

    # -- kill orders -----------------------------------------------------------------

    def suspend(self, agent_id: str, *, territory: str | None = None, reason: str = "") -> str:
        return self._order("suspend", agent_id, territory, reason or "suspended", None)

    def revoke(self, agent_id: str, *, territory: str | None = None, reason: str = "") -> str:
        return self._order("revoke", agent_id, territory, reason or "revoked", None)

    def reinstate(self, order_id: str, *, reason: str = "") -> str:
        with self._lock:
            lifted = self._orders[order_id]
        return self._order(
            "reinstate", lifted["agent_id"], lifted["territory"], reason or "lifted", order_id
        )

    def _order(
        self, op: str, agent_id: str, territory: str | None, reason: str, lifts: str | None
    ) -> str:
        order: dict[str, Any] = {
            "v": 1,
            "op": op,
            "order_id": uuid.uuid4().hex,
            "agent_id": agent_id,
            "scope": "territorial" if territory else "global",
            "territory": territory,
            "reason": reason,
            "actor": "regulator:fake",
            "at": datetime.fromtimestamp(self.clock(), UTC).isoformat(),
            "lifts": lifts,
        }
        envelope = sign_envelope(KILL_ORDER_TYPE, canonical_dumps(order), [self.regulator])
        with self._lock:  # held while sending: each stream gets events in log order
            index = self._sequence(envelope)
            event = {"index": index, "order": order, "envelope": envelope.to_json()}
            if lifts is None:
                self._orders[order["order_id"]] = order
                self._events[order["order_id"]] = event
            else:
                self._orders.pop(lifts, None)
                self._events.pop(lifts, None)
            for stream in self._streams:
                if stream.agent_id in (None, agent_id):
                    self.pushed.append(stream.send(event))
        return str(order["order_id"])

    # -- HTTP ------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if not self.reachable:
            raise httpx.ConnectError("the fake node is unreachable", request=request)
        if self.unavailable is not None:
            return _error(self._unavailable())
        route = (request.method, request.url.path)
        try:
            if route == ("POST", "/api/v1/leases"):
                return self._lease(request)
            if route == ("POST", "/api/v1/entries"):
                return self._append(request)
            if route == ("GET", "/api/v1/kill-orders/stream"):
                return self._stream(request)
        except CustodesError as exc:
            return _error(exc)
        return _error(CustodesError("no such route", code="not_found", status=404))

    def _unavailable(self) -> CustodesError:
        if self.unavailable == 503:
            return Overloaded("the fake node is overloaded", retry_after=self.retry_after)
        return CustodesError("the fake node fails", code="fake_failure", status=self.unavailable)

    def _agent_envelope(self, raw: bytes, payload_type: str) -> tuple[Envelope, _Agent]:
        try:
            envelope = parse_envelope(orjson.loads(raw))
        except orjson.JSONDecodeError as exc:
            raise BadRequest("body is not JSON") from exc
        if envelope.payload_type != payload_type:
            raise BadRequest(f"expected {payload_type}", code="unsupported_payload_type")
        with self._lock:
            agents = dict(self._agents)
        keyids = verify_envelope(envelope, lambda k: a.public_key if (a := agents.get(k)) else None)
        return envelope, agents[keyids[0]]

    def _lease(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.lease_requests += 1
        envelope, agent = self._agent_envelope(request.content, LEASE_REQUEST_TYPE)
        asked = orjson.loads(envelope.payload)
        self._check_request(asked, agent)
        jurisdictions = self._leasable(agent)
        payload = {
            "v": 1,
            "lease_id": uuid.uuid4().hex,
            "nonce": asked["nonce"],
            "agent_id": agent.agent_id,
            "keyid": envelope.signatures[0].keyid,
            "jurisdictions": jurisdictions,
            "nbf": _seconds(self.clock()),
            "exp": _seconds(self.clock() + self.lease_ttl),
            "issuer": self.issuer,
        }
        if self.lease_hook is not None:
            payload = self.lease_hook(payload)
        lease = sign_envelope(LEASE_TYPE, canonical_dumps(payload), [self.lease_signer])
        return httpx.Response(201, content=lease.to_bytes())

    def _check_request(self, payload: dict[str, Any], agent: _Agent) -> None:
        if payload.get("agent_id") != agent.agent_id:
            raise AuthError("the request names another agent", code="wrong_agent", status=403)
        if abs(float(payload.get("at", 0)) - self.clock()) > _REQUEST_WINDOW:
            raise AuthError("the request is stale", code="stale_request", status=403)
        with self._lock:
            if payload.get("nonce") in self._nonces:
                raise AuthError("the nonce was used", code="replayed_request", status=403)
            self._nonces.add(str(payload.get("nonce")))

    def _leasable(self, agent: _Agent) -> list[str]:
        with self._lock:
            orders = [o for o in self._orders.values() if o["agent_id"] == agent.agent_id]
        if self.refuse_leases or any(o["scope"] == "global" for o in orders):
            raise AuthError("the agent is halted: no lease", code="agent_halted", status=403)
        blocked = {o["territory"] for o in orders}
        return sorted(j for j in agent.jurisdictions if j not in blocked)

    def _append(self, request: httpx.Request) -> httpx.Response:
        body = orjson.loads(request.content)
        if not isinstance(body, dict) or not isinstance(body.get("entries"), list):
            raise BadRequest('the body must be {"entries": [...]}', code="invalid_batch")
        entries = [
            self._at(position, len(body["entries"]), obj)
            for position, obj in enumerate(body["entries"])
        ]
        with self._lock:
            self.received += len(entries)
            indices = [self._store(envelope, record) for envelope, record in entries]
            lose = self.lose_responses > 0
            self.lose_responses -= int(lose)
        if lose:
            raise httpx.ReadError("the fake node dropped the connection", request=request)
        return httpx.Response(200, json={"indices": indices})

    def _at(self, position: int, total: int, obj: Any) -> tuple[Envelope, DecisionRecord]:
        """As the node does, a refused batch names the refused entry's position."""
        try:
            return self._decision(obj)
        except CustodesError as exc:
            if total > 1:
                exc.detail = {**exc.detail, "entry": position}
            raise

    def _decision(self, obj: Any) -> tuple[Envelope, DecisionRecord]:
        opening = None
        if isinstance(obj, dict) and "envelope" in obj:  # a committed decision and its opening
            obj, opening = obj["envelope"], parse_opening(obj.get("opening"))
        envelope, agent = self._agent_envelope(canonical_dumps(obj), DECISION_TYPE)
        record = validate_payload(DECISION_TYPE, envelope.payload)
        if isinstance(record, CommittedDecision):
            if opening is None:
                raise EnvelopeError(
                    "a committed decision needs its opening", code="opening_missing"
                )
            record = open_decision(record, opening)
        if not isinstance(record, DecisionRecord) or record.agent != agent.agent_id:
            raise EnvelopeError("the decision names another agent", code="wrong_agent")
        with self._lock:
            revoked = any(
                o["op"] == "revoke" and o["scope"] == "global" and o["agent_id"] == agent.agent_id
                for o in self._orders.values()
            )
        if revoked and record.action != "halt":  # as the node: a revoked agent records its halt
            raise AuthError("the agent is revoked", code="agent_revoked", status=403)
        return envelope, record

    def _store(self, envelope: Envelope, record: DecisionRecord) -> int:
        key = record.idempotency_key
        if key is not None and (record.agent, key) in self._dedup:
            return self._dedup[(record.agent, key)]
        index = self._sequence(envelope)
        self._clear[index] = record
        if key is not None:
            self._dedup[(record.agent, key)] = index
        return index

    def _sequence(self, envelope: Envelope) -> int:
        self.log.append(envelope)
        return len(self.log) - 1

    def _stream(self, request: httpx.Request) -> httpx.Response:
        agent_id = request.url.params.get("agent_id")
        push = PushSigner(self.signer, request.url.params.get("nonce"), clock=self.clock)
        stream = _EventStream(agent_id, self.heartbeat, lambda: self._forget(stream), push)
        stream.put(b": connected\n\n")
        with self._lock:  # like the node: the active orders first, so a reconnect misses none
            self._streams.append(stream)
            for order_id, event in self._events.items():
                if agent_id in (None, self._orders[order_id]["agent_id"]):
                    self.pushed.append(stream.send(event))
        headers = {"Content-Type": "text/event-stream"}
        return httpx.Response(200, headers=headers, stream=stream)

    def _forget(self, stream: _EventStream) -> None:
        with self._lock:
            if stream in self._streams:
                self._streams.remove(stream)

    def _end_streams(self) -> None:
        with self._lock:
            streams, self._streams = self._streams, []
        for stream in streams:
            stream.put(None)

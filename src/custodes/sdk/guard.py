"""The guard: no side-effecting action without a valid lease and no kill order against it.

``GuardState`` (``custodes.sdk.state``) is the pure core: what the agent may do, given
the lease it holds, the kill orders it has received and the time. ``Guard`` is the
runtime around it: a thread
keeps a lease (renewing at ``renew_at`` of its lifetime), another follows the node's
kill-order stream (server-sent events), and ``check`` / ``action`` / ``run`` wrap every
side-effecting action. Only pushed orders the home node countersigned for this stream and
agent are applied (``custodes.sdk.pushes``); others are ignored and move nothing. Given
``issuers`` (the alliance roster and the node's registry), the guard also checks each
order's own signature by its issuer (``custodes.sdk.issuers``) and ignores, logged, an
order it cannot verify however it came.

Halt episodes. The guard is *operating* once it has seen itself free to act (a valid
lease, no order halting it everywhere). The first moment it finds itself halted
everywhere after that — at a check, when an order arrives, or when the lease runs out
with nobody calling — starts a halt episode: the operator's ``safe_state`` runs exactly
once (even under concurrent callers), after a ``halt`` decision has been recorded. A reinstate
plus a fresh lease makes it operating again; a later halt is a new episode and runs
``safe_state`` again. A territorial order only refuses actions in its territory: it
calls ``on_territorial_halt(territory)`` once and records a halt for that jurisdiction.
When a halt episode ends (the order lifted, a lease renewed) the guard logs the recovery
and calls ``on_resume``. ``Halted`` names the kill order behind a refusal: its reason
and its issuer.

The guard talks to its node through ``custodes.client.Client`` (leases, the stream).

The guard fails closed: with the node unreachable it acts until its lease expires, by
its own clock, with no grace. A check that passes a moment before an order arrives lets
that one action through; pair the guard with idempotent, compensable actions.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

import httpx
import orjson

from custodes.client import Client, OrderStream, check_node_url
from custodes.errors import ConfigError, CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.issuers import IssuerKeys, UnverifiedOrder
from custodes.sdk.leases import Lease, LeaseRefused, request_lease
from custodes.sdk.pushes import (
    LogThrottle,
    PushedOrder,
    UnverifiedPush,
    sse_events,
    stream_nonce,
    verify_push,
)
from custodes.sdk.recorder import DecisionRecorder
from custodes.sdk.state import (
    GuardState,
    Halted,
    HaltReason,
    KillOrder,
    KillOrderError,
    order_halt,
)

__all__ = [
    "TEST_KEY_PREFIX",
    "Guard",
    "GuardState",
    "HaltReason",
    "Halted",
    "KillOrder",
    "KillOrderError",
]

log = logging.getLogger("custodes.sdk.guard")

# A conformance test's halt record carries this idempotency key prefix and the test id.
TEST_KEY_PREFIX = "killswitch-test:"
_MAX_TEST_HOLD_MS = 60_000.0  # a test halts the agent this long at most

P = ParamSpec("P")
T = TypeVar("T")


class Guard:
    """The runtime guard an agent embeds; see the module docstring for the semantics."""

    def __init__(
        self,
        agent_id: str,
        signer: EnvelopeSigner,
        node_url: str,
        node_public_key: bytes,
        *,
        safe_state: Callable[[], None],
        recorder: DecisionRecorder | None,
        clock: Callable[[], float] = time.time,
        http: httpx.Client | None = None,
        renew_at: float = 0.5,
        on_territorial_halt: Callable[[str], None] | None = None,
        on_resume: Callable[[], None] | None = None,
        retry_initial: float = 1.0,
        retry_max: float = 10.0,
        poll: float = 0.5,
        stream_read_timeout: float = 45.0,
        issuers: IssuerKeys | None = None,
    ) -> None:
        if not 0 < renew_at < 1:
            raise ConfigError("renew_at is a fraction of the lease lifetime, between 0 and 1")
        self.agent_id = agent_id
        self._signer, self._node_url = signer, check_node_url(node_url)
        self._node_key = node_public_key
        self._safe_state, self._on_territorial = safe_state, on_territorial_halt
        self._on_resume = on_resume
        self._recorder, self._clock, self._renew_at = recorder, clock, renew_at
        self._node = Client(self._node_url, http=http) if http else Client(self._node_url)
        self._retry = (retry_initial, retry_max)
        self._poll, self._read_timeout = poll, stream_read_timeout
        self._state = GuardState(agent_id)
        self._lock = threading.Lock()
        # One renewal at a time: two in flight (the renewal thread's and a caller's) could
        # be answered in either order, and holding the newer lease first would make the
        # older one look like a replay.
        self._renewing = threading.Lock()
        self._operating = False
        self._in_episode = False  # halted everywhere after operating, not yet resumed
        self._blocked: frozenset[str] = frozenset()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._renew_now, self._has_lease = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._stream: OrderStream | None = None
        self._unverified = LogThrottle(log)
        self._issuers = issuers

    # -- the checks an agent calls ---------------------------------------------------

    def check(self, territory: str) -> None:
        """Raise Halted unless the agent may act in ``territory`` now."""
        now = self._clock()
        self._observe(now)
        with self._lock:
            refusal = self._state.refusal(territory, now)
        if refusal is not None:
            raise refusal

    @contextmanager
    def action(self, territory: str) -> Iterator[None]:
        """``with guard.action("FR"): place_order()`` runs the body only when allowed."""
        self.check(territory)
        yield

    def run(self, fn: Callable[P, T], territory: str, /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Call ``fn(*args, **kwargs)`` if the agent may act in ``territory``."""
        self.check(territory)
        return fn(*args, **kwargs)

    def halted(self) -> Halted | None:
        """Why the agent may act nowhere now, or None."""
        with self._lock:
            return self._state.halted(self._clock())

    @property
    def lease(self) -> Lease | None:
        with self._lock:
            return self._state.lease

    @property
    def stream_connected(self) -> bool:
        """Whether the kill-order stream is open now (orders then arrive as issued)."""
        return self._stream is not None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start the lease keeper and the kill-order subscriber threads (once)."""
        if self._threads or self._stop.is_set():
            return
        for name, target in (("lease-keeper", self._keep_leases), ("kill-orders", self._follow)):
            thread = threading.Thread(target=target, name=f"custodes-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop both threads. The lease held runs out on its own: nothing renews it."""
        self._stop.set()
        self._wake.set()
        stream = self._stream
        if stream is not None:
            stream.interrupt()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()
        self._node.close()

    def __enter__(self) -> Guard:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def wait_for_lease(self, timeout: float) -> bool:
        """Block (real time) until a first lease arrives; False on timeout."""
        return self._has_lease.wait(timeout)

    def renew(self) -> Lease:
        """Ask the node for a lease now and hold it; raises what request_lease raises."""
        with self._renewing:
            with self._lock:
                horizon = self._state.horizon
            lease = request_lease(
                self._node,
                self._signer,
                self.agent_id,
                node_public_key=self._node_key,
                now=self._clock(),
            )
            with self._lock:
                self._state.on_lease(lease, horizon=horizon)
                self._blocked &= self._state.blocked_territories()  # orders the lease settled
        self._has_lease.set()
        self._observe(self._clock(), cause=f"lease {lease.lease_id} renewed")
        return lease

    # -- halt episodes ---------------------------------------------------------------

    def _observe(self, now: float, cause: str = "the halt ended") -> None:
        with self._lock:
            halt = self._state.halted(now)
            starts_episode = halt is not None and self._operating
            resumes = halt is None and self._in_episode
            self._operating = halt is None
            self._in_episode = (self._in_episode or starts_episode) and not resumes
        if halt is not None and starts_episode:
            self._enter_halt(halt)
        elif resumes:
            self._resume(cause)

    def _resume(self, cause: str) -> None:
        log.info("guard of %s resumed after a halt: %s", self.agent_id, cause)
        if self._on_resume is None:
            return
        try:
            self._on_resume()
        except Exception:
            log.exception("the on_resume hook failed; the guard operates nonetheless")

    def _enter_halt(self, halt: Halted, territory: str | None = None) -> None:
        log.warning("guard of %s halted: %s", self.agent_id, halt.message)
        self._record_halt(halt, territory)  # first: the record is durable whatever the hook does
        try:
            if territory is None:
                self._safe_state()
            elif self._on_territorial is not None:
                self._on_territorial(territory)
        except Exception:
            log.exception("the safe-state hook failed; the guard stays halted")

    def _record_halt(self, halt: Halted, territory: str | None) -> None:
        if self._recorder is None:
            return
        orders = halt.detail.get("orders") or []
        cause = f" (orders {', '.join(orders)})" if orders else ""
        test_id = halt.detail.get("test_id")  # a conformance test's halt names the test
        try:
            self._recorder.record(
                "halt",
                f"{halt.reason}: {halt.message}{cause}",
                jurisdiction=territory,
                idempotency_key=None if test_id is None else f"{TEST_KEY_PREFIX}{test_id}",
            )
        except CustodesError:
            log.exception("could not record the halt")

    def _apply_order(self, order: Mapping[str, Any], index: int) -> None:
        with self._lock:
            applied = self._state.on_order(order, index)
            blocked = self._state.blocked_territories()
            fresh = blocked - self._blocked if self._operating else frozenset()
            self._blocked = blocked
            halts = [self._territorial_halt(t) for t in sorted(fresh)]
        if applied is None:
            return
        log.warning("kill order %s (%s) at log index %d", applied.order_id, applied.op, index)
        for halt in halts:
            self._enter_halt(halt, halt.territory)
        if applied.op == "reinstate":
            log.info("order %s lifted for %s by %s", applied.lifts, self.agent_id, applied.issuer)
            self._renew_now.set()
            self._wake.set()
        self._observe(self._clock(), cause=f"order {applied.lifts} lifted")

    def _apply_test(self, order: Mapping[str, Any]) -> None:
        """A kill-switch conformance test pushed by the home node (docs/design/0028):
        ``start`` halts the agent through the usual halt path (safe state, a halt record
        whose idempotency key names the test) until ``end`` or the hold runs out; it is
        never a kill order and moves nothing else (orders, horizon, lease)."""
        test_id, phase = order.get("test_id"), order.get("phase")
        if not isinstance(test_id, str) or not test_id or phase not in ("start", "end"):
            log.warning("ignoring an unreadable conformance test push")
            return
        now = self._clock()
        if phase == "start":
            hold = min(max(float(order.get("hold_ms") or 0), 0.0), _MAX_TEST_HOLD_MS) / 1000
            log.warning("guard of %s: kill-switch conformance test %s", self.agent_id, test_id)
            with self._lock:
                already = self._state.halted(now)  # e.g. no lease: the gate is shut
                self._state.start_test(test_id, now + hold)
            if already is not None:
                # Halted already (an agent awaiting its audit holds no lease): no new
                # halt episode begins, so record the test's halt here, as the proof
                # that the order reached the agent and its halt path works.
                self._record_halt(Halted("conformance_test", detail={"test_id": test_id}), None)
            self._wake.set()  # the lease keeper watches the hold's end
            self._observe(now)
            return
        with self._lock:
            ended = self._state.end_test(test_id)
            still = self._state.halted(now) if ended and self._in_episode else None
        if still is not None:  # a real order came during the test: its own halt record
            self._record_halt(still, None)
        if ended:
            self._observe(now, cause=f"conformance test {test_id} ended")

    def _territorial_halt(self, territory: str) -> Halted:
        orders = [o for o in self._state.active_orders() if o.territory == territory]
        return order_halt(orders, territory)

    # -- the lease keeper ------------------------------------------------------------

    def _keep_leases(self) -> None:
        next_try, backoff = self._clock(), self._retry[0]
        while not self._stop.is_set():
            now = self._clock()
            if now >= next_try or self._renew_now.is_set():
                self._renew_now.clear()
                next_try, backoff = self._renew_step(now, backoff)
            self._observe(self._clock())
            self._sleep_until(min(next_try, self._next_lease_edge()))

    def _renew_step(self, now: float, backoff: float) -> tuple[float, float]:
        """One renewal attempt: when to try next, and the backoff after it."""
        try:
            lease = self.renew()
        except LeaseRefused as exc:
            log.warning("the node refused a lease (%s); dropping the lease held", exc.code)
            with self._lock:
                self._state.drop_lease(exc)
        except CustodesError as exc:
            log.warning("lease renewal failed (%s); retrying, the lease runs out meanwhile", exc)
        except Exception:  # a bug must not end renewals silently; the lease still runs out
            log.exception("lease renewal failed unexpectedly; retrying")
        else:
            renew = lease.nbf + self._renew_at * lease.lifetime
            return max(renew, now + self._retry[0]), self._retry[0]
        return now + backoff, min(backoff * 2, self._retry[1])

    def _next_lease_edge(self) -> float:
        """The next nbf or exp ahead, so a lapse is noticed with nobody calling check."""
        with self._lock:
            return self._state.next_change(self._clock())

    def _sleep_until(self, deadline: float) -> None:
        remaining = deadline - self._clock()
        if remaining > 0:
            self._wake.wait(min(remaining, self._poll))
            self._wake.clear()

    # -- the kill-order subscriber ---------------------------------------------------

    def _follow(self) -> None:
        backoff = self._retry[0]
        while not self._stop.is_set():
            try:
                connected = self._follow_once()
            except Exception:
                log.exception("the kill-order stream failed")
                connected = False
            backoff = self._retry[0] if connected else min(backoff * 2, self._retry[1])
            self._stop.wait(backoff)

    def _follow_once(self) -> bool:
        nonce = stream_nonce()  # binds the node's countersignatures to this connection
        try:
            with self._node.kill_order_stream(
                self.agent_id, nonce, read_timeout=self._read_timeout
            ) as stream:
                self._stream = stream
                self._read(stream.lines(), nonce)
                return True
        except CustodesError as exc:
            if not self._stop.is_set():  # stop() closes the stream under the reader
                log.warning("the kill-order stream is down (%s); reconnecting", exc.message)
            return False
        finally:
            self._stream = None

    def _read(self, lines: Iterable[str], nonce: str) -> None:
        seq = 0  # the last push accepted on this connection
        for event in sse_events(lines):
            if self._stop.is_set():
                return
            if event is None or event[0] != "order":
                continue
            pushed = self._verified(event[1], nonce, seq)
            if pushed is None:
                continue
            seq = pushed.seq
            if pushed.order.get("op") == "test":  # the node's own test: no issuer but it
                self._apply_test(pushed.order)
                continue
            if not self._issued_by_known_key(event[1], pushed):
                continue
            try:
                self._apply_order(pushed.order, pushed.index)
            except KillOrderError as exc:
                log.warning("ignoring an unreadable kill order: %s", exc)

    def _issued_by_known_key(self, data: str, pushed: PushedOrder) -> bool:
        """Whether the order's own envelope is signed by its issuer's known key (always
        true without ``issuers``: the node's countersignature is then the only check)."""
        if self._issuers is None:
            return True
        try:
            self._issuers.verify(orjson.loads(data).get("envelope"), pushed.order)
        except (UnverifiedOrder, orjson.JSONDecodeError, AttributeError) as exc:
            self._unverified.warning("ignoring a countersigned kill order: %s", exc)
            return False
        return True

    def _verified(self, data: str, nonce: str, seq: int) -> PushedOrder | None:
        """The order the node pushed on this stream, or None (logged) for anything else."""
        try:
            return verify_push(
                data,
                node_public_key=self._node_key,
                agent_id=self.agent_id,
                stream=nonce,
                after_seq=seq,
            )
        except UnverifiedPush as exc:
            self._unverified.warning("ignoring a kill-order event: %s", exc.message)
            return None

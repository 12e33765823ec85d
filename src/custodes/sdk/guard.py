"""The guard: no side-effecting action without a valid lease and no kill order against it.

``GuardState`` is the pure core: what the agent may do, given the lease it holds, the
kill orders it has received and the time. ``Guard`` is the runtime around it: a thread
keeps a lease (renewing at ``renew_at`` of its lifetime), another follows the node's
kill-order stream (server-sent events), and ``check`` / ``action`` / ``run`` wrap every
side-effecting action. Only pushed orders the home node countersigned for this stream and
agent are applied (``custodes.sdk.pushes``); others are ignored and move nothing.

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
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, ParamSpec, TypeVar

import httpx

from custodes.client import Client, OrderStream, check_node_url
from custodes.errors import ConfigError, CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.leases import Lease, LeaseError, LeaseRefused, request_lease
from custodes.sdk.pushes import (
    LogThrottle,
    PushedOrder,
    UnverifiedPush,
    sse_events,
    stream_nonce,
    verify_push,
)
from custodes.sdk.recorder import DecisionRecorder

__all__ = ["Guard", "GuardState", "HaltReason", "Halted", "KillOrder", "KillOrderError"]

log = logging.getLogger("custodes.sdk.guard")

HaltReason = Literal[
    "no_lease", "lease_expired", "lease_not_yet_valid", "territory_not_leased", "kill_order"
]
_MESSAGES: dict[str, str] = {
    "no_lease": "the agent holds no lease from its home node",
    "lease_expired": "the agent's lease has expired and the home node has not renewed it",
    "lease_not_yet_valid": "the agent's lease is not valid yet (check the clocks)",
    "territory_not_leased": "the agent's lease does not cover this territory",
    "kill_order": "a kill order halts the agent",
}
_ORDER_OPS = ("suspend", "revoke", "reinstate")
_SCOPES = ("global", "territorial")

P = ParamSpec("P")
T = TypeVar("T")


class Halted(CustodesError):
    """The guard refuses the action; ``reason`` says why.

    Under a kill order, ``order_id``, ``order_reason`` and ``issuer`` name the newest
    order behind the refusal (``detail["orders"]`` lists them all).
    """

    code = "halted"
    status = 403

    def __init__(
        self,
        reason: HaltReason,
        *,
        territory: str | None = None,
        detail: dict[str, Any] | None = None,
        order: KillOrder | None = None,
    ) -> None:
        where = f" in {territory}" if territory else ""
        cause = f" ({order.op} by {order.issuer}: {order.reason})" if order else ""
        super().__init__(
            f"action refused{where}: {_MESSAGES[reason]}{cause}",
            detail={"reason": reason, "territory": territory, **(detail or {})},
        )
        self.reason: HaltReason = reason
        self.territory = territory
        self.order_id = order.order_id if order else None
        self.order_reason = order.reason if order else None
        self.issuer = order.issuer if order else None
        if order is not None:
            self.detail |= {"order_reason": order.reason, "issuer": order.issuer}


class KillOrderError(CustodesError):
    """A kill order the guard cannot read."""

    code = "bad_kill_order"
    status = 422


@dataclass(frozen=True)
class KillOrder:
    """A suspend, revoke or reinstate order as the node pushed it."""

    order_id: str
    op: Literal["suspend", "revoke", "reinstate"]
    agent_id: str
    scope: Literal["global", "territorial"]
    territory: str | None
    lifts: str | None
    index: int
    reason: str = ""
    issuer: str = ""

    @classmethod
    def parse(cls, order: Mapping[str, Any], index: int) -> KillOrder:
        op, scope = order.get("op"), order.get("scope", "global")
        if op not in _ORDER_OPS or scope not in _SCOPES:
            raise KillOrderError(f"unknown kill order op {op!r} or scope {scope!r}")
        parsed = cls(
            order_id=_text(order, "order_id"),
            op=op,
            agent_id=_text(order, "agent_id"),
            scope=scope,
            territory=order.get("territory") if scope == "territorial" else None,
            lifts=order.get("lifts") if op == "reinstate" else None,
            index=index,
            reason=str(order.get("reason") or ""),
            issuer=str(order.get("actor") or ""),
        )
        if scope == "territorial" and not isinstance(parsed.territory, str):
            raise KillOrderError("a territorial order must name its territory")
        if op == "reinstate" and not isinstance(parsed.lifts, str):
            raise KillOrderError("a reinstate order must name the order it lifts")
        return parsed


def _text(order: Mapping[str, Any], name: str) -> str:
    value = order.get(name)
    if not isinstance(value, str) or not value:
        raise KillOrderError(f"kill order field {name!r} must be a non-empty string")
    return value


class GuardState:
    """What the agent may do: a pure state machine over leases, orders and time."""

    def __init__(self, agent_id: str) -> None:
        self.agent_id = agent_id
        self._lease: Lease | None = None
        self._previous: Lease | None = None
        self._active: dict[str, KillOrder] = {}
        self._lifted: set[str] = set()
        self._horizon = -1

    @property
    def lease(self) -> Lease | None:
        """The newest lease held."""
        return self._lease

    @property
    def horizon(self) -> int:
        """The highest log index of any order received (-1 before the first)."""
        return self._horizon

    def on_lease(self, lease: Lease, *, horizon: int | None = None) -> None:
        """Hold ``lease``; refuse one for another agent or older than the one held.

        ``horizon`` is ``self.horizon`` when the lease was requested: the node issued
        the lease knowing every order up to it, so an order it contradicts (global, or
        for a territory the lease covers) was lifted meanwhile, even if the reinstate
        was missed while the stream was down.
        """
        if lease.agent_id != self.agent_id:
            raise LeaseError(f"the lease is for agent {lease.agent_id!r}")
        if self._lease is not None and lease.nbf < self._lease.nbf:
            raise LeaseError("the lease is older than the one held (a replay)")
        # The previous lease still counts until it expires: a node clock a little ahead
        # of ours must not make a renewal leave a gap before the new lease's nbf.
        self._previous, self._lease = self._lease, lease
        if horizon is not None:
            self._settle(lease, horizon)

    def drop_lease(self) -> None:
        self._lease = self._previous = None

    def _settle(self, lease: Lease, horizon: int) -> None:
        for order in list(self._active.values()):
            if order.index <= horizon and order.territory in (None, *lease.jurisdictions):
                del self._active[order.order_id]

    def next_change(self, now: float) -> float:
        """The next nbf or exp after ``now`` (inf if none): when the answer may change."""
        times = [t for x in (self._lease, self._previous) if x for t in (x.nbf, x.exp)]
        return min((t for t in times if t > now), default=float("inf"))

    def _lease_at(self, now: float) -> Lease | None:
        for lease in (self._lease, self._previous):
            if lease is not None and lease.nbf <= now < lease.exp:
                return lease
        return self._lease

    def on_order(self, order: Mapping[str, Any], index: int) -> KillOrder | None:
        """Apply a pushed order; return it, or None when it does not concern this agent."""
        parsed = KillOrder.parse(order, index)
        if parsed.agent_id != self.agent_id:
            return None  # says nothing about what the node knew of this agent's orders
        self._horizon = max(self._horizon, index)
        if parsed.order_id in self._lifted:
            return None
        if parsed.lifts is not None:
            self._lifted.add(parsed.lifts)
            self._active.pop(parsed.lifts, None)
        else:
            self._active[parsed.order_id] = parsed
        return parsed

    def active_orders(self) -> tuple[KillOrder, ...]:
        return tuple(sorted(self._active.values(), key=lambda o: o.index))

    def blocked_territories(self) -> frozenset[str]:
        return frozenset(o.territory for o in self._active.values() if o.territory is not None)

    def check(self, territory: str, now: float) -> None:
        refusal = self.refusal(territory, now)
        if refusal is not None:
            raise refusal

    def refusal(self, territory: str, now: float) -> Halted | None:
        """Why an action in ``territory`` is refused at ``now``, or None when allowed."""
        lease = self._lease_at(now)
        if lease is None:
            return self._global_halt() or Halted("no_lease")
        found = self._global_halt() or self._lease_problem(lease, now)
        if found is not None:
            return found
        local = [o for o in self.active_orders() if o.territory == territory]
        if local:
            return _order_halt(local, territory)
        if territory not in lease.jurisdictions:
            return Halted("territory_not_leased", territory=territory)
        return None

    def halted(self, now: float) -> Halted | None:
        """Why the agent may act nowhere at ``now``, or None when it may act somewhere."""
        lease = self._lease_at(now)
        if lease is None:
            return self._global_halt() or Halted("no_lease")
        found = self._global_halt() or self._lease_problem(lease, now)
        if found is not None:
            return found
        if not lease.jurisdictions:
            return Halted("territory_not_leased")
        if lease.jurisdictions <= self.blocked_territories():
            return _order_halt(self.active_orders(), None)
        return None

    def _global_halt(self) -> Halted | None:
        orders = [o for o in self.active_orders() if o.scope == "global"]
        return _order_halt(orders, None) if orders else None

    @staticmethod
    def _lease_problem(lease: Lease, now: float) -> Halted | None:
        times = {"lease_id": lease.lease_id, "nbf": lease.nbf, "exp": lease.exp, "now": now}
        if now < lease.nbf:
            return Halted("lease_not_yet_valid", detail=times)
        if now >= lease.exp:
            return Halted("lease_expired", detail=times)
        return None


def _order_halt(orders: Sequence[KillOrder], territory: str | None) -> Halted:
    """The refusal ``orders`` (oldest first) cause, naming the newest of them."""
    ids = [o.order_id for o in orders]
    return Halted("kill_order", territory=territory, detail={"orders": ids}, order=orders[-1])


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
        self._operating = False
        self._in_episode = False  # halted everywhere after operating, not yet resumed
        self._blocked: frozenset[str] = frozenset()
        self._stop, self._wake = threading.Event(), threading.Event()
        self._renew_now, self._has_lease = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self._stream: OrderStream | None = None
        self._unverified = LogThrottle(log)

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
        try:
            self._recorder.record(
                "halt", f"{halt.reason}: {halt.message}{cause}", jurisdiction=territory
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

    def _territorial_halt(self, territory: str) -> Halted:
        orders = [o for o in self._state.active_orders() if o.territory == territory]
        return _order_halt(orders, territory)

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
                self._state.drop_lease()
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
            try:
                self._apply_order(pushed.order, pushed.index)
            except KillOrderError as exc:
                log.warning("ignoring an unreadable kill order: %s", exc)

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

"""The guard's pure core: what an agent may do, given its lease, its orders and the time.

``GuardState`` decides from a lease, the kill orders received and the time alone (no
threads, no I/O); ``custodes.sdk.guard.Guard`` is the runtime around it. ``Halted`` is
its refusal, naming (under a kill order) the newest order behind it: its reason and
issuer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from custodes.errors import CustodesError
from custodes.sdk.leases import Lease, LeaseError

__all__ = [
    "GuardState",
    "HaltReason",
    "Halted",
    "KillOrder",
    "KillOrderError",
    "order_halt",
]

HaltReason = Literal[
    "no_lease",
    "lease_expired",
    "lease_not_yet_valid",
    "territory_not_leased",
    "kill_order",
    "deployment_gate",
    "conformance_test",
]
_MESSAGES: dict[str, str] = {
    "no_lease": "the agent holds no lease from its home node",
    "lease_expired": "the agent's lease has expired and the home node has not renewed it",
    "lease_not_yet_valid": "the agent's lease is not valid yet (check the clocks)",
    "territory_not_leased": "the agent's lease does not cover this territory",
    "kill_order": "a kill order halts the agent",
    "deployment_gate": "the deployment gate is shut",
    "conformance_test": "a kill-switch conformance test by the home node halts the agent "
    "(a test, not a kill order; it resumes when the test ends)",
}
_ORDER_OPS = ("suspend", "revoke", "reinstate")
_SCOPES = ("global", "territorial")


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
        explanation: str | None = None,
    ) -> None:
        where = f" in {territory}" if territory else ""
        cause = f" ({order.op} by {order.issuer}: {order.reason})" if order else ""
        if explanation:
            cause += f": {explanation}"
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
        self._refused: CustodesError | None = None  # the node's last lease refusal
        self._test: tuple[str, float] | None = None  # a conformance test: id, until

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
        self._refused = None
        if horizon is not None:
            self._settle(lease, horizon)

    def drop_lease(self, refusal: CustodesError | None = None) -> None:
        """Hold no lease; ``refusal`` is the node's, when it refused one (kept to say
        why, e.g. the deployment gate that failed and what would satisfy it)."""
        self._lease = self._previous = None
        self._refused = refusal

    # -- kill-switch conformance tests (docs/design/0028) -------------------------------

    def start_test(self, test_id: str, until: float) -> None:
        """The home node's conformance test ``test_id`` halts the agent until it ends
        or until ``until`` (this agent's clock), whichever comes first."""
        self._test = (test_id, until)

    def end_test(self, test_id: str) -> bool:
        """End test ``test_id``; False when no such test is running."""
        if self._test is None or self._test[0] != test_id:
            return False
        self._test = None
        return True

    def _test_halt(self, now: float) -> Halted | None:
        if self._test is None or now >= self._test[1]:
            return None
        return Halted("conformance_test", detail={"test_id": self._test[0]})

    def _no_lease(self) -> Halted:
        refused = self._refused
        if refused is not None and refused.code == "deployment_gate":
            return Halted("deployment_gate", explanation=refused.message, detail=refused.detail)
        return Halted("no_lease")

    def _settle(self, lease: Lease, horizon: int) -> None:
        for order in list(self._active.values()):
            if order.index <= horizon and order.territory in (None, *lease.jurisdictions):
                del self._active[order.order_id]

    def next_change(self, now: float) -> float:
        """The next nbf or exp after ``now`` (inf if none): when the answer may change."""
        times = [t for x in (self._lease, self._previous) if x for t in (x.nbf, x.exp)]
        if self._test is not None:
            times.append(self._test[1])
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
            return self._global_halt() or self._no_lease()
        found = self._global_halt() or self._lease_problem(lease, now) or self._test_halt(now)
        if found is not None:
            return found
        local = [o for o in self.active_orders() if o.territory == territory]
        if local:
            return order_halt(local, territory)
        if territory in lease.gated:
            gate = lease.gated[territory]
            return Halted(
                "deployment_gate", territory=territory, explanation=gate, detail={"gate": gate}
            )
        if territory not in lease.jurisdictions:
            return Halted("territory_not_leased", territory=territory)
        return None

    def halted(self, now: float) -> Halted | None:
        """Why the agent may act nowhere at ``now``, or None when it may act somewhere."""
        lease = self._lease_at(now)
        if lease is None:
            return self._global_halt() or self._no_lease()
        found = self._global_halt() or self._lease_problem(lease, now) or self._test_halt(now)
        if found is not None:
            return found
        if not lease.jurisdictions:
            return Halted("territory_not_leased")
        if lease.jurisdictions <= self.blocked_territories():
            return order_halt(self.active_orders(), None)
        return None

    def _global_halt(self) -> Halted | None:
        orders = [o for o in self.active_orders() if o.scope == "global"]
        return order_halt(orders, None) if orders else None

    @staticmethod
    def _lease_problem(lease: Lease, now: float) -> Halted | None:
        times = {"lease_id": lease.lease_id, "nbf": lease.nbf, "exp": lease.exp, "now": now}
        if now < lease.nbf:
            return Halted("lease_not_yet_valid", detail=times)
        if now >= lease.exp:
            return Halted("lease_expired", detail=times)
        return None


def order_halt(orders: Sequence[KillOrder], territory: str | None) -> Halted:
    """The refusal ``orders`` (oldest first) cause, naming the newest of them."""
    ids = [o.order_id for o in orders]
    return Halted("kill_order", territory=territory, detail={"orders": ids}, order=orders[-1])

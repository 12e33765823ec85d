"""OrderBroadcaster: push kill orders to every subscriber the moment they are logged.

Orders are published from whichever thread committed them; subscribers are asyncio
queues (one per server-sent-events stream). A subscriber that falls too far behind is
dropped (its stream ends and it reconnects, receiving the active orders again): a slow
reader never holds the node's memory hostage.

``PushSigner`` countersigns what one stream pushes with the node's entry key (the key
guards verify leases with), binding each event to the subscriber's stream nonce, a
sequence number, the order's agent and log index (docs/design/0004), so a guard can
refuse a forged, replayed or re-ordered event. An order by selector is countersigned once
per stream, however many agents it halts: a fleet's stream lists the covered agents in
the one push (docs/design/0013).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope

__all__ = ["ORDER_PUSH_TYPE", "OrderBroadcaster", "PushSigner", "Subscription", "stream_view"]

ORDER_PUSH_TYPE = "application/vnd.custodes.order-push+json"
_QUEUE = 1_000


class PushSigner:
    """Countersigns the ``order`` events of one stream, numbering them from 1.

    ``nonce`` is the subscriber's challenge for this connection (a fresh one is made when
    it sent none: the events are then signed, but bound to no challenge of its own).
    """

    def __init__(
        self,
        signer: EnvelopeSigner,
        nonce: str | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._signer, self._clock = signer, clock
        self.nonce = nonce or secrets.token_hex(16)
        self._seq = 0

    def sign(self, event: dict[str, Any]) -> dict[str, Any]:
        """``event`` ({"index", "order", ...}) with its countersignature as ``push``."""
        self._seq += 1
        payload = {
            "v": 1,
            "event": "order",
            "stream": self.nonce,
            "seq": self._seq,
            "at": int(self._clock()),
            "agent_id": event["order"].get("agent_id"),
            "index": event["index"],
            "order": event["order"],
        }
        if "agents" in event:  # a stream for many agents: the ones this order covers
            payload["agents"] = event["agents"]
        push = sign_envelope(ORDER_PUSH_TYPE, canonical_dumps(payload), [self._signer])
        return event | {"push": push.to_json()}


@dataclass(eq=False)
class Subscription:
    agent_id: str | None
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE)
    )
    dropped: bool = False
    operator: str | None = None  # a fleet's stream: every agent of this operator

    def offer(self, event: dict[str, Any]) -> None:
        """Runs on the event loop."""
        if self.dropped:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        """End the stream after what it holds (runs on the event loop); it reconnects."""
        if self.dropped:
            return
        self.dropped = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class OrderBroadcaster:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self, agent_id: str | None, operator: str | None = None) -> Subscription:
        sub = Subscription(agent_id, asyncio.get_running_loop(), operator=operator)
        with self._lock:
            self._subs.add(sub)
            if self._closed:
                sub.end()  # the node is stopping: this stream ends at once too
        return sub

    def close(self) -> None:
        """End every stream now (the node is stopping); safe from any thread, idempotent.

        A server waits for open responses before it exits, and a stream never finishes
        by itself: without this, shutdown waits for its grace period to run out.
        """
        with self._lock:
            self._closed = True
            subs = list(self._subs)
        for sub in subs:
            try:
                sub.loop.call_soon_threadsafe(sub.end)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(sub)

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)

    def publish(self, agent_id: str, event: dict[str, Any]) -> int:
        """Hand ``event`` to every matching subscriber; safe from any thread."""
        with self._lock:
            targets = [s for s in self._subs if s.agent_id in (None, agent_id)]
        for sub in targets:
            try:
                sub.loop.call_soon_threadsafe(sub.offer, event)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(sub)
        return len(targets)

    def publish_covering(self, covered: Sequence[tuple[str, str]], event: dict[str, Any]) -> int:
        """Hand each subscriber what ``event`` (an order) means for it; safe from any thread.

        ``covered`` is (agent, operator) for each agent the order covers. Each stream gets
        one event, whatever the number of agents: see ``stream_view``.
        """
        scope = _Coverage(covered)
        with self._lock:
            targets = [(s, stream_view(event, s, scope)) for s in self._subs]
        handed = 0
        for sub, view in targets:
            if view is None:
                continue
            handed += 1
            try:
                sub.loop.call_soon_threadsafe(sub.offer, view)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(sub)
        return handed

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)


class _Coverage:
    """The agents an order covers, indexed once per order for every stream's view."""

    def __init__(self, covered: Sequence[tuple[str, str]]) -> None:
        self.agents = [agent for agent, _operator in covered]
        self.ids = frozenset(self.agents)
        self.by_operator: dict[str, list[str]] = {}
        for agent, operator in covered:
            self.by_operator.setdefault(operator, []).append(agent)


def stream_view(event: dict[str, Any], sub: Subscription, scope: _Coverage) -> Any:
    """What one stream is pushed for an order event, or None when it concerns none of it.

    A one-agent stream gets the order naming that agent (a selector order too: the node
    vouches, in its countersignature, that the order covers it), so every guard reads it
    as it reads any order. A fleet stream (an operator's agents) and the unfiltered
    stream get the order once with ``agents``, the covered agents in their scope.
    """
    if sub.agent_id is not None:
        if sub.agent_id not in scope.ids:
            return None
        if event["order"].get("agent_id") == sub.agent_id:
            return event
        return event | {"order": event["order"] | {"agent_id": sub.agent_id}}
    agents = scope.agents if sub.operator is None else scope.by_operator.get(sub.operator)
    if not agents:
        return None
    return event | {"agents": agents}

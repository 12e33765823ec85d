"""OrderBroadcaster: push kill orders to every subscriber the moment they are logged.

Orders are published from whichever thread committed them; subscribers are asyncio
queues (one per server-sent-events stream). A subscriber that falls too far behind is
dropped (its stream ends and it reconnects, receiving the active orders again): a slow
reader never holds the node's memory hostage.

``PushSigner`` countersigns what one stream pushes with the node's entry key (the key
guards verify leases with), binding each event to the subscriber's stream nonce, a
sequence number, the order's agent and log index (docs/design/0004), so a guard can
refuse a forged, replayed or re-ordered event.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope

__all__ = ["ORDER_PUSH_TYPE", "OrderBroadcaster", "PushSigner", "Subscription"]

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
            "agent_id": event["order"]["agent_id"],
            "index": event["index"],
            "order": event["order"],
        }
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

    def subscribe(self, agent_id: str | None) -> Subscription:
        sub = Subscription(agent_id, asyncio.get_running_loop())
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

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subs)

"""Red-teaming events for the server-sent event streams of this worker.

The service publishes an event when a disclosure moves (``disclosure``) or an affected
agent's exposure is logged or changes (``exposure``); each open stream receives the
events its subscriber may see (``visible``): an operator, the exposures of its own
agents; anyone else, what ``can_read`` lets it read. Publishing is safe from any thread;
each subscriber's queue lives on its event loop. Other workers sharing the database
hear of an event over the bus (``custodes.redteam.service``), which hands it here too.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from custodes.redteam.tlp import Audience, Reader, can_read

__all__ = ["EventHub", "Watcher", "visible"]

_QUEUE = 1024  # a subscriber this far behind is dropped (it reconnects and catches up)


def visible(event: dict[str, Any], reader: Reader) -> bool:
    """Whether ``reader`` (a principal) sees ``event``."""
    if reader.role == "operator":
        return (
            event.get("kind") == "exposure"
            and event.get("operator") == reader.principal
            and event.get("home") == reader.party
        )
    return can_read(Audience.model_validate(event["audience"]), reader)


@dataclass(eq=False)
class Watcher:
    reader: Reader
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[dict[str, Any] | None] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE)
    )
    ended: bool = False

    def offer(self, event: dict[str, Any]) -> None:
        """Runs on the subscriber's loop."""
        if self.ended:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.end()

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class EventHub:
    def __init__(self) -> None:
        self._watchers: set[Watcher] = set()
        self._lock = threading.Lock()
        self._closed = False

    def subscribe(self, reader: Reader) -> Watcher:
        watcher = Watcher(reader, asyncio.get_running_loop())
        with self._lock:
            self._watchers.add(watcher)
            if self._closed:
                watcher.end()
        return watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.discard(watcher)

    def publish(self, event: dict[str, Any]) -> int:
        """Hand ``event`` to every watcher that may see it; how many."""
        with self._lock:
            watchers = [w for w in self._watchers if visible(event, w.reader)]
        for watcher in watchers:
            self._call(watcher, watcher.offer, event)
        return len(watchers)

    def close(self) -> None:
        """End every stream (the node is stopping); idempotent, any thread."""
        with self._lock:
            self._closed = True
            watchers = list(self._watchers)
        for watcher in watchers:
            self._call(watcher, watcher.end)

    def _call(self, watcher: Watcher, fn: Any, *args: Any) -> None:
        try:
            watcher.loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # its loop has closed
            self.unsubscribe(watcher)

"""One kill-order stream for a fleet: many agents of one operator, in one process.

A process running thousands of agents opens one stream (``?operator=``) instead of one
per agent. The node countersigns each order once for that stream and lists the covered
agents in it (``custodes.sdk.pushes.verify_fleet_push``); ``FleetFeed`` hands the order
to each listed agent's ``GuardState``, which then refuses as a lone guard's does. A push
it cannot verify moves nothing. Leases stay per agent (``GuardState.on_lease``): the
feed only carries orders.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

import httpx

from custodes.client import Client, NodeUnreachable
from custodes.client.killswitch import OrderStream
from custodes.errors import CustodesError
from custodes.sdk.guard import GuardState, KillOrderError
from custodes.sdk.pushes import (
    FleetPush,
    LogThrottle,
    UnverifiedPush,
    sse_events,
    stream_nonce,
    verify_fleet_push,
)

__all__ = ["FleetFeed"]

log = logging.getLogger("custodes.sdk.fleet")

# Called with each verified push and the agents of this fleet it was applied to.
Applied = Callable[[FleetPush, list[str]], None]


class FleetFeed:
    def __init__(
        self,
        node_url: str,
        node_public_key: bytes,
        operator: str,
        states: Mapping[str, GuardState],
        *,
        http: httpx.Client | None = None,
        on_applied: Applied | None = None,
        stream_read_timeout: float = 45.0,
    ) -> None:
        self._client = Client(node_url, http=http) if http is not None else Client(node_url)
        self._node_key = node_public_key
        self.operator, self._states = operator, states
        self._on_applied = on_applied
        self._read_timeout = stream_read_timeout
        self.lock = threading.Lock()  # guards every state this feed writes to
        self.connected = threading.Event()
        self._unverified = LogThrottle(log)
        self._stream: OrderStream | None = None

    def apply(self, push: FleetPush) -> list[str]:
        """Apply a verified push to the states of the agents it lists; those it reached."""
        reached: list[str] = []
        with self.lock:
            for agent_id in push.agents:
                state = self._states.get(agent_id)
                if state is None:
                    continue
                try:
                    state.on_order(push.for_agent(agent_id), push.index)
                except KillOrderError as exc:
                    log.warning("ignoring an unreadable kill order: %s", exc)
                    return reached
                reached.append(agent_id)
        if self._on_applied is not None:
            self._on_applied(push, reached)
        return reached

    def read(self, lines: Iterable[str], nonce: str, stop: threading.Event) -> None:
        """Apply every verified order event in ``lines`` (one stream) until ``stop``."""
        seq = 0
        for event in sse_events(lines):
            if stop.is_set():
                return
            if event is None or event[0] != "order":
                continue
            try:
                push = verify_fleet_push(
                    event[1], node_public_key=self._node_key, stream=nonce, after_seq=seq
                )
            except UnverifiedPush as exc:
                self._unverified.warning("ignoring a kill-order event: %s", exc.message)
                continue
            seq = push.seq
            self.apply(push)

    def follow_once(self, stop: threading.Event) -> bool:
        """Follow the fleet's stream until it ends or ``stop``; False if it never opened.

        ``interrupt`` (from another thread) ends a blocked read at once.
        """
        nonce = stream_nonce()
        opened = False
        try:
            with self._client.kill_order_stream(
                None, nonce, operator=self.operator, read_timeout=self._read_timeout
            ) as stream:
                opened, self._stream = True, stream
                self.connected.set()
                self.read(stream.lines(), nonce, stop)
        except NodeUnreachable as exc:
            if not stop.is_set():  # interrupt() closes the stream under the reader
                log.warning("the fleet's kill-order stream is down (%s)", exc.message)
        except CustodesError as exc:
            log.warning("the node refused the fleet's stream: %s", exc.message)
        finally:
            self.connected.clear()
            self._stream = None
        return opened

    def interrupt(self) -> None:
        """End the stream being read (set the reader's ``stop`` first)."""
        stream = self._stream
        if stream is not None:
            stream.interrupt()

"""``custodes serve``'s HTTP server: uvicorn with read deadlines and a connection bound.

uvicorn times out idle keep-alive connections, but not a client that trickles its
headers or its body: every byte re-arms nothing and the connection stays open for good
(1,500 such connections were never dropped; 20,000 ran the node out of descriptors).
``DeadlineProtocol`` gives each request's headers ``header_timeout`` seconds from the
connection's opening (or the previous response) and its body ``body_timeout`` seconds
from its headers, whatever arrives meanwhile, then closes the connection. Past
``max_connections`` open connections a new one is closed at once, before it costs more
than its descriptor. The app's own answer time is not bounded: a kill-order stream is
an answer that lasts.

On SIGTERM or SIGINT uvicorn stops accepting, then asks each connection to shut down
and waits for the answers in progress. A kill-order stream never finishes by itself,
so the first connection asked ends every stream at once (``END_STREAMS``, which the
app's lifespan hands over in its state): subscribers see their stream end cleanly and
reconnect elsewhere, and the process exits without waiting out the grace period.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from custodes.api.logs import logging_config
from custodes.config import Settings

__all__ = ["END_STREAMS", "DeadlineProtocol", "deadline_protocol", "server_config"]

END_STREAMS = "custodes.end_streams"  # lifespan state: ends every kill-order stream

log = logging.getLogger("custodes.api.server")
_SPARE_DESCRIPTORS = 256  # the database pool, key files, worker threads' sockets


class DeadlineProtocol(H11Protocol):
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_connections: int = 2048

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._deadline: asyncio.TimerHandle | None = None
        self._phase: object = None
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            log.warning("%d connections are open; closing new ones", self.max_connections)
            transport.close()
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def shutdown(self) -> None:
        """The server is stopping: end the streams, then close as uvicorn does."""
        end_streams = self.app_state.get(END_STREAMS)
        if callable(end_streams):
            end_streams()
        super().shutdown()

    def _watch(self) -> None:
        """Arm the deadline for what the client owes us now: headers, a body, or nothing."""
        phase = self.conn.their_state
        if phase is self._phase or self.transport.is_closing():
            return
        self._phase = phase
        self._disarm()
        if phase is h11.IDLE:
            self._deadline = self.loop.call_later(self.header_timeout, self._expire, "headers")
        elif phase is h11.SEND_BODY:
            self._deadline = self.loop.call_later(self.body_timeout, self._expire, "body")

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, what: str) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info("dropped a client that did not send its %s in time", what)
            self.transport.close()


def deadline_protocol(settings: Settings, max_connections: int) -> type[DeadlineProtocol]:
    """The protocol class with this node's deadlines (uvicorn instantiates it per connection)."""
    attributes = {
        "header_timeout": settings.header_timeout,
        "body_timeout": settings.body_timeout,
        "max_connections": max_connections,
    }
    return type("NodeProtocol", (DeadlineProtocol,), attributes)


def _connection_bound(wanted: int) -> int:
    """Raise the descriptor limit as far as allowed; keep ``wanted`` connections under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft == resource.RLIM_INFINITY:
        return wanted
    bound = max(16, min(wanted, soft - _SPARE_DESCRIPTORS))
    if bound < wanted:
        log.warning(
            "serving at most %d connections: the descriptor limit is %d (ulimit -n)", bound, soft
        )
    return bound


def server_config(
    app: FastAPI | str, settings: Settings, host: str, port: int, **overrides: Any
) -> uvicorn.Config:
    """uvicorn's configuration for this node: deadlines, bounds, and rate-limited logs."""
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": deadline_protocol(settings, _connection_bound(settings.max_connections)),
        "log_config": logging_config(
            "warning", settings.log_format, access_log=settings.access_log
        ),
        "log_level": "warning",
        "timeout_keep_alive": settings.keep_alive_timeout,
        "timeout_graceful_shutdown": 5,
        "lifespan": "on",
    }
    return uvicorn.Config(app, **(options | overrides))

"""``custodes serve --workers N``: N uvicorn worker processes on one PostgreSQL database.

uvicorn starts each worker as a fresh process (multiprocessing's "spawn") and builds
its app there with ``create_worker_app``, reading the settings from the environment
again; the parent only holds the listening socket and restarts a worker that dies.
Each worker opens its own ``Node``; what they must agree on lives in the database
(sequencing, integration) or travels over LISTEN/NOTIFY (kill orders, signer and status
caches, the integrity alarm), and one of them, the leader, runs the background jobs
(docs/design/0012). Every answer names its worker in ``X-Custodes-Worker``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.supervisors import Multiprocess

from custodes.api.app import create_app
from custodes.api.server import DeadlineProtocol, _connection_bound, server_config
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.node import Node
from custodes.store.db import check_writable

__all__ = [
    "WORKER_HEADER",
    "WorkerHeader",
    "WorkerProtocol",
    "create_worker_app",
    "prepare",
    "serve_workers",
]

WORKER_HEADER = "X-Custodes-Worker"


class WorkerProtocol(DeadlineProtocol):
    """The node's deadlines in a worker process (set there by ``create_worker_app``).

    uvicorn sends its configuration to each worker by pickling it, so the protocol must
    be a class importable by name, not one made at run time.
    """


class WorkerHeader:
    """ASGI middleware: add ``X-Custodes-Worker: <pid>`` to every answer (streams too)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        worker = str(os.getpid()).encode()

        async def send_named(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message["headers"] = [*headers, (WORKER_HEADER.lower().encode(), worker)]
            await send(message)

        await self._app(scope, receive, send_named)


def create_worker_app() -> FastAPI:
    """The app of one worker process (uvicorn's factory, called in the worker)."""
    settings = Settings()
    WorkerProtocol.header_timeout = settings.header_timeout
    WorkerProtocol.body_timeout = settings.body_timeout
    WorkerProtocol.max_connections = _connection_bound(settings.max_connections)
    app = create_app(settings)
    app.add_middleware(WorkerHeader)
    return app


def prepare(settings: Settings) -> None:
    """Migrate, create the keys and log the node's first entry once, before any worker
    starts: workers racing to do it would each make different keys."""
    node = Node(settings)
    try:
        check_writable(node.engine)
        node.start()
    finally:
        node.close()


def serve_workers(
    settings: Settings,
    host: str,
    port: int,
    workers: int,
    banner: Callable[[], None] | None = None,
) -> None:
    """Serve with ``workers`` processes; refuse SQLite, which has a single writer.

    ``banner`` (the CLI's start-up banner) is shown once the database is prepared.
    """
    if not settings.db_url.startswith("postgresql"):
        raise ConfigError(
            f"--workers {workers} needs PostgreSQL: SQLite takes one writer at a time, so "
            "extra workers would only wait for each other; set CUSTODES_DATABASE_URL to a "
            "postgresql+psycopg:// URL, or serve with one worker"
        )
    prepare(settings)
    if banner is not None:
        banner()
    config = server_config(
        f"{__name__}:create_worker_app",
        settings,
        host,
        port,
        factory=True,
        workers=workers,
        http=f"{__name__}:WorkerProtocol",
        # uvicorn kills a worker that does not answer its supervisor's ping within this
        # many seconds; its default (5) is less than a worker takes to import and open
        # the node on a busy machine, and a worker killed while starting never serves.
        timeout_worker_healthcheck=60,
    )
    Multiprocess(config, sockets=[config.bind_socket()]).run()

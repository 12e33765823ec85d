"""The FastAPI app factory: one node, its background work, and every router."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from custodes import __version__
from custodes.api import (
    admin,
    entries,
    evals,
    health,
    killswitch,
    principals,
    proofs,
    registry,
    tlog,
)
from custodes.api.bodies import BodyGate
from custodes.api.errors import install_error_handlers
from custodes.api.openapi import complete
from custodes.config import Settings
from custodes.federation.witnessing import WitnessRequester
from custodes.node import Node

__all__ = ["create_app"]


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document plus the records, error body and security schemes (api.openapi)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        return complete(FastAPI.openapi(app))  # cached on the app from now on

    return document


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the node opens (migrations, keys, threads) when the app starts."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = Node(settings)
        node.start()
        requester = WitnessRequester(node, settings.witnesses)
        requester.start()
        app.state.node = node
        try:
            yield
        finally:
            requester.stop()
            node.close()

    app = FastAPI(
        title="Custodes member node",
        version=__version__,
        description="A witnessed transparency log of signed agent decisions (C2SP tlog-tiles).",
        lifespan=lifespan,
    )
    app.state.bodies = BodyGate(settings.max_large_bodies)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    for router in (
        entries.router,
        health.router,
        proofs.router,
        admin.router,
        principals.router,
        registry.router,
        evals.router,
        killswitch.router,
        tlog.log_router,
        tlog.witness_router,
    ):
        app.include_router(router)
    return app

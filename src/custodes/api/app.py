"""The FastAPI app factory: one node, its background work, and every router.

Around every router: a request id for each request (its header, its log lines) and,
when configured, an OpenTelemetry span; both wrap the app's error handling too, so a
500 carries its request id and is traced. ``/metrics`` reads the app's own registry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.types import ASGIApp

from custodes import __version__
from custodes.api import (
    admin,
    alliance,
    audits,
    conformance,
    decisions,
    entries,
    evals,
    forensics,
    forwarding,
    health,
    killswitch,
    principals,
    proofs,
    redteam,
    redteam_federation,
    registry,
    roster,
    splitview,
    taxii,
    tlog,
    trade,
)
from custodes.api.bodies import BodyGate
from custodes.api.errors import install_error_handlers
from custodes.api.metrics import PrometheusMetrics
from custodes.api.openapi import complete
from custodes.api.request_ids import RequestIdMiddleware
from custodes.api.server import END_STREAMS
from custodes.api.tracing import TracingMiddleware, tracer_provider_for
from custodes.config import Settings
from custodes.federation.audit_watch import open_audit_watch
from custodes.federation.gates import DeploymentGate
from custodes.federation.gossip import CheckpointGossip
from custodes.federation.lookup_service import open_lookups
from custodes.federation.recognitions import AllianceRecognitions
from custodes.federation.redteam_agents import AllianceAgents
from custodes.federation.redteam_sync import open_redteam_sync
from custodes.federation.rostersync import RosterSync
from custodes.federation.witnessing import WitnessRequester
from custodes.node import Node
from custodes.web.app import create_web

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

__all__ = ["create_app"]


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """FastAPI's document plus the records, error body and security schemes (api.openapi)."""

    def document() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        return complete(FastAPI.openapi(app))  # cached on the app from now on

    return document


def _wrapped(
    app: FastAPI, settings: Settings, tracer_provider: TracerProvider | None
) -> Callable[[], ASGIApp]:
    """The app's middleware stack inside the request-id and tracing layers.

    ``add_middleware`` would place them inside Starlette's outermost error middleware,
    which answers a 500 past them (no request id on it, no span status).
    """

    def build() -> ASGIApp:
        stack = FastAPI.build_middleware_stack(app)
        if tracer_provider is not None:
            stack = TracingMiddleware(stack, tracer_provider.get_tracer("custodes.api"))
        return RequestIdMiddleware(stack, access_log=settings.access_log)

    return build


def create_app(  # noqa: PLR0915 - the lifespan starts and stops every background part in one place
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> FastAPI:
    """Build the app; the node opens (migrations, keys, threads) when the app starts.

    ``tracer_provider`` traces requests through a provider of the caller's (a test's
    in-memory exporter); without one, the configured OTLP endpoint's, if any.
    """
    settings = settings or Settings()
    metrics = PrometheusMetrics()
    own_provider = tracer_provider is None
    tracer_provider = tracer_provider or tracer_provider_for(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        node = Node(settings, metrics=metrics)
        node.start()
        metrics.watch(node)
        requester = WitnessRequester(node, settings.witnesses)
        requester.start()
        roster_sync = RosterSync(node.roster_log, interval=settings.roster_poll_interval)
        roster_sync.start()
        node.forwarder.start()  # the outbox relay (leading worker only)
        gossip = app.state.gossip = CheckpointGossip(node, node.split_views)
        gossip.start()
        app.state.node = node
        app.state.lookups = lookups = open_lookups(node)
        # Recognitions here and in every peer mirror (docs/design/0028): gates, trade.
        app.state.recognitions = AllianceRecognitions(
            node.engine, node.federation, lookups.mirrors.get
        )
        # The deployment gate: critical agents are leased only where recognised.
        if settings.deployment_gate:
            gate = DeploymentGate(
                app.state.recognitions, scheme=node.audits.scheme, ttl=settings.gate_cache_ttl
            )
            node.leases.gate = gate
        audit_watch = open_audit_watch(node, lookups.mirrors.get)
        app.state.audit_cases = audit_watch.cases
        audit_watch.start()
        # Red-teaming triage searches this node's and every mirror's agents (0029).
        node.redteam.agents = AllianceAgents(node.engine, node.federation, lookups.mirrors.get)
        # Red-teaming objects across the alliance (docs/design/0029): push, pull (leader).
        redteam_sync = app.state.redteam_sync = open_redteam_sync(node)
        redteam_sync.start()

        def end_streams() -> None:
            node.broadcaster.close()
            node.redteam.events.close()

        try:
            # The server ends the event streams through this as it starts to stop.
            yield {END_STREAMS: end_streams}
        finally:
            end_streams()
            redteam_sync.stop()
            audit_watch.stop()
            lookups.close()
            roster_sync.stop()
            requester.stop()
            gossip.stop()
            node.close()
            if own_provider and tracer_provider is not None:
                tracer_provider.shutdown()  # export the spans still batched

    app = FastAPI(
        title="Custodes member node",
        version=__version__,
        description="A witnessed transparency log of signed agent decisions (C2SP tlog-tiles).",
        lifespan=lifespan,
    )
    app.state.bodies = BodyGate(settings.max_large_bodies)
    app.state.metrics = metrics
    app.build_middleware_stack = _wrapped(app, settings, tracer_provider)  # type: ignore[method-assign]
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    install_error_handlers(app)
    # The regulators' dashboard (docs/design/0031): server-rendered pages under /ui/.
    app.mount("/ui", create_web(app))
    app.add_api_route(
        "/ui", lambda: RedirectResponse("/ui/", status_code=308), include_in_schema=False
    )
    for router in (
        entries.router,
        decisions.router,
        health.router,
        proofs.router,
        admin.router,
        principals.router,
        registry.router,
        evals.router,
        forensics.router,
        killswitch.router,
        conformance.router,
        roster.router,
        forwarding.router,
        redteam_federation.router,
        tlog.log_router,
        tlog.witness_router,
        alliance.router,
        audits.router,
        trade.router,
        splitview.router,
        splitview.admin_router,
        redteam.router,
        taxii.router,
    ):
        app.include_router(router)
    return app

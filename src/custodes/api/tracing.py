"""OpenTelemetry traces of the node's requests, when an OTLP endpoint is configured.

``CUSTODES_OTEL_ENDPOINT`` (or OpenTelemetry's own ``OTEL_EXPORTER_OTLP_ENDPOINT``)
turns tracing on: one server span per HTTP request, named after its route template
(``GET /api/v1/entries/{index}``, never the raw path), a child of the caller's span when
the request carries a W3C ``traceparent``, exported over OTLP/HTTP in batches. The
OpenTelemetry SDK and exporter are the optional extra ``custodes[otel]``: a node
configured to trace without them refuses to start with one line saying so. Without an
endpoint nothing is imported and requests pay nothing.

Each app has its own ``TracerProvider`` (never the process-global one), so several
nodes in one process (the demo, the tests) trace apart.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes import __version__
from custodes.api.logs import REQUEST_ID
from custodes.config import Settings
from custodes.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Tracer

__all__ = ["TracingMiddleware", "new_provider", "tracer_provider_for"]

_MISSING = (
    "tracing is configured ({}) but the OpenTelemetry SDK or its OTLP exporter is not "
    "installed; run: pip install 'custodes[otel]'"
)


def _endpoint(settings: Settings) -> tuple[str, str] | None:
    if settings.otel_endpoint:
        return "CUSTODES_OTEL_ENDPOINT", settings.otel_endpoint
    if endpoint := os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "OTEL_EXPORTER_OTLP_ENDPOINT", endpoint
    return None


def tracer_provider_for(settings: Settings) -> TracerProvider | None:
    """A provider exporting to the configured OTLP endpoint; ``None`` when none is set."""
    configured = _endpoint(settings)
    if configured is None:
        return None
    variable, endpoint = configured
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found, unused-ignore]  # noqa: PLC0415 - optional extra
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError as exc:
        raise ConfigError(_MISSING.format(variable)) from exc
    traces = endpoint if endpoint.endswith("/v1/traces") else endpoint.rstrip("/") + "/v1/traces"
    provider = new_provider(settings)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=traces)))
    return provider


def new_provider(settings: Settings) -> TracerProvider:
    """A provider whose spans name this node (service name, version, origin)."""
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415

    resource = Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", "custodes"),
            "service.version": __version__,
            "custodes.origin": settings.origin,
            "custodes.jurisdiction": settings.jurisdiction,
        }
    )
    return TracerProvider(resource=resource)


def _carrier(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


class TracingMiddleware:
    """Pure ASGI: the span covers the whole answer, a kill-order stream's included."""

    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app, self._tracer = app, tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from opentelemetry import propagate, trace  # noqa: PLC0415 - only when tracing

        method = scope.get("method", "HTTP")
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope.get("path", ""),
            "custodes.request_id": REQUEST_ID.get() or "",
        }
        with self._tracer.start_as_current_span(
            method,
            context=propagate.extract(_carrier(scope)),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        ) as span:

            async def send_status(message: Message) -> None:
                if message["type"] == "http.response.start":
                    span.set_attribute("http.response.status_code", message["status"])
                    if message["status"] >= 500:
                        span.set_status(trace.StatusCode.ERROR)
                await send(message)

            try:
                await self.app(scope, receive, send_status)
            finally:
                _name_after_route(span, scope, method)


def _name_after_route(span: Any, scope: Scope, method: str) -> None:
    template = getattr(scope.get("route"), "path", None)
    if template:
        span.update_name(f"{method} {template}")
        span.set_attribute("http.route", template)

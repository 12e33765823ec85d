"""OpenTelemetry traces: one server span per request, named after its route, when configured.

The spans go to the SDK's in-memory exporter through the app's own provider (the OTLP
exporter is what the extra adds; the collector it talks to is outside the node).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from custodes.api import create_app
from custodes.api.tracing import new_provider, tracer_provider_for
from custodes.config import Settings
from custodes.errors import ConfigError

_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
_PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(settings: Settings, exporter: InMemorySpanExporter) -> Iterator[TestClient]:
    provider: TracerProvider = new_provider(settings)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with TestClient(create_app(settings, tracer_provider=provider)) as client:
        exporter.clear()  # start-up requests, if any
        yield client


def test_a_request_is_one_server_span_named_after_its_route(
    traced: TestClient, exporter: InMemorySpanExporter
) -> None:
    traceparent = f"00-{_TRACE_ID}-{_PARENT_ID}-01"
    response = traced.get("/api/v1/entries/0", headers={"traceparent": traceparent})
    assert response.status_code == 200, response.text
    [span] = exporter.get_finished_spans()
    assert span.name == "GET /api/v1/entries/{index}"
    assert span.kind is SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/api/v1/entries/{index}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["custodes.request_id"] == response.headers["x-request-id"]
    assert format(span.context.trace_id, "032x") == _TRACE_ID  # the caller's trace
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == _PARENT_ID
    origin = traced.app.state.node.settings.origin  # type: ignore[attr-defined]
    assert span.resource.attributes["custodes.origin"] == origin


def test_a_refused_request_is_traced_with_its_status(
    traced: TestClient, exporter: InMemorySpanExporter
) -> None:
    assert traced.get("/api/v1/entries/1000000").status_code == 404
    [span] = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["http.response.status_code"] == 404
    assert span.status.status_code is StatusCode.UNSET  # a client's mistake, not the node's


def test_without_an_endpoint_nothing_is_traced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    assert tracer_provider_for(Settings(data_dir=tmp_path)) is None


def test_tracing_configured_without_the_extra_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The exporter is what ``custodes[otel]`` installs; hide it as a lean install lacks it.
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    with pytest.raises(ConfigError) as refused:
        create_app(Settings(data_dir=tmp_path))
    message = refused.value.message
    assert "\n" not in message
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in message
    assert "pip install 'custodes[otel]'" in message

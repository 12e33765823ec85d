"""What the client sends for the reads whose server side is thin or new: paths, query
parameters, credentials."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from custodes.client import Client

URL = "http://127.0.0.1:8400"


class Recorder:
    """A node that answers ``{}`` and keeps what it was asked."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def client(self, token: str | None = None) -> Client:
        http = httpx.Client(transport=httpx.MockTransport(self._answer))
        return Client(URL, token=token, http=http)

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(200, json={"items": [], "next_cursor": None})

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


@pytest.fixture
def node() -> Recorder:
    return Recorder()


def test_decisions_ask_for_a_time_window_in_rfc3339(node: Recorder) -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    node.client().decisions("urn:custodes:gb:agent:a", start, datetime(2026, 11, 2), limit=10)
    assert node.last.url.path == "/api/v1/registry/agents/urn:custodes:gb:agent:a/decisions"
    assert dict(node.last.url.params) == {
        "from": "2026-11-01T00:00:00+00:00",
        "to": "2026-11-02T00:00:00+00:00",  # a naive time is taken as UTC
        "limit": "10",
    }


def test_a_next_page_is_asked_by_cursor(node: Recorder) -> None:
    node.client().decisions("urn:custodes:gb:agent:a", cursor="c2")
    assert dict(node.last.url.params) == {"cursor": "c2", "limit": "100"}


def test_results_are_filtered_by_agent_and_suite(node: Recorder) -> None:
    node.client().eval_results(agent_id="urn:custodes:gb:agent:a", suite="core")
    assert node.last.url.path == "/api/v1/evals/results"
    assert dict(node.last.url.params) == {
        "agent_id": "urn:custodes:gb:agent:a",
        "suite": "core",
        "limit": "100",
    }


def test_public_reads_send_the_token_only_when_there_is_one(node: Recorder) -> None:
    node.client().agents()
    assert "authorization" not in node.last.headers
    node.client(token="t0ken").agent("urn:custodes:gb:agent:a")
    assert node.last.headers["authorization"] == "Bearer t0ken"

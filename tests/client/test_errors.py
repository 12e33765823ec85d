"""The client's one error mapping: a node's JSON error answer becomes the CustodesError it
names; a node that does not answer, or a URL that cannot be one, is one actionable line."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from custodes.client import Client, NodeUnreachable
from custodes.errors import AuthError, BadRequest, ConfigError, CustodesError, NotFound, Overloaded
from custodes.ledger.errors import DuplicateEntry, EnvelopeError, IntegrityAlarm

URL = "http://127.0.0.1:8400"


def _answering(status: int, body: Any) -> Client:
    """A client whose node answers every request with ``status`` and ``body``."""

    def handle(request: httpx.Request) -> httpx.Response:
        if isinstance(body, bytes):
            return httpx.Response(status, content=body)
        return httpx.Response(status, json=body)

    return Client(URL, http=httpx.Client(transport=httpx.MockTransport(handle)))


def _error(code: str, message: str = "what to do", **detail: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "detail": detail}}


MAPPING = [
    (404, _error("entry_not_found"), NotFound),
    (401, _error("unauthorized"), AuthError),
    (403, _error("missing_scope"), AuthError),
    (400, _error("bad_request"), BadRequest),
    (413, _error("too_large"), BadRequest),
    (422, _error("invalid_payload"), BadRequest),
    (409, _error("duplicate_entry", index=7), DuplicateEntry),
    (403, _error("bad_envelope"), EnvelopeError),
    (503, _error("integrity_alarm"), IntegrityAlarm),
    (503, _error("overloaded", retry_after=2), Overloaded),
    (409, _error("agent_revoked"), CustodesError),
]


@pytest.mark.parametrize(("status", "body", "kind"), MAPPING)
def test_an_error_answer_becomes_the_error_it_names(
    status: int, body: dict[str, Any], kind: type[CustodesError]
) -> None:
    with pytest.raises(CustodesError) as caught:
        _answering(status, body).entry(0)
    error = caught.value
    assert type(error) is kind
    assert (error.code, error.status, error.message) == (
        body["error"]["code"],
        status,
        "what to do",
    )
    assert error.detail == body["error"]["detail"]


def test_an_overloaded_answer_keeps_its_retry_after() -> None:
    with pytest.raises(Overloaded) as caught:
        _answering(503, _error("overloaded", retry_after=3)).entry(0)
    assert caught.value.retry_after == 3


@pytest.mark.parametrize("body", [b"<html>bad gateway</html>", {"detail": "not ours"}])
def test_an_answer_not_in_the_error_shape_keeps_its_status(body: Any) -> None:
    with pytest.raises(CustodesError) as caught:
        _answering(502, body).entry(0)
    assert caught.value.status == 502
    assert caught.value.message == "the node answered HTTP 502"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port  # nothing listens there once the probe is closed


def test_a_node_that_refuses_connections_is_one_actionable_line() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with Client(url) as client, pytest.raises(NodeUnreachable) as caught:
        client.node_info()
    message = caught.value.message
    assert message.startswith(f"cannot reach the node at {url}: ")
    assert message.endswith("(is `custodes serve` running?)")
    assert "\n" not in message
    assert (caught.value.code, caught.value.stale) == ("node_unreachable", False)


def test_an_unknown_host_is_the_same_line() -> None:
    def unknown(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)

    http = httpx.Client(transport=httpx.MockTransport(unknown))
    with pytest.raises(NodeUnreachable) as caught:
        Client("https://node.nowhere.example", http=http).kill_orders()
    assert caught.value.message == (
        "cannot reach the node at https://node.nowhere.example: [Errno -2] Name or service "
        "not known (is `custodes serve` running?)"
    )


def test_a_read_on_a_connection_closed_under_it_is_sent_again_once() -> None:
    calls: list[str] = []

    def closing_once(request: httpx.Request) -> httpx.Response:
        calls.append(request.url.path)
        if len(calls) == 1:
            raise httpx.RemoteProtocolError("Server disconnected", request=request)
        return httpx.Response(200, json=[])

    http = httpx.Client(transport=httpx.MockTransport(closing_once))
    assert Client(URL, http=http).kill_orders() == []
    assert calls == ["/api/v1/kill-orders", "/api/v1/kill-orders"]


@pytest.mark.parametrize("url", ["node.gb.example:8400", "127.0.0.1:8400"])
def test_a_url_without_a_scheme_is_told_to_write_one(url: str) -> None:
    with pytest.raises(ConfigError, match=r"has no scheme: write it as https://"):
        Client(url)


def test_a_change_without_credentials_says_which_to_give() -> None:
    client = _answering(201, {"index": 1})
    with pytest.raises(ConfigError, match="--as, --token, --key"):
        client.order("suspend", "urn:custodes:gb:agent:x", "why")
    with pytest.raises(ConfigError, match="admin token"):
        client.issue_token("regulator:gb")

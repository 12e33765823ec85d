"""Request bodies cannot stall the node: sizes are refused before parsing, large bodies
are admitted a few at a time, and clients that trickle or abandon a body are dropped.

The in-process client shows the answers; a real server on loopback (tests/api/live.py)
shows what only a socket can: a refusal mid-stream, a closed connection, a deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.config import Settings
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.tiles import MAX_ENTRY_SIZE
from tests.api.live import LiveNode, closed_by_peer, live_node, read_response, send_headers
from tests.api.support import assert_error, decision, post_entries, snapshot

_JSON = {"Content-Type": "application/json"}


@pytest.fixture
def small_settings(settings: Settings) -> Settings:
    """Bodies large and small by these limits, and short deadlines."""
    return settings.model_copy(
        update={
            "max_body_bytes": 256 * 1024,
            "max_large_bodies": 1,
            "header_timeout": 0.5,
            "body_timeout": 0.5,
        }
    )


# --- refused before parsing ------------------------------------------------------------


def test_an_envelope_over_the_entry_size_is_refused_before_parsing(
    shared_client: TestClient,
) -> None:
    """Not even JSON: parsed, it would be a 400; refused by its size alone, it is a 413."""
    before = snapshot(shared_client)
    body = b"x" * (MAX_ENTRY_SIZE + 1)
    assert_error(post_entries(shared_client, body), 413, "entry_too_large")
    streamed = shared_client.post(
        "/api/v1/entries", content=iter([body[:10], body[10:]]), headers=_JSON
    )
    assert_error(streamed, 413, "entry_too_large")
    assert snapshot(shared_client) == before


def test_the_default_body_limit_fits_a_maximal_batch_and_no_more() -> None:
    settings = Settings()
    typical_decision = 2 * 1024
    assert settings.max_body_bytes >= settings.max_batch_entries * typical_decision
    assert settings.max_body_bytes < 32 * 1024 * 1024  # the limit that let 30 MB through


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        pytest.param(orjson.dumps([0.5 + n for n in range(20_000)]), 413, "entry_too_large"),
        pytest.param(
            b'{"entries":[' + orjson.dumps([0.5 + n for n in range(20_000)]) + b"]}",
            422,
            "invalid_envelope",
            id="floats-in-a-batch",
        ),
        pytest.param(
            b'{"entries":[' + orjson.dumps([0.5] * 3) + b"]}", 422, "invalid_envelope", id="small"
        ),
        pytest.param(
            b'{"entries":' + orjson.dumps([0.5 + n for n in range(20_000)]) + b"}",
            413,
            "batch_too_large",
            id="a-float-per-entry",
        ),
    ],
)
def test_a_canonical_body_of_numbers_is_a_client_error(
    shared_client: TestClient, body: bytes, status: int, code: str
) -> None:
    """The body that stalled the node (canonical floats) is refused, whatever its shape."""
    assert canonical_dumps(orjson.loads(body)) == body  # canonical: the old slow path
    before = snapshot(shared_client)
    assert_error(post_entries(shared_client, body), status, code)
    assert snapshot(shared_client) == before


def test_a_non_canonical_batch_is_refused_after_its_shape(
    shared_client: TestClient, agent: EnvelopeSigner
) -> None:
    body = b'{"entries": [' + canonical_dumps(decision(agent)) + b"]}"
    assert_error(post_entries(shared_client, body), 422, "non_canonical_json")


# --- on the wire --------------------------------------------------------------------------


@pytest.fixture
def live(small_settings: Settings) -> Iterator[LiveNode]:
    with live_node(small_settings) as node:
        yield node


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(data), data)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_streamed_body_over_the_limit_is_refused_mid_stream(
    live: LiveNode,
) -> None:
    """Chunked (no Content-Length): the answer comes before the body ends, then the close."""
    with live.connect() as sock:
        send_headers(sock, "/api/v1/entries", {**_JSON, "Transfer-Encoding": "chunked"})
        sock.sendall(_chunk(b'{"entries":[' + b" " * 300 * 1024))
        status, headers, body = read_response(sock)
        assert status == 413, body
        assert orjson.loads(body)["error"]["code"] == "body_too_large"
        assert headers["connection"] == "close"
        assert closed_by_peer(sock)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_large_bodies_beyond_the_bound_get_503_with_retry_after(live: LiveNode) -> None:
    size = 200 * 1024  # over one entry: a large body
    with live.connect() as holder:
        send_headers(holder, "/api/v1/entries", {**_JSON, "Content-Length": str(size)})
        holder.sendall(b'{"entries":[')
        time.sleep(0.1)  # the holder's headers are in: its slot is taken
        with live.connect() as second:
            send_headers(second, "/api/v1/entries", {**_JSON, "Content-Length": str(size)})
            status, headers, body = read_response(second)
        assert status == 503, body
        assert int(headers["retry-after"]) >= 1
        error = orjson.loads(body)["error"]
        assert (error["code"], error["detail"]["retry_after"]) == ("overloaded", 1)
    with live.connect() as small:
        send_headers(small, "/api/v1/entries", {**_JSON, "Content-Length": "2"})
        small.sendall(b"{}")
        assert read_response(small)[0] == 422  # small bodies never wait for a slot


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("what", ["headers", "body"])
def test_a_client_that_trickles_is_dropped_after_the_deadline(live: LiveNode, what: str) -> None:
    """Every byte arrives in time for the last one, never for the whole: the node hangs up."""
    with live.connect() as sock:
        if what == "body":
            send_headers(sock, "/api/v1/entries", {**_JSON, "Content-Length": "1000"})
        dropped = False
        for _ in range(200):  # 20 s of trickling, 40 times the deadline
            try:
                sock.sendall(b"G" if what == "headers" else b" ")
            except (BrokenPipeError, ConnectionResetError):
                dropped = True
                break
            sock.settimeout(0.1)
            try:
                if sock.recv(65536) == b"":
                    dropped = True
                    break
            except ConnectionResetError:  # hung up with our unread bytes pending: a reset
                dropped = True
                break
            except TimeoutError:
                continue
        assert dropped, f"a client trickling its {what} was never dropped"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_aborted_upload_is_handled_quietly(
    live: LiveNode, caplog: pytest.LogCaptureFixture
) -> None:
    """No traceback for a client that hangs up mid-body: at most one short line."""
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        with live.connect() as sock:
            send_headers(sock, "/api/v1/entries", {**_JSON, "Content-Length": "50000"})
            sock.sendall(b'{"payload":"' + b"A" * 1000)
            time.sleep(0.05)
    with live.connect() as sock:
        send_headers(sock, "/api/v1/node", {}, method="GET")
        assert read_response(sock)[0] == 200  # the node is fine, and the aborts are handled
    relevant = [r for r in caplog.records if r.name.startswith(("custodes", "uvicorn"))]
    assert not [r for r in relevant if r.exc_info], [r.getMessage() for r in relevant]
    assert all(len(r.getMessage()) < 200 for r in relevant)
    assert len([r for r in relevant if r.levelno >= logging.INFO]) <= 3

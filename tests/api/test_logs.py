"""The node's log: it cannot fill a disk, it can be JSON, and it names each request.

Identical records are let through a few a minute. With ``log_format = "json"`` every
line is one JSON object; every response carries an ``X-Request-ID`` (the client's when
sane), and the records made while serving it carry the same id.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.api.logs import (
    REQUEST_ID,
    JsonFormatter,
    RepeatFilter,
    RequestIdFilter,
    TextFormatter,
    logging_config,
)
from tests.databases import node_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def limited(caplog: pytest.LogCaptureFixture, clock: FakeClock) -> logging.Logger:
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(RepeatFilter(burst=3, window=60.0, clock=clock))
    return logging.getLogger("custodes.test.repeats")


def _accept_failed() -> None:
    raise OSError(24, "Too many open files")


def test_repeated_errors_pass_a_few_a_minute_then_say_how_many_were_held_back(
    limited: logging.Logger, caplog: pytest.LogCaptureFixture, clock: FakeClock
) -> None:
    for _ in range(1000):
        try:
            _accept_failed()
        except OSError:
            limited.exception("socket.accept() out of system resource")
    assert len(caplog.records) == 3
    clock.now += 61
    limited.error("socket.accept() out of system resource", exc_info=caplog.records[0].exc_info)
    assert len(caplog.records) == 4
    assert "997 more like it" in caplog.records[-1].getMessage()


def test_different_errors_are_counted_apart(
    limited: logging.Logger, caplog: pytest.LogCaptureFixture
) -> None:
    for n in range(10):
        limited.warning("client %d sent a bad request", n % 2)
        limited.error("client %d sent a bad request", n % 2)
    assert len(caplog.records) == 12  # four kinds, three of each


def test_serve_logs_through_the_filter() -> None:
    config = logging_config("info")
    assert "repeats" in config["handlers"]["stderr"]["filters"]
    assert config["root"]["handlers"] == ["stderr"]  # asyncio's and custodes' records too


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.getLogger("custodes.test.json").makeRecord(
        "custodes.test.json", logging.WARNING, __file__, 1, message, args, None, extra=extra
    )
    RequestIdFilter().filter(record)
    return record


def test_a_json_line_is_one_object_with_the_request_id_and_extra_fields() -> None:
    token = REQUEST_ID.set("req-42")
    try:
        record = _record("witness %s did not cosign", "w.test", witness="w.test")
    finally:
        REQUEST_ID.reset(token)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["message"] == "witness w.test did not cosign"
    assert (entry["level"], entry["logger"]) == ("WARNING", "custodes.test.json")
    assert (entry["request_id"], entry["witness"]) == ("req-42", "w.test")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", entry["time"])


def test_a_json_line_carries_the_exception_and_no_request_id_outside_a_request() -> None:
    try:
        _accept_failed()
    except OSError:
        record = _record("accept failed")
        record.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] is None
    assert "Too many open files" in entry["exception"]


def test_a_text_line_names_the_request_only_inside_one() -> None:
    assert "request_id" not in TextFormatter().format(_record("quiet"))
    token = REQUEST_ID.set("req-7")
    try:
        assert TextFormatter().format(_record("busy")).endswith("[request_id=req-7]")
    finally:
        REQUEST_ID.reset(token)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_serve_formats_lines_as_configured(log_format: str) -> None:
    config = logging_config("info", log_format)  # type: ignore[arg-type]
    wanted = JsonFormatter if log_format == "json" else TextFormatter
    assert config["formatters"]["line"]["()"] is wanted
    assert config["handlers"]["stderr"]["filters"][0] == "request_id"


@pytest.fixture(scope="module")
def logged_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A node with ``access_log`` on (SQLite: nothing here depends on the database)."""
    base = tmp_path_factory.mktemp("access")
    settings = node_settings(base, f"sqlite:///{base / 'custodes.db'}")
    with TestClient(create_app(settings.model_copy(update={"access_log": True}))) as client:
        yield client


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="custodes.access")
    caplog.handler.addFilter(RequestIdFilter())
    return caplog


def _access_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "custodes.access"]


def test_a_sane_request_id_is_kept_and_logged_with_the_request(
    logged_client: TestClient, access: pytest.LogCaptureFixture
) -> None:
    response = logged_client.get("/log/checkpoint", headers={"X-Request-ID": "lb-7f3a:2"})
    assert response.headers["x-request-id"] == "lb-7f3a:2"
    [record] = _access_records(access)
    assert record.request_id == "lb-7f3a:2"  # type: ignore[attr-defined]
    assert (record.method, record.path, record.status) == ("GET", "/log/checkpoint", 200)  # type: ignore[attr-defined]


@pytest.mark.parametrize("sent", ["", "two words", "x" * 129, "evil\u2028line"])
def test_an_insane_request_id_is_replaced(logged_client: TestClient, sent: str) -> None:
    answered = logged_client.get("/healthz", headers={"X-Request-ID": sent.encode()}).headers[
        "x-request-id"
    ]
    assert answered != sent
    assert re.fullmatch(r"[0-9a-f]{32}", answered)


def test_errors_carry_a_request_id_too(
    logged_client: TestClient, access: pytest.LogCaptureFixture
) -> None:
    response = logged_client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    [record] = _access_records(access)
    assert response.headers["x-request-id"] == record.request_id  # type: ignore[attr-defined]
    assert record.status == 404  # type: ignore[attr-defined]


def test_no_access_lines_unless_asked(
    shared_client: TestClient, access: pytest.LogCaptureFixture
) -> None:
    assert shared_client.get("/healthz").status_code == 200
    assert _access_records(access) == []

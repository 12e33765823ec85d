"""A stopping node ends its kill-order streams at once instead of waiting for them.

A real ``custodes serve`` holds an open server-sent-events stream; on SIGTERM the
subscriber sees its stream end cleanly (the chunked body terminated, not cut), and the
process exits without uvicorn cancelling a response that outlived the grace period.
The same node logs JSON lines (``CUSTODES_LOG_FORMAT=json``) whose access lines carry
the request ids its responses echoed.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.procs import NodeProcess, init_node, node_env, wait_until

pytestmark = pytest.mark.integration
_EXIT_TIMEOUT_S = 60.0  # generous: an exit, not a speed, is what is checked
_READ_TIMEOUT_S = 60.0


def _subscribers(url: str) -> float:
    text = httpx.get(f"{url}/metrics", headers={"X-Request-ID": "scrape-1"}, timeout=10).text
    for family in text_string_to_metric_families(text):
        if family.name == "custodes_sse_subscribers":
            return float(family.samples[0].value)
    raise AssertionError("no custodes_sse_subscribers in /metrics")


def _json_lines(log: str) -> list[dict[str, Any]]:
    lines = []
    for line in log.splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_sigterm_ends_open_kill_order_streams_and_the_process_exits(tmp_path: Path) -> None:
    env = node_env(tmp_path / "node", "shutdown.custodes.test/log")
    env |= {"CUSTODES_LOG_FORMAT": "json", "CUSTODES_ACCESS_LOG": "true"}
    init_node(env)
    node = NodeProcess(env, tmp_path / "serve.log")
    with node, httpx.Client(timeout=httpx.Timeout(10.0, read=_READ_TIMEOUT_S)) as http:
        stream_headers = {"X-Request-ID": "stream-1"}
        with http.stream(
            "GET", f"{node.url}/api/v1/kill-orders/stream", headers=stream_headers
        ) as stream:
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            assert stream.headers["x-request-id"] == "stream-1"
            wait_until("the stream to count", lambda: _subscribers(node.url) == 1, 30)
            assert node.process is not None
            node.process.send_signal(signal.SIGTERM)
            rest = list(lines)  # ends when the node ends the stream; raises if it is cut
        # uvicorn re-raises the signal once it has shut down gracefully
        assert node.process.wait(timeout=_EXIT_TIMEOUT_S) in (0, -signal.SIGTERM)
        log = node.log_tail()
    assert all(not line or line.startswith(":") for line in rest), rest
    assert "timeout graceful shutdown exceeded" not in log
    access = {e["request_id"]: e for e in _json_lines(log) if e["logger"] == "custodes.access"}
    assert access["stream-1"]["path"] == "/api/v1/kill-orders/stream"
    assert access["scrape-1"]["status"] == 200

"""`custodes demo --serve`: the alliance stays up, the guide it prints works as printed,
and Ctrl-C stops every node and removes the demo's data.

The benchmarks act is left out (--no-evals): it is the slowest and has its own tests
(tests/integration/test_eval_cli.py); every other act plays as a user sees it.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.integration.procs import custodes_argv, free_port, run_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

READY = "Ctrl-C stops every node"
_READY_S = 900.0  # five nodes, agents, orders, audits, red-teaming, witnessing (a hang guard)
_STOP_S = 60.0


@dataclass
class DemoProcess:
    """The demo as a user runs it, its output read line by line as it comes."""

    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    _reader: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def close(self) -> None:
        """Once the process has ended: the reader sees the end of its output; close it."""
        assert self._reader is not None
        assert self.process.stdout is not None
        self._reader.join(timeout=_STOP_S)
        self.process.stdout.close()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def read_until(self, marker: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(marker in line for line in self.lines):
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"no {marker!r} within {timeout}s:\n" + "\n".join(self.lines[-40:]))
            if line is None:
                pytest.fail("the demo ended early:\n" + "\n".join(self.lines[-40:]))
            self.lines.append(line)

    def line_with(self, pattern: str) -> re.Match[str]:
        found = next((m for line in self.lines if (m := re.search(pattern, line))), None)
        assert found is not None, f"no line matches {pattern!r}"
        return found


def _five_free_ports() -> int:
    for _ in range(20):
        base = free_port()
        try:
            for port in range(base, base + 5):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise AssertionError("found no five consecutive free ports")


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoProcess]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp_path)}
    args = ["demo", "--serve", "--no-evals", "--base-port", str(_five_free_ports())]
    args += ["--out", str(tmp_path / "out")]
    process = subprocess.Popen(
        [*custodes_argv(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        start_new_session=True,
    )
    running = DemoProcess(process)
    try:
        yield running
    finally:
        if process.poll() is None:  # the test failed before stopping it: end the group
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=_STOP_S)
        running.close()


def _sign_in(dashboard: str, token: str) -> None:
    """Sign in through the dashboard's form as a browser would (CSRF cookie and field)."""
    with httpx.Client(timeout=10, follow_redirects=True) as browser:
        form = browser.get(f"{dashboard}signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None, form.text
        done = browser.post(f"{dashboard}signin", data={"csrf": csrf.group(1), "token": token})
        assert done.status_code == 200, done.text
        assert "Sign out" in done.text


def _printed_command(demo: DemoProcess, words: str) -> list[str]:
    line = demo.line_with(rf"^\s+custodes {words} .*$").group(0)
    return shlex.split(line)[1:]


def test_serve_leaves_the_alliance_running_until_ctrl_c(demo: DemoProcess, tmp_path: Path) -> None:
    # The federation acts: an order across the border, a look-up, an erasure, an audit
    # recognised by every member and a trade, a fork caught.
    demo.read_until("one alliance: OK", _READY_S)
    demo.read_until("mutual recognition: OK", _READY_S)
    demo.read_until("red-teaming repository: OK", _READY_S)
    demo.read_until("forensics: OK", _READY_S)
    demo.read_until("split view: OK", _READY_S)
    demo.read_until(READY, _READY_S)
    demo.read_until("Agents at GB", 10)
    # The forensic report and bundle of the suspension are kept; the bundle verifies offline.
    bundle = Path(demo.line_with(r"evidence bundle: (\S+) ").group(1))
    report = Path(demo.line_with(r"report: (\S+)$").group(1))
    assert bundle.is_relative_to(tmp_path / "out")
    assert "<html" in report.read_text()
    checked = run_cli(["forensics", "verify", str(bundle)])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The dashboard: its URL and a regulator's token, which signs in.
    dashboard = demo.line_with(r"^Dashboard: (\S+)$").group(1)
    token = demo.line_with(r"with the token (cst_\S+)$").group(1)
    _sign_in(dashboard, token)
    urls = [
        demo.line_with(rf"^\s+{code} .*: (http://127\.0\.0\.1:\d+) ").group(1)
        for code in ("GB", "FR", "DE", "CA")
    ]
    for url in urls:
        assert httpx.get(f"{url}/api/v1/node", timeout=10).status_code == 200
        assert httpx.get(f"{url}/docs", timeout=10).status_code == 200

    curl = demo.line_with(r"^\s+curl (\S+/api/v1/registry/agents/(\S+))$")
    agent = httpx.get(curl.group(1), timeout=10).json()
    assert agent["record"]["id"] == curl.group(2)

    orders = run_cli([*_printed_command(demo, "kill list"), "--output", "json"])
    assert orders.returncode == 0, orders.stderr
    targets = {order["agent_id"] for order in json.loads(orders.stdout)}
    assert curl.group(2) in targets  # the scenario's suspension and its lifting

    suspend = run_cli(_printed_command(demo, "kill suspend"))  # as the explorer regulator
    assert suspend.returncode == 0, suspend.stderr
    assert "status now suspended" in suspend.stdout

    data_dir = Path(demo.line_with(r"data in (\S+)/gb$").group(1))
    assert data_dir.is_relative_to(tmp_path)
    demo.process.send_signal(signal.SIGINT)
    assert demo.process.wait(timeout=_STOP_S) == 0
    for url in urls:
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{url}/api/v1/node", timeout=5)
    assert not data_dir.exists()

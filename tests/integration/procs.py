"""Real ``custodes`` processes on loopback for the integration tests.

``NodeProcess`` runs ``custodes serve`` through the installed console script, whose
shebang execs the interpreter, so ``pid`` is the server process itself and SIGKILL
reaches it with no wrapper in between. Every wait is bounded; every process is ended
by whoever started it (``with`` block or ``stop``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from custodes.client import Client
from custodes.config import DEV_ADMIN_TOKEN
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint
from custodes.ledger.dsse import Envelope, EnvelopeSigner
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.note import parse_vkey
from custodes.ledger.tiles import hashes_from_tile, tile_path, tiles_for_size
from custodes.sdk.bootstrap import bootstrap
from custodes.sdk.bootstrap import enrol_agent as bootstrap_agent
from custodes.sdk.decisions import sign_decision

__all__ = [
    "ADMIN_TOKEN",
    "CLI_TIMEOUT_S",
    "NodeProcess",
    "Peer",
    "append_decisions",
    "custodes_argv",
    "enrol_agent",
    "fetch_checkpoint",
    "free_port",
    "init_node",
    "leaf_hashes",
    "node_env",
    "run_cli",
    "wait_until",
]

ADMIN_TOKEN = DEV_ADMIN_TOKEN
CLI_TIMEOUT_S = 60.0
_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0
_START_ATTEMPTS = 3
_LOG_TAIL_CHARS = 4000


def custodes_argv() -> list[str]:
    """How to run the ``custodes`` command of this environment as one process."""
    script = Path(sys.executable).parent / "custodes"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from custodes.cli.main import run; run()"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Peer:
    """A witness one node asks to cosign: its URL and its witness vkey."""

    url: str
    vkey: str


def node_env(
    data_dir: Path,
    origin: str,
    *,
    database_url: str | None = None,
    witnessed_logs: Sequence[str] = (),
    witnesses: Sequence[Peer] = (),
    quorum: int = 0,
    jurisdiction: str = "ZZ",
    checkpoint_interval: float = 0.2,
    integrate_delay: float = 0.01,
) -> dict[str, str]:
    """The environment of a node: this process's minus any ``CUSTODES_*``, plus settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env.update(
        CUSTODES_DATA_DIR=str(data_dir),
        CUSTODES_ORIGIN=origin,
        CUSTODES_JURISDICTION=jurisdiction,
        CUSTODES_CHECKPOINT_INTERVAL=str(checkpoint_interval),
        CUSTODES_INTEGRATE_DELAY=str(integrate_delay),
        CUSTODES_WITNESSED_LOGS=json.dumps(list(witnessed_logs)),
        CUSTODES_WITNESSES=json.dumps([{"url": p.url, "vkey": p.vkey} for p in witnesses]),
        CUSTODES_WITNESS_QUORUM=str(quorum),
        CUSTODES_ADMIN_TOKEN=ADMIN_TOKEN,  # loopback test nodes; init generates none then
        # Critical agents here are not audited; the gate's tests turn it on.
        CUSTODES_DEPLOYMENT_GATE="false",
    )
    if database_url is not None:
        env["CUSTODES_DATABASE_URL"] = database_url
    return env


def run_cli(
    args: Sequence[str],
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run one ``custodes`` command to completion (bounded) and capture its output."""
    return subprocess.run(
        [*custodes_argv(), *args],
        env=dict(env if env is not None else os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=CLI_TIMEOUT_S,
    )


def init_node(env: Mapping[str, str]) -> dict[str, str]:
    """``custodes init``: create keys and database, return the node's public keys."""
    result = run_cli(["init"], env)
    assert result.returncode == 0, f"custodes init failed:\n{result.stdout}\n{result.stderr}"
    keys: dict[str, str] = json.loads(result.stdout)
    return keys


def wait_until(what: str, check: Any, timeout: float, interval: float = 0.05) -> Any:
    """Poll ``check()`` until it returns a truthy value; fail naming ``what`` after timeout."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = check()
        except (httpx.HTTPError, OSError) as exc:
            last_error, value = exc, None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what} (last error: {last_error!r})"
    )


@dataclass
class NodeProcess:
    """``custodes serve`` on 127.0.0.1 with a given environment, in its own session."""

    env: dict[str, str]
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    args: tuple[str, ...] = ()  # more ``serve`` options (``--workers 3``)
    start_timeout: float = _START_TIMEOUT_S

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None, "the node is not running"
        return self.process.pid

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Start and wait until the API answers; retry on a new port if the port was taken."""
        fixed_port = self.port != 0
        for _attempt in range(1 if fixed_port else _START_ATTEMPTS):
            if not fixed_port:
                self.port = free_port()
            if self._start_once():
                return
        raise AssertionError(f"custodes serve did not start; log tail:\n{self.log_tail()}")

    def _start_once(self) -> bool:
        serve = ["serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*custodes_argv(), *serve],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.process = None
                    return False
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/api/v1/node").status_code == 200:
                        return True
                time.sleep(0.05)
        self.stop()
        raise AssertionError(
            f"custodes serve did not answer within {self.start_timeout}s; "
            f"log tail:\n{self.log_tail()}"
        )

    def kill(self) -> None:
        """SIGKILL the server process itself: no shutdown code runs."""
        if self.process is None:
            return
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=_STOP_TIMEOUT_S)
        self.process = None

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown), SIGKILL if it lingers. Idempotent."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=_STOP_TIMEOUT_S)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-_LOG_TAIL_CHARS:]
        except OSError:
            return "(no log)"

    def client(self, timeout: float = 10.0) -> Client:
        return Client(self.url, admin_token=ADMIN_TOKEN, timeout=timeout)


def fetch_checkpoint(
    url: str,
    log_vkey: str,
    client: httpx.Client | None = None,
) -> tuple[Checkpoint, bytes]:
    """The node's served checkpoint, verified with its log key, and the raw note."""
    http = client or httpx.Client(timeout=5.0)
    try:
        response = http.get(f"{url}/log/checkpoint")
        response.raise_for_status()
    finally:
        if client is None:
            http.close()
    checkpoint, _note, _sigs = open_checkpoint(response.content, [parse_vkey(log_vkey)])
    return checkpoint, response.content


def leaf_hashes(url: str, size: int) -> list[bytes]:
    """The first ``size`` leaf hashes, read from the log's level-0 tiles."""
    hashes: list[bytes] = []
    with httpx.Client(base_url=url, timeout=10.0) as http:
        for index, width in tiles_for_size(0, size):
            response = http.get(f"/log/{tile_path(0, index, width)}")
            response.raise_for_status()
            hashes.extend(hashes_from_tile(response.content))
    return hashes


def enrol_agent(url: str, key: EnvelopeSigner, slug: str, jurisdiction: str = "ZZ") -> str:
    """Enrol an agent holding ``key`` on a fresh node, over HTTP; return its id.

    The SDK's bootstrap creates the jurisdiction's regulator and operator through the
    admin API; the operator registers the agent. Call it once per node database.
    """
    with httpx.Client(base_url=url, timeout=10.0) as http:
        authorities = bootstrap(url, ADMIN_TOKEN, jurisdiction, client=http)
        return bootstrap_agent(authorities, key, slug, sector="testing", risk_tier="minimal")


def append_decisions(
    client: Client, signer: EnvelopeSigner, agent: str, count: int, tag: str = ""
) -> list[tuple[int, bytes]]:
    """Append ``count`` decisions in one batch; return (index, leaf hash) of each."""
    envelopes: list[Envelope] = [
        sign_decision(signer, agent, f"action {tag}{i}", f"because {tag}{i}") for i in range(count)
    ]
    indices = client.append(envelopes)
    assert len(indices) == count
    return [(i, leaf_hash(e.to_bytes())) for i, e in zip(indices, envelopes, strict=True)]

"""Helpers the benchmarks share: a node in its own process, agents and pre-signed entries,
the machine's conditions, physical-limit probes (Ed25519, SHA-256) and rich tables.

Everything expensive for the client (key generation, signing, canonical JSON) happens
before a timer starts, so the timings measure the node, not the load generator.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from cryptography.hazmat.backends.openssl.backend import backend
from rich.console import Console
from rich.table import Table

import custodes
from custodes.config import DEV_ADMIN_TOKEN, Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.ed25519 import verify_strict, verify_strict_reference
from custodes.node import Node
from custodes.sdk.bootstrap import bootstrap, enrol_agent
from custodes.sdk.decisions import sign_decision

__all__ = [
    "ADMIN_TOKEN",
    "JURISDICTION",
    "REPO_ROOT",
    "RESULTS_DIR",
    "VERIFIERS",
    "Agent",
    "CpuMonitor",
    "LoadResult",
    "NodeProcess",
    "agent_id",
    "batch_body",
    "checkpoint_size",
    "cli_path",
    "console",
    "drive_appends",
    "ed25519_verify_rate",
    "fmt_ms",
    "fmt_rate",
    "make_agents",
    "percentile",
    "postgres_available",
    "presign",
    "print_conditions",
    "print_run_load",
    "print_table",
    "process_cpu_seconds",
    "register_agents",
    "running_node",
    "sha256_rate",
    "throwaway_postgres",
    "wait_for_checkpoint",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
ADMIN_TOKEN = DEV_ADMIN_TOKEN
JURISDICTION = "ZZ"  # the nodes' CUSTODES_JURISDICTION; agents' ids and home
# Wide enough for the result tables when output goes to a file or a pipe.
console = Console(width=None if sys.stdout.isatty() else 180)

_STARTUP_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0
_BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


# --- tables and numbers ------------------------------------------------------------------


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], caption: str = ""
) -> None:
    table = Table(
        title=title, caption=caption or None, title_justify="left", min_width=len(title) + 2
    )
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values``; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered), max(1, math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}/s"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


# --- machine conditions ------------------------------------------------------------------


def _cpu_times() -> tuple[int, int]:
    with open("/proc/stat") as handle:
        # user nice system idle iowait irq softirq steal (guest time is inside user)
        fields = [int(v) for v in handle.readline().split()[1:9]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return sum(fields), idle


def busy_fraction(seconds: float = 1.0) -> float:
    """Share of all CPUs busy over ``seconds`` (other load present before we start)."""
    try:
        total0, idle0 = _cpu_times()
        time.sleep(seconds)
        total1, idle1 = _cpu_times()
    except OSError:
        return float("nan")
    total = total1 - total0
    return 1.0 - (idle1 - idle0) / total if total else float("nan")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _all_processes() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds) for every process /proc shows."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    return found


class CpuMonitor:
    """Estimates CPU load from *other* work while a benchmark runs.

    Every ``interval`` it compares machine-wide busy CPU time (/proc/stat) with the CPU
    time of this benchmark's own processes: this process, its descendants, and extra
    roots such as a PostgreSQL postmaster (which daemonises away from us). The
    difference is what something else on the machine used.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self._interval = interval
        self._roots = {os.getpid()}
        self._seen: dict[int, float] = {}
        self._own = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu-monitor", daemon=True)
        self._started = 0.0
        self._busy0 = 0.0
        self.wall_s = 0.0
        self.machine_busy_s = 0.0

    def add_root(self, pid: int) -> None:
        self._roots.add(pid)

    def _sample(self) -> None:
        procs = _all_processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _) in procs.items():
            children.setdefault(ppid, []).append(pid)
        stack = [r for r in self._roots if r in procs]
        while stack:
            pid = stack.pop()
            cpu = procs[pid][1]
            self._own += cpu - self._seen.get(pid, 0.0)
            self._seen[pid] = cpu
            stack.extend(children.get(pid, ()))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self._sample()

    def _busy_s(self) -> float:
        total, idle = _cpu_times()
        return (total - idle) / os.sysconf("SC_CLK_TCK")

    def __enter__(self) -> CpuMonitor:
        self._sample()
        self._own = 0.0
        self._busy0 = self._busy_s()
        self._started = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self.wall_s = time.perf_counter() - self._started
        self.machine_busy_s = self._busy_s() - self._busy0

    @property
    def own_cores(self) -> float:
        return self._own / self.wall_s if self.wall_s else float("nan")

    @property
    def other_cores(self) -> float:
        """Average CPUs busy with work that is not this benchmark's (never below 0)."""
        if not self.wall_s:
            return float("nan")
        return max(0.0, (self.machine_busy_s - self._own) / self.wall_s)


def print_run_load(name: str, monitor: CpuMonitor) -> None:
    """After the run: how busy the machine was with this benchmark and with other work."""
    cpus = len(os.sched_getaffinity(0))
    print_table(
        f"{name}: CPU use during the run",
        ["", "value"],
        [
            ("wall time", f"{monitor.wall_s:.1f} s"),
            (
                "this benchmark (client + node + its database), avg",
                f"{monitor.own_cores:.2f} of {cpus} CPUs",
            ),
            ("other processes on the machine, avg", f"{monitor.other_cores:.2f} of {cpus} CPUs"),
        ],
        caption="other > 0.2 CPUs means the numbers above were taken on a shared, busy machine",
    )


def _code_under_test() -> str:
    """Where the measured ``custodes`` comes from, and its git revision when it is ours."""
    where = Path(custodes.__file__).resolve().parent
    if where != REPO_ROOT / "src" / "custodes":
        return str(where)
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return str(where)
    return f"src/ at {rev}" + (" + uncommitted changes" if dirty else "")


def print_conditions(name: str) -> None:
    """One table with what the numbers depend on: cores, other load, versions."""
    busy = busy_fraction()
    load1, load5, _ = os.getloadavg()
    rows = [
        ("nproc (usable CPUs)", len(os.sched_getaffinity(0))),
        ("CPU", _cpu_model()),
        ("CPU busy before start (1 s sample)", f"{busy:.0%}"),
        ("load average 1 / 5 min", f"{load1:.2f} / {load5:.2f}"),
        ("Python", platform.python_version()),
        ("OpenSSL (pyca/cryptography)", backend.openssl_version_text()),
        ("custodes", f"{custodes.__version__} ({_code_under_test()})"),
        ("started", datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")),
    ]
    print_table(f"{name}: machine conditions", ["", "value"], rows)


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- physical limits ---------------------------------------------------------------------


# The node's strict verifier (libsodium through PyNaCl) and its OpenSSL reference.
VERIFIERS: dict[str, Callable[[bytes, bytes, bytes], bool]] = {
    "libsodium (PyNaCl), the node's": verify_strict,
    "OpenSSL (pyca/cryptography)": verify_strict_reference,
}


def ed25519_verify_rate(threads: int, seconds: float, library: str) -> float:
    """Strict Ed25519 verifications per second over ``threads`` threads with ``library``
    (a key of ``VERIFIERS``): the strict checks plus the library's equation, as the
    node's ingest path runs them.

    The message is the size of a typical decision envelope's PAE (~400 bytes).
    """
    verify = VERIFIERS[library]
    signer = EnvelopeSigner.generate()
    message = os.urandom(400)
    sig = signer.sign(message).sig
    public = signer.public_key
    counts = [0] * threads
    stop = threading.Event()
    start_barrier = threading.Barrier(threads + 1)

    def work(slot: int) -> None:
        start_barrier.wait()
        done = 0
        while not stop.is_set():
            for _ in range(64):
                if not verify(public, sig, message):
                    raise AssertionError("an honest signature did not verify")
            done += 64
        counts[slot] = done

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    start_barrier.wait()
    began = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - began)


def sha256_rate(seconds: float, size: int = 65) -> float:
    """hashlib SHA-256 digests per second of ``size``-byte inputs on one core.

    65 bytes is an RFC 6962 interior node input (0x01 || left || right).
    """
    data = [os.urandom(size) for _ in range(256)]
    sha = hashlib.sha256
    done = 0
    began = time.perf_counter()
    deadline = began + seconds
    while time.perf_counter() < deadline:
        for item in data:
            sha(item).digest()
        done += len(data)
    return done / (time.perf_counter() - began)


# --- agents and entries ------------------------------------------------------------------


@dataclass(frozen=True)
class Agent:
    name: str
    signer: EnvelopeSigner


def agent_id(name: str) -> str:
    """A registry agent id at this benchmark's node jurisdiction."""
    return f"urn:custodes:{JURISDICTION.lower()}:agent:{name}"


def make_agents(count: int, prefix: str = "bench-agent") -> list[Agent]:
    """Agents with deterministic keys (seeded by position), so runs are comparable."""
    return [
        Agent(
            agent_id(f"{prefix}-{i}"),
            EnvelopeSigner.from_seed(hashlib.sha256(f"{prefix}{i}".encode()).digest()),
        )
        for i in range(count)
    ]


def register_agents(base_url: str, agents: Sequence[Agent]) -> None:
    """Let ``agents`` append decisions (the node accepts them only from registered
    agents): the SDK's bootstrap creates a regulator and an operator with the admin
    token, and the operator registers each agent with its key."""
    with httpx.Client(base_url=base_url, timeout=30.0) as http:
        authorities = bootstrap(base_url, ADMIN_TOKEN, JURISDICTION, operator="bench", client=http)
        for agent in agents:
            enrol_agent(
                authorities,
                agent.signer,
                agent.name.rsplit(":", 1)[1],
                sector="logistics",
                risk_tier="limited",
                purpose="synthetic load for Custodes benchmarks",
            )


def _sign_range(seed: bytes, agent: str, start: int, count: int, tag: str) -> list[bytes]:
    """Canonical entry bytes of ``count`` decisions by one agent (runs in a worker)."""
    signer = EnvelopeSigner.from_seed(seed)
    out = []
    for n in range(start, start + count):
        envelope = sign_decision(
            signer,
            agent,
            action=f"approve-transfer:{tag}:{n}",
            rationale=(
                f"Counterparty risk score {n % 97} is below the 0.35 threshold set by the "
                "mandate; exposure after this transfer stays within the daily limit."
            ),
            counterparties=[f"acct-{n % 1013:04d}", "treasury-desk"],
            jurisdiction="GB",
            decided_at=_BASE_TIME + timedelta(milliseconds=n),
            idempotency_key=f"{tag}-{n}",
        )
        out.append(envelope.to_bytes())
    return out


def presign(agents: Sequence[Agent], count: int, tag: str = "bench") -> list[bytes]:
    """``count`` signed decision entries (canonical JSON bytes), round-robin over agents.

    Signing is spread over every CPU; entries differ (index, time, idempotency key), so
    each has its own leaf hash.
    """
    per_agent = [count // len(agents) + (i < count % len(agents)) for i in range(len(agents))]
    chunk = 2_000
    jobs = [
        (agent.signer.seed(), agent.name, start, min(chunk, n - start), tag)
        for agent, n in zip(agents, per_agent, strict=True)
        for start in range(0, n, chunk)
    ]
    workers = max(1, len(os.sched_getaffinity(0)))
    with ProcessPoolExecutor(workers) as pool:
        results = list(pool.map(_sign_range, *zip(*jobs, strict=True)))
    by_agent: list[list[bytes]] = [[] for _ in agents]
    for (_seed, name, *_rest), entries in zip(jobs, results, strict=True):
        by_agent[[a.name for a in agents].index(name)].extend(entries)
    interleaved = [
        by_agent[a][i]
        for i in range(max(per_agent))
        for a in range(len(agents))
        if i < per_agent[a]
    ]
    return interleaved


def batch_body(entries: Sequence[bytes]) -> bytes:
    """The canonical ``{"entries": [...]}`` body Client.append sends."""
    return b'{"entries":[' + b",".join(entries) + b"]}"


@dataclass
class LoadResult:
    """What a burst of appends achieved: acknowledged entries, time, per-request latency."""

    entries: int
    requests: int
    seconds: float
    latencies: list[float]
    retries: int
    server_cpu_s: float
    last_index: int

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds else float("nan")


_JSON = {"Content-Type": "application/json"}


def _post_until_accepted(client: httpx.Client, body: bytes) -> tuple[float, int, int]:
    """POST one batch; on 503 (sequencer backlog) wait as told and resend.

    Returns (latency of the accepted request, retries, highest index acknowledged).
    """
    retries = 0
    while True:
        began = time.perf_counter()
        response = client.post("/api/v1/entries", content=body, headers=_JSON)
        if response.status_code == 503 and retries < 1_000:
            retries += 1
            time.sleep(min(float(response.headers.get("Retry-After", "0.05")), 0.05))
            continue
        if response.status_code != 200:
            raise RuntimeError(f"append failed: HTTP {response.status_code} {response.text[:300]}")
        latency = time.perf_counter() - began
        return latency, retries, max(orjson.loads(response.content)["indices"])


def drive_appends(
    node: NodeProcess,
    bodies: Sequence[tuple[bytes, int]],
    threads: int,
    time_limit_s: float = 600.0,
) -> LoadResult:
    """Send pre-built ``(body, entries)`` requests from ``threads`` httpx clients until all
    are acknowledged (or ``time_limit_s`` passes); each thread takes the next body."""
    feed = iter(bodies)
    feed_lock = threading.Lock()
    latencies: list[list[float]] = [[] for _ in range(threads)]
    acked = [0] * threads
    retries = [0] * threads
    last = [-1] * threads
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(slot: int) -> None:
        with httpx.Client(base_url=node.base_url, timeout=120.0) as client:
            barrier.wait()
            while time.perf_counter() < deadline[0]:
                with feed_lock:
                    item = next(feed, None)
                if item is None:
                    return
                try:
                    latency, retried, top = _post_until_accepted(client, item[0])
                except BaseException as exc:
                    errors.append(exc)
                    return
                latencies[slot].append(latency)
                acked[slot] += item[1]
                retries[slot] += retried
                last[slot] = max(last[slot], top)

    workers = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    cpu0 = process_cpu_seconds(node.process.pid)
    began = time.perf_counter()
    deadline[0] = began + time_limit_s
    barrier.wait()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - began
    if errors:
        raise RuntimeError(f"{len(errors)} client threads failed") from errors[0]
    return LoadResult(
        entries=sum(acked),
        requests=sum(len(x) for x in latencies),
        seconds=elapsed,
        latencies=[v for x in latencies for v in x],
        retries=sum(retries),
        server_cpu_s=process_cpu_seconds(node.process.pid) - cpu0,
        last_index=max(last),
    )


def checkpoint_size(client: httpx.Client) -> int:
    """Tree size of the node's served checkpoint (second line of the signed note)."""
    response = client.get("/log/checkpoint")
    if response.status_code != 200:
        return 0
    return int(response.text.split("\n", 2)[1])


def wait_for_checkpoint(node: NodeProcess, size: int, timeout_s: float) -> float | None:
    """Seconds until a checkpoint covers ``size`` entries, polled every 10 ms; None on timeout."""
    began = time.perf_counter()
    with httpx.Client(base_url=node.base_url, timeout=10.0) as client:
        while time.perf_counter() - began < timeout_s:
            if checkpoint_size(client) >= size:
                return time.perf_counter() - began
            time.sleep(0.01)
    return None


# --- a node in its own process -----------------------------------------------------------


def cli_path() -> str:
    """The ``custodes`` script of the running interpreter's environment."""
    beside = Path(sys.executable).parent / "custodes"
    if beside.exists():
        return str(beside)
    found = shutil.which("custodes")
    if found is None:
        raise RuntimeError("the custodes CLI is not installed (pip install -e .)")
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class NodeProcess:
    base_url: str
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=_STOP_TIMEOUT_S)


def _wait_ready(node: NodeProcess) -> None:
    deadline = time.monotonic() + _STARTUP_TIMEOUT_S
    with httpx.Client(base_url=node.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if node.process.poll() is not None:
                raise RuntimeError(f"custodes serve exited early:\n{node.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get("/log/checkpoint").status_code == 200:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"custodes serve did not become ready:\n{node.log_tail()}")


@contextlib.contextmanager
def running_node(
    *,
    data_dir: Path | None = None,
    database_url: str | None = None,
    origin: str = "bench.custodes.example/log",
    extra_env: dict[str, str] | None = None,
) -> Iterator[NodeProcess]:
    """``custodes serve`` on a free loopback port, with its own temporary data dir
    unless ``data_dir`` is given; stopped (SIGTERM, then SIGKILL) on exit."""
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="custodes-bench-"))
            )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
        env |= {
            "CUSTODES_DATA_DIR": str(data_dir),
            "CUSTODES_ORIGIN": origin,
            "CUSTODES_JURISDICTION": JURISDICTION,
            # The benchmarks' finance agents are not audited (bench_gates measures the gate).
            "CUSTODES_DEPLOYMENT_GATE": "false",
        }
        if database_url is not None:
            env["CUSTODES_DATABASE_URL"] = database_url
        env |= extra_env or {}
        port = free_port()
        log_path = data_dir / "serve.log"
        log_file = stack.enter_context(open(log_path, "wb"))
        process = subprocess.Popen(
            [cli_path(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        node = NodeProcess(f"http://127.0.0.1:{port}", data_dir, process, log_path)
        stack.callback(node.stop)
        _wait_ready(node)
        yield node


def _pgserver() -> Any:
    """tests/pgserver.py, the project's throwaway PostgreSQL (imported from the repo root)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    return importlib.import_module("tests.pgserver")


def postgres_available() -> bool:
    """Whether PostgreSQL server binaries are installed (tests/pgserver.py finds them)."""
    return _pgserver().find_pg_bin() is not None


@contextlib.contextmanager
def throwaway_postgres(monitor: CpuMonitor | None = None) -> Iterator[Callable[[str], str]]:
    """A private PostgreSQL server (tests/pgserver.py) for one run; yields a function that
    creates a fresh database by name and returns its SQLAlchemy URL. The server's CPU
    counts as the benchmark's own in ``monitor``."""
    with _pgserver().ThrowawayPostgres(database="custodes_bench") as server:
        if monitor is not None:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid_file = server.data_dir / "postmaster.pid"
                monitor.add_root(int(pid_file.read_text().splitlines()[0]))
        yield server.new_database


# --- logs built in-process once and cached between runs --------------------------------


def _schema_head() -> str:
    """The newest migration revision: a cached database is only reused by the same schema."""
    from importlib import resources  # noqa: PLC0415 - only the cached benchmarks need it

    from alembic.config import Config  # noqa: PLC0415
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(resources.files("custodes.store") / "migrations"))
    return str(ScriptDirectory.from_config(config).get_current_head())


def cache_dir(kind: str, version: str, size: int) -> Path:
    """Where a built database of ``kind`` and ``size`` is kept, keyed by code and schema."""
    key = f"{version}-custodes{custodes.__version__}-schema{_schema_head()}-{size}"
    return RESULTS_DIR / f"{kind}-{key}"


def built_once(
    target: Path, marker: str, rebuild: bool, build: Callable[[], dict[str, Any]], what: str
) -> tuple[dict[str, Any], bool]:
    """The cached build's info (its ``marker`` file), or a fresh ``build()``; and whether
    it was built now. A directory without its marker is an interrupted build: redone."""
    if rebuild:
        shutil.rmtree(target, ignore_errors=True)
    if (target / marker).exists():
        return orjson.loads((target / marker).read_bytes()), False
    shutil.rmtree(target, ignore_errors=True)
    console.print(f"building {what} in {target} (cached for later runs)…")
    return build(), True


@contextlib.contextmanager
def reading_node(settings: Settings) -> Iterator[Node]:
    """A Node opened for reads only: never started, so none of its threads run."""
    node = Node(settings)
    try:
        yield node
    finally:
        node.close()

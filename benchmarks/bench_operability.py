"""What operability costs and saves: per-request overhead, probe and scrape latency, shutdown.

1. The request-id layer (and tracing into an in-memory exporter) around ``GET /healthz``,
   in process over httpx's ASGI transport: time per request with and without it.
2. ``GET /readyz``, ``GET /metrics`` and ``GET /api/v1/health`` on that node (SQLite).
3. SIGTERM to exit of a ``custodes serve`` process holding one open kill-order stream,
   with the stream ended at once (this code) and with uvicorn's plain shutdown, which
   waits out its grace period (5 s) and then cuts the stream.

    .venv/bin/python benchmarks/bench_operability.py [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from fastapi import FastAPI
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from _common import fmt_ms, percentile, print_conditions, print_table
from custodes.api import create_app
from custodes.api.tracing import new_provider
from custodes.config import Settings

_PLAIN_SHUTDOWN = (
    "from uvicorn.protocols.http.h11_impl import H11Protocol\n"
    "from custodes.api.server import DeadlineProtocol\n"
    "DeadlineProtocol.shutdown = H11Protocol.shutdown\n"
    "from custodes.cli.main import run\nrun()\n"
)


def _settings(base: Path) -> Settings:
    return Settings(data_dir=base, audit_interval=0, checkpoint_interval=0.2)


async def _timed(app: FastAPI, path: str, count: int) -> list[float]:
    times = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
            for _ in range(count):
                started = time.perf_counter()
                response = await client.get(path)
                times.append(time.perf_counter() - started)
                assert response.status_code == 200, response.text
    return times


def _per_request(count: int, base: Path) -> list[tuple[str, float, float]]:
    rows = []
    variants: list[tuple[str, Callable[[Path], FastAPI]]] = [
        ("routers only", lambda d: _bare(create_app(_settings(d)))),
        ("+ request id", lambda d: create_app(_settings(d))),
        ("+ request id + tracing", lambda d: _traced(_settings(d))),
    ]
    for name, build in variants:
        times = asyncio.run(_timed(build(base / name.replace(" ", "")), "/healthz", count))
        rows.append((name, percentile(times, 50), percentile(times, 99)))
    return rows


def _bare(app: FastAPI) -> FastAPI:
    app.build_middleware_stack = lambda: FastAPI.build_middleware_stack(app)  # type: ignore[method-assign]
    return app


def _traced(settings: Settings) -> FastAPI:
    provider = new_provider(settings)
    provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return create_app(settings, tracer_provider=provider)


def _probes(count: int, base: Path) -> list[tuple[str, float, float]]:
    rows = []
    for path in ("/readyz", "/metrics", "/api/v1/health"):
        times = asyncio.run(_timed(create_app(_settings(base / "probes")), path, count))
        rows.append((path, percentile(times, 50), percentile(times, 99)))
    return rows


def _free_port() -> int:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _shutdown(base: Path, plain: bool) -> tuple[float, str]:
    """Seconds from SIGTERM to exit with one open stream, and how the stream ended."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env |= {"CUSTODES_DATA_DIR": str(base), "CUSTODES_AUDIT_INTERVAL": "0"}
    code = _PLAIN_SHUTDOWN if plain else "from custodes.cli.main import run\nrun()\n"
    argv = [sys.executable, "-c", code, "serve", "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url)
        with (
            httpx.Client(timeout=30) as http,
            http.stream("GET", f"{url}/api/v1/kill-orders/stream") as stream,
        ):
            lines = stream.iter_lines()
            next(lines)
            started = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            try:
                list(lines)
                ending = "ended cleanly"
            except httpx.RemoteProtocolError:
                ending = "cut"
        process.wait(timeout=60)
        return time.perf_counter() - started, ending
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise SystemExit("custodes serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print_conditions("bench_operability")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        rows = _per_request(args.requests, base)
        print_table(
            f"GET /healthz in process ({args.requests} requests each)",
            ["layers", "p50", "p99"],
            [(name, fmt_ms(p50), fmt_ms(p99)) for name, p50, p99 in rows],
        )
        probes = _probes(max(100, args.requests // 10), base)
        print_table(
            "probes and scrape (SQLite, in process)",
            ["path", "p50", "p99"],
            [(path, fmt_ms(p50), fmt_ms(p99)) for path, p50, p99 in probes],
        )
        stops = [
            ("streams ended at once", *_shutdown(base / "ended", plain=False)),
            ("uvicorn's plain shutdown", *_shutdown(base / "plain", plain=True)),
        ]
        print_table(
            "SIGTERM to exit, one kill-order stream open",
            ["shutdown", "seconds", "the subscriber's stream"],
            [(name, f"{seconds:.2f}", ending) for name, seconds, ending in stops],
        )


if __name__ == "__main__":
    main()

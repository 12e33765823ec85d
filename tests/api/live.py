"""A node's app served by the real HTTP server (``custodes serve``'s uvicorn setup) on
loopback, in this process: for what only a socket shows (deadlines, streaming, closing).

Raw sockets speak HTTP/1.1 by hand so a test can trickle, stall or abandon a request.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from custodes.api import create_app
from custodes.api.server import server_config
from custodes.config import Settings

__all__ = ["LiveNode", "closed_by_peer", "live_node", "read_response", "send_headers"]

_START_TIMEOUT_S = 30.0
_READ_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class LiveNode:
    host: str
    port: int

    def connect(self) -> socket.socket:
        sock = socket.create_connection((self.host, self.port), timeout=_READ_TIMEOUT_S)
        return sock


@contextlib.contextmanager
def live_node(settings: Settings) -> Iterator[LiveNode]:
    """Serve a node built from ``settings`` on a free loopback port until the block ends."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # log_config None: leave logging as pytest set it up, so caplog sees the records.
    config = server_config(create_app(settings), settings, "127.0.0.1", port, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="live-node", daemon=True)
    thread.start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive(), "the server stopped while starting"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.02)
    try:
        yield LiveNode("127.0.0.1", port)
    finally:
        server.should_exit = True
        thread.join(timeout=_START_TIMEOUT_S)


def send_headers(
    sock: socket.socket, path: str, headers: dict[str, str], method: str = "POST"
) -> None:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and the body (by Content-Length) of one response."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed before a response: {buffer!r}"
        buffer += chunk
    head, body = buffer.split(b"\r\n\r\n", 1)
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "the connection closed inside the response body"
        body += chunk
    return int(status_line.split()[1]), headers, body


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed the connection (reads until EOF or the timeout)."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True

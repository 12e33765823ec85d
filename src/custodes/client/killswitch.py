"""The kill switch side of the API: orders, their list and live stream, and leases."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from custodes.client.core import Auth, _Core
from custodes.client.errors import error_from, unreachable
from custodes.ledger.dsse import Envelope
from custodes.registry.models import Selector, new_kill_order
from custodes.registry.service import ORDER_TYPE

__all__ = ["KillSwitchApi", "OrderStream"]

_STREAM_PATH = "/api/v1/kill-orders/stream"


class OrderStream:
    """An open kill-order stream: its lines, and a way to end it from another thread."""

    def __init__(self, response: httpx.Response, url: str) -> None:
        self._response, self._url = response, url

    def lines(self) -> Iterator[str]:
        """The stream's lines; NodeUnreachable when it drops (or is interrupted)."""
        try:
            yield from self._response.iter_lines()
        except httpx.HTTPError as exc:
            raise unreachable(self._url, exc) from exc

    def interrupt(self) -> None:
        """End the stream a reader is blocked on, at once.

        Closing the response does not wake a thread blocked in ``recv()`` (it would wait
        for the next heartbeat); shutting the socket down does.
        """
        stream = self._response.extensions.get("network_stream")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._response.close()


class KillSwitchApi(_Core):
    def order(
        self,
        op: str,
        agent_id: str | None,
        reason: str,
        *,
        territory: str | None = None,
        lifts: str | None = None,
        order_id: str | None = None,
        selector: Selector | None = None,
    ) -> dict[str, Any]:
        """Issue a kill order (``suspend``/``revoke``) or lift one (``reinstate``), for one
        agent or (``agent_id`` None) every agent ``selector`` matches:
        ``{"index", "order_id", "agent_id", "status"}`` (``"agents"``: how many it covers)."""
        order = new_kill_order(
            op,
            agent_id,
            reason,
            self._actor(),
            territory=territory,
            lifts=lifts,
            selector=selector,
            order_id=order_id,  # a retry names the order it repeats
        )
        return self._submit("/api/v1/kill-orders", ORDER_TYPE, order)

    def kill_orders(
        self, agent_id: str | None = None, *, active: bool = False
    ) -> list[dict[str, Any]]:
        """The kill orders (public), for one agent or all, only the active ones or all."""
        params = {"agent_id": agent_id, "active": str(active).lower()}
        found: list[dict[str, Any]] = self._json("GET", "/api/v1/kill-orders", params=params)
        return found

    @contextmanager
    def kill_order_stream(
        self,
        agent_id: str | None,
        nonce: str,
        *,
        operator: str | None = None,
        read_timeout: float = 45.0,
    ) -> Iterator[OrderStream]:
        """Follow the node's kill-order stream (server-sent events) for ``agent_id``, or
        (``agent_id`` None) for ``operator``'s fleet: each order once, listing the fleet's
        agents it covers."""
        target = {"agent_id": agent_id} if agent_id is not None else {"operator": operator}
        request = self._http.build_request(
            "GET",
            self.url + _STREAM_PATH,
            params={**target, "nonce": nonce},
            headers={"Accept": "text/event-stream"},
            timeout=httpx.Timeout(10.0, read=read_timeout),
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise unreachable(self.url, exc) from exc
        try:
            if response.status_code != 200:
                response.read()
                raise error_from(response)
            yield OrderStream(response, self.url)
        finally:
            response.close()

    def lease(self, request: Envelope, *, timeout: float = 10.0) -> bytes:
        """Send a lease request the agent signed; the node's lease envelope, unverified."""
        response = self._send(
            "POST", "/api/v1/leases", content=request.to_bytes(), auth=Auth.NONE, timeout=timeout
        )
        return response.content

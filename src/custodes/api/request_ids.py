"""Request ids: one per request, in its response, its log lines and its access line.

A client's ``X-Request-ID`` is kept when it is sane (1 to 128 characters of letters,
digits and ``._:-``, as a proxy or a caller's own trace would send); anything else is
replaced by a fresh id, so a header cannot inject text into the node's log. The id is
echoed in the response's ``X-Request-ID`` header, errors included, and is the
``request_id`` of every log record made while the request is served. With
``access_log`` on, each request ends with one ``custodes.access`` line (method, path,
status, duration, id), whatever the log level of the rest.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.api.logs import REQUEST_ID

__all__ = ["HEADER", "RequestIdMiddleware", "request_id_for"]

HEADER = "x-request-id"
_SANE = re.compile(r"[A-Za-z0-9._:-]{1,128}")

access_log = logging.getLogger("custodes.access")


def request_id_for(sent: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if sent is not None and _SANE.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


class RequestIdMiddleware:
    """Pure ASGI (no buffering), so kill-order streams pass through untouched."""

    def __init__(self, app: ASGIApp, *, access_log: bool = False) -> None:
        self.app, self._access_log = app, access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_for(_header(scope, HEADER.encode()))
        token = REQUEST_ID.set(request_id)  # seen by the threads this request hands work to
        started, status = time.perf_counter(), [500]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                headers = [*message.get("headers", ()), (HEADER.encode(), request_id.encode())]
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self._access_log:
                _log_access(scope, status[0], time.perf_counter() - started)
            REQUEST_ID.reset(token)


def _log_access(scope: Scope, status: int, seconds: float) -> None:
    fields: dict[str, Any] = {
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
    }
    access_log.info("%(method)s %(path)s %(status)d %(duration_ms).1f ms", fields, extra=fields)

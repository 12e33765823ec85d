"""The one place where a node's answers and transport failures become CustodesErrors.

* A node's error answer (``{"error": {"code", "message", "detail"}}``) becomes the
  CustodesError subclass its code names (``duplicate_entry`` → DuplicateEntry, …), or
  else the one its status names (404 → NotFound, 401/403 → AuthError, 400/413/422 →
  BadRequest, 503 with ``retry_after`` → Overloaded), keeping the node's code, message,
  status and detail. An answer that is not that shape keeps its status and says so.
* A connection that cannot be made (refused, DNS, timeout) becomes ``NodeUnreachable``
  with one line a person can act on; ``stale`` marks the one case (a kept-alive
  connection the node closed under the request) where an immediate retry is safe.
"""

from __future__ import annotations

from typing import Any

import httpx

from custodes.client.transport import is_stale_connection
from custodes.errors import AuthError, BadRequest, CustodesError, NotFound, Overloaded
from custodes.ledger.errors import (
    DuplicateEntry,
    EnvelopeError,
    IntegrityAlarm,
    NoteError,
    ProofError,
)

__all__ = ["NodeUnreachable", "error_from", "raise_for_error", "unreachable"]

_BY_CODE: dict[str, type[CustodesError]] = {
    cls.code: cls for cls in (DuplicateEntry, EnvelopeError, IntegrityAlarm, NoteError, ProofError)
}
_BY_STATUS: dict[int, type[CustodesError]] = {
    400: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    413: BadRequest,
    422: BadRequest,
}


class NodeUnreachable(CustodesError):
    """No answer from the node: refused, unknown host, timed out or dropped."""

    code = "node_unreachable"
    status = 503

    def __init__(self, message: str, *, url: str, stale: bool = False) -> None:
        super().__init__(message, detail={"url": url})
        self.stale = stale


def unreachable(url: str, exc: httpx.HTTPError) -> NodeUnreachable:
    """The one line for a node that did not answer ``exc`` at ``url``."""
    reason = str(exc) or type(exc).__name__
    return NodeUnreachable(
        f"cannot reach the node at {url}: {reason} (is `custodes serve` running?)",
        url=url,
        stale=is_stale_connection(exc),
    )


def _error_body(response: httpx.Response) -> dict[str, Any] | None:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(error, dict) or not isinstance(error.get("message"), str):
        return None
    return error


def error_from(response: httpx.Response) -> CustodesError:
    """The CustodesError a node's error answer describes (see the module docstring)."""
    status = response.status_code
    body = _error_body(response)
    if body is None:
        return CustodesError(f"the node answered HTTP {status}", status=status)
    code, message = str(body.get("code", "error")), str(body["message"])
    found = body.get("detail")
    detail: dict[str, Any] = found if isinstance(found, dict) else {}
    if status == 503 and isinstance(detail.get("retry_after"), int):
        error: CustodesError = Overloaded(message, retry_after=detail["retry_after"])
        error.code = code
    else:
        cls = _BY_CODE.get(code) or _BY_STATUS.get(status, CustodesError)
        error = cls(message, code=code)
    error.status, error.detail = status, dict(detail)
    return error


def raise_for_error(response: httpx.Response) -> None:
    """Raise what ``error_from`` makes of ``response`` unless it succeeded."""
    if response.status_code >= 400:
        raise error_from(response)

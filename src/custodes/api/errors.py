"""One exception handler, one JSON error shape: ``{"error": {"code", "message", "detail"}}``.

The single exception is tlog-witness's 409, whose body the standard fixes as
``text/x.tlog.size`` (the witness's stored size), so outside witnessing clients work.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from custodes.errors import CustodesError, Overloaded
from custodes.ledger.errors import WitnessConflict

__all__ = ["error_response", "install_error_handlers"]

log = logging.getLogger("custodes.api")


def error_response(exc: CustodesError) -> Response:
    if isinstance(exc, WitnessConflict):
        # Exactly ``text/x.tlog.size``: Starlette would append "; charset=utf-8" to a
        # text/* media type, and strict clients (sigsum's) refuse that form.
        return Response(
            f"{exc.stored_size}\n".encode(),
            status_code=409,
            headers={"content-type": "text/x.tlog.size"},
        )
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Overloaded) else {}
    if getattr(exc, "close_connection", False):  # refused unread: do not drain the body
        headers["Connection"] = "close"
    return JSONResponse(exc.to_json(), status_code=exc.status, headers=headers)


async def _custodes(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CustodesError)
    return error_response(exc)


async def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = error_response(CustodesError(str(exc.detail), code=code, status=exc.status_code))
    response.headers.update(exc.headers or {})  # e.g. the Allow header of a 405
    return response


async def _validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    message = f"invalid {'.'.join(first['loc'])}: {first['msg']}"
    return error_response(
        CustodesError(message, code="invalid_request", status=422, detail={"errors": errors})
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(
        CustodesError("the node hit an internal error; it has been logged", code="internal_error")
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(CustodesError, _custodes)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(Exception, _unexpected)

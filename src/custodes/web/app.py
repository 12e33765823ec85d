"""The dashboard as an app mounted at ``/ui`` on the node's app (docs/design/0031).

Around every page: the viewer's session is loaded (a bad cookie is a 401 page that
clears it), security headers are set (a strict Content-Security-Policy: only this
node's own styles, images and the one signing script), and any error is a page in the
dashboard's style with its code and request id, never a stack trace.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from custodes.errors import AuthError, CustodesError
from custodes.web import agent_page, orders, overview, redteam_pages, registry_pages, reports
from custodes.web.auth import (
    COOKIE,
    LOGIN_COOKIE,
    clear_session_cookie,
    form,
    load_session,
    node_of,
    set_login_cookie,
    set_session_cookie,
)
from custodes.web.render import STATIC, page

__all__ = ["create_web"]

log = logging.getLogger("custodes.web")

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_STATIC_TYPES = {".css": "text/css", ".js": "text/javascript", ".svg": "image/svg+xml"}

core = APIRouter()


class _Guard:
    """Security headers on every answer; an unexpected error becomes a plain 500 page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                own_csp = any(k.lower() == b"content-security-policy" for k, _ in headers)
                # A page with its own policy (a forensic report) keeps it; the rest get ours.
                message["headers"] = headers + [
                    h for h in _HEADERS if not (own_csp and h[0] == b"content-security-policy")
                ]
            await send(message)

        try:
            await self.app(scope, receive, guarded)
        except Exception:  # the page says what failed, the log says why
            log.exception("dashboard page failed: %s", scope.get("path"))
            if started:
                raise
            body = (
                b"<!doctype html><html lang=en><title>Error</title><main><h1>Something went "
                b"wrong</h1><p>The node could not build this page. Its log has the details."
                b"</p><p><a href=/ui/>Back to the overview</a></main></html>"
            )
            await guarded(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")],
                }
            )
            await guarded({"type": "http.response.body", "body": body})


def _error_page(request: Request, status: int, code: str, message: str) -> Response:
    response: Response
    try:
        response = page(
            request, "error.html", status=status, title="Error", code=code, message=message
        )
    except Exception:  # the error page itself must not fail
        log.exception("error page failed")
        response = Response(f"{status} {code}: {message}", status_code=status)
    if code in {"bad_session", "session_expired", "token_revoked", "token_expired"}:
        clear_session_cookie(request, response)
    return response


async def _custodes(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CustodesError)
    if exc.status >= 500:
        log.error("dashboard: %s", exc)
    return _error_page(request, exc.status, exc.code, str(exc))


async def _http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such page" if exc.status_code == 404 else str(exc.detail)
    return _error_page(request, exc.status_code, code, message)


async def _validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first.get("loc", ()))
    return _error_page(request, 422, "invalid_request", f"invalid {where}: {first.get('msg')}")


def create_web(parent: FastAPI) -> FastAPI:
    """The dashboard app; the parent's state holds the node once its lifespan started."""
    web = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    web.state.parent = parent

    @web.middleware("http")
    async def session(request: Request, call_next: Any) -> Response:
        request.state.session = None
        if not request.url.path.startswith("/ui/static/"):
            try:
                request.state.session = await run_in_threadpool(load_session, request)
            except AuthError as exc:
                return _error_page(request, 401, exc.code, str(exc))
        response: Response = await call_next(request)
        return response

    web.add_exception_handler(CustodesError, _custodes)
    web.add_exception_handler(HTTPException, _http)
    web.add_exception_handler(RequestValidationError, _validation)
    web.add_middleware(_Guard)
    web.include_router(core)
    for module in (overview, registry_pages, agent_page, orders, redteam_pages, reports):
        web.include_router(module.router)
    return web


@core.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The dashboard's own assets (styles, the signing script), shipped in the package."""
    asset = STATIC / name
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if "/" in name or name.startswith(".") or suffix not in _STATIC_TYPES or not asset.is_file():
        raise HTTPException(404)
    return FileResponse(
        str(asset), media_type=_STATIC_TYPES[suffix], headers={"Cache-Control": "max-age=300"}
    )


@core.get("/signin", include_in_schema=False)
def signin_form(request: Request, next: str = "/ui/") -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "signin.html", title="Sign in", next=_local(next), login_csrf=token)
    set_login_cookie(request, response, token)
    return response


def _local(target: str) -> str:
    """Only this dashboard's own pages after signing in (no open redirect)."""
    return target if target.startswith("/ui/") and not target.startswith("/ui//") else "/ui/"


@core.post("/signin", include_in_schema=False)
async def signin(request: Request) -> Response:
    fields = await form(request, login=True)
    token = fields.get("token", "").strip()
    if not token:
        raise AuthError("paste one of this node's API tokens (cst_...)", code="missing_token")
    cookie, opened = await run_in_threadpool(node_of(request).sessions.open, token)
    response = RedirectResponse(_local(fields.get("next", "/ui/")), status_code=303)
    max_age = max(1, int(opened.expires_at - time.time()))
    set_session_cookie(request, response, cookie, max_age)
    response.delete_cookie(LOGIN_COOKIE, path="/ui")
    return response


@core.post("/signout", include_in_schema=False)
async def signout(request: Request) -> Response:
    await form(request)
    cookie = request.cookies.get(COOKIE, "")
    await run_in_threadpool(node_of(request).sessions.end, cookie)
    response = RedirectResponse("/ui/", status_code=303)
    clear_session_cookie(request, response)
    return response

"""Sign-in, the session behind each page, CSRF on every form, and form bodies.

* Sign in with one of the node's API tokens: the node opens a session row standing on
  that token (custodes.registry.sessions) and sets ``custodes_session``: HttpOnly,
  SameSite=Strict, Path=/ui, Secure when the page is served over TLS.
* Every request with the cookie re-checks it: forged, ended, expired or standing on a
  revoked or expired token is refused with 401 and the cookie cleared; without the
  cookie the viewer is the public.
* Every POST carries the session's CSRF token (a hidden ``csrf`` field) and is refused
  with 403 without it; the sign-in form, before any session, carries a one-time
  double-submit token in its own SameSite=Strict cookie. A POST whose ``Origin`` names
  another site is refused too.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from custodes.errors import AuthError, BadRequest, CustodesError

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from custodes.node import Node
    from custodes.registry.sessions import Session

__all__ = [
    "COOKIE",
    "LOGIN_COOKIE",
    "MAX_FORM",
    "clear_session_cookie",
    "form",
    "load_session",
    "node_of",
    "require_session",
    "set_login_cookie",
    "set_session_cookie",
]

COOKIE = "custodes_session"
LOGIN_COOKIE = "custodes_login"
MAX_FORM = 64 * 1024


def node_of(request: Request) -> Node:
    node: Node = request.app.state.parent.state.node
    return node


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, value: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE,
        value,
        max_age=max_age,
        path="/ui",
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/ui", httponly=True, secure=_secure(request), samesite="strict"
    )


def set_login_cookie(request: Request, response: Response, token: str) -> None:
    """The sign-in form's double-submit token (before any session exists)."""
    response.set_cookie(
        LOGIN_COOKIE,
        token,
        max_age=900,
        path="/ui",
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )


def load_session(request: Request) -> Session | None:
    """The viewer's session (None: the public). Raises AuthError for a bad cookie; the
    caller is a thread (the session store reads the database)."""
    cookie = request.cookies.get(COOKIE)
    if cookie is None:
        return None
    return node_of(request).sessions.get(cookie)


def require_session(request: Request) -> Session:
    session: Session | None = getattr(request.state, "session", None)
    if session is None:
        raise AuthError("sign in with an API token to do this", code="missing_session")
    return session


def _same_origin(request: Request) -> None:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return  # no Origin (older browsers, curl): the CSRF token decides
    if urlsplit(origin).netloc != request.headers.get("host", request.url.netloc):
        raise CustodesError(
            "this form was posted from another site", code="cross_site_post", status=403
        )


async def form(request: Request, *, login: bool = False) -> dict[str, str]:
    """A POSTed form (urlencoded, at most 64 KiB), its CSRF token checked: the session's,
    or for the sign-in form the double-submit cookie's. Each field's first value."""
    _same_origin(request)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        raise BadRequest("send the form as application/x-www-form-urlencoded", status=415)
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_FORM:
            raise CustodesError("the form is larger than 64 KiB", code="too_large", status=413)
    try:
        fields = {k: v[0] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    except UnicodeDecodeError as exc:
        raise BadRequest("the form is not UTF-8", code="bad_form") from exc
    given = fields.get("csrf")
    if login:
        expected = request.cookies.get(LOGIN_COOKIE)
        ok = bool(given and expected and hmac.compare_digest(given, expected))
    else:
        session: Session | None = getattr(request.state, "session", None)
        ok = session is not None and session.csrf_ok(given)
        if session is None:
            raise AuthError("sign in with an API token to do this", code="missing_session")
    if not ok:
        raise CustodesError(
            "the form's CSRF token is missing or wrong; reload the page and try again",
            code="csrf",
            status=403,
        )
    return fields

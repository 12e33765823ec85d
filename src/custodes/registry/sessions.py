"""Dashboard sessions: a sign-in with an API token, kept as a row, ended with the token.

The browser holds ``cus_<secret>`` in an HttpOnly cookie; the node keeps only SHA-256 of
the secret, the token it stands on and a CSRF secret for the session's forms. Every
request re-checks the token (revoked or expired ends the session at once), so a session
never outlives or outranks the token it was opened with (docs/design/0031).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from custodes.errors import AuthError
from custodes.registry.principals import Principal, TokenStore
from custodes.registry.store import ui_sessions
from custodes.store.db import read_tx, write_tx

__all__ = ["SESSION_PREFIX", "SESSION_TTL", "Session", "SessionStore"]

SESSION_PREFIX = "cus_"
SESSION_TTL = 8 * 3600.0  # a working day, never longer than the token


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live session: who, with which token's scopes, its CSRF secret and expiry."""

    principal: Principal
    token_id: str
    csrf: str
    expires_at: float

    def csrf_ok(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(self.csrf, given)


class SessionStore:
    def __init__(
        self, engine: Engine, tokens: TokenStore, clock: Callable[[], float] = time.time
    ) -> None:
        self._engine = engine
        self._tokens = tokens
        self._clock = clock

    def open(self, token: str) -> tuple[str, Session]:
        """Sign in with an API token: the cookie value (returned once) and the session."""
        principal = self._tokens.authenticate(token)  # 401 for anything doubtful
        token_id = token.split("_")[1]
        expires = min(self._clock() + SESSION_TTL, self._tokens.expires_at(token_id))
        secret, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with write_tx(self._engine) as conn:
            conn.execute(
                insert(ui_sessions).values(
                    secret_hash=_hash(secret),
                    token_id=token_id,
                    principal_id=principal.id,
                    csrf=csrf,
                    created_at=self._clock(),
                    expires_at=expires,
                )
            )
        return SESSION_PREFIX + secret, Session(principal, token_id, csrf, expires)

    def get(self, cookie: str) -> Session:
        """The live session behind a cookie; AuthError (401) when forged, ended or expired,
        or when its token was revoked or expired since."""
        if not cookie.startswith(SESSION_PREFIX):
            raise AuthError("this is not a dashboard session; sign in again", code="bad_session")
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(ui_sessions).where(
                    ui_sessions.c.secret_hash == _hash(cookie.removeprefix(SESSION_PREFIX))
                )
            ).first()
        if row is None or row.ended_at is not None:
            raise AuthError("the session is not valid; sign in again", code="bad_session")
        if row.expires_at <= self._clock():
            raise AuthError("the session has expired; sign in again", code="session_expired")
        principal = self._tokens.by_id(row.token_id)  # revoked or expired: AuthError
        return Session(principal, row.token_id, row.csrf, row.expires_at)

    def end(self, cookie: str) -> None:
        """Sign out: the session ends for good (a copied cookie is refused from now on)."""
        with write_tx(self._engine) as conn:
            conn.execute(
                update(ui_sessions)
                .where(ui_sessions.c.secret_hash == _hash(cookie.removeprefix(SESSION_PREFIX)))
                .values(ended_at=self._clock())
            )

    def prune(self) -> int:
        """Forget sessions that ended or expired more than a day ago."""
        cutoff = self._clock() - 86400.0
        with write_tx(self._engine) as conn:
            done = conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at < cutoff))
        return int(done.rowcount or 0)

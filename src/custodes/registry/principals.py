"""Principals and their API tokens.

A token is ``cst_<token id>_<secret>``; the node keeps only SHA-256 of the secret, so a
database leak does not leak credentials. Tokens are scoped to one principal, expire and
can be revoked; they authenticate a caller, while the caller's own key signs what it
changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, insert, select, update

from custodes.errors import AuthError, NotFound
from custodes.registry.store import api_tokens, principals
from custodes.store.db import read_tx, write_tx

__all__ = ["DEFAULT_SCOPES", "Principal", "TokenStore"]

DEFAULT_SCOPES: dict[str, tuple[str, ...]] = {
    "regulator": ("registry:write", "orders:write", "read:private", "evals:write"),
    "operator": ("registry:write", "orders:write", "read:private"),
    "auditor": ("read:private", "evals:write"),
    "researcher": ("redteam:write",),
}


@dataclass(frozen=True)
class Principal:
    id: str
    role: str
    jurisdiction: str
    name: str
    keyid: str
    scopes: frozenset[str] = frozenset()

    def can(self, scope: str) -> bool:
        return scope in self.scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    def __init__(self, engine: Engine, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._clock = clock

    def principal(self, principal_id: str) -> Principal:
        with read_tx(self._engine) as conn:
            row = conn.execute(select(principals).where(principals.c.id == principal_id)).first()
        if row is None:
            raise NotFound(f"no principal {principal_id} is registered", code="unknown_principal")
        return Principal(row.id, row.role, row.jurisdiction, row.name, row.keyid)

    def issue(
        self, principal_id: str, scopes: Sequence[str] | None, ttl: float
    ) -> dict[str, object]:
        """Create a token; the secret is returned once and never stored."""
        principal = self.principal(principal_id)
        granted = tuple(scopes) if scopes is not None else DEFAULT_SCOPES[principal.role]
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        now = self._clock()
        with write_tx(self._engine) as conn:
            conn.execute(
                insert(api_tokens).values(
                    token_id=token_id,
                    principal_id=principal_id,
                    secret_hash=_hash(secret),
                    scopes=json.dumps(sorted(granted)),
                    expires_at=now + ttl,
                    created_at=now,
                )
            )
        return {
            "token": f"cst_{token_id}_{secret}",
            "token_id": token_id,
            "principal": principal_id,
            "scopes": sorted(granted),
            "expires_at": now + ttl,
        }

    def revoke(self, token_id: str) -> None:
        with write_tx(self._engine) as conn:
            done = conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_id == token_id)
                .values(revoked_at=self._clock())
            )
        if done.rowcount != 1:
            raise NotFound(f"no token {token_id}", code="unknown_token")

    def expires_at(self, token_id: str) -> float:
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(api_tokens.c.expires_at).where(api_tokens.c.token_id == token_id)
            ).first()
        if row is None:
            raise AuthError("the API token is not valid", code="bad_token")
        return float(row.expires_at)

    def by_id(self, token_id: str) -> Principal:
        """The principal behind a token already authenticated once (a dashboard session's):
        401 if it has been revoked or has expired since."""
        with read_tx(self._engine) as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        return self._check(row)

    def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; 401 for anything doubtful."""
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != "cst" or not token_id or not secret:
            raise AuthError("the bearer token is not a Custodes API token", code="bad_token")
        with read_tx(self._engine) as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_id == token_id)).first()
        if row is None or not hmac.compare_digest(row.secret_hash, _hash(secret)):
            raise AuthError("the API token is not valid", code="bad_token")
        return self._check(row)

    def _check(self, row: Any) -> Principal:
        if row is None:
            raise AuthError("the API token is not valid", code="bad_token")
        if row.revoked_at is not None:
            raise AuthError("the API token was revoked", code="token_revoked")
        if row.expires_at <= self._clock():
            raise AuthError("the API token has expired; ask for a new one", code="token_expired")
        principal = self.principal(row.principal_id)
        return Principal(**{**principal.__dict__, "scopes": frozenset(json.loads(row.scopes))})

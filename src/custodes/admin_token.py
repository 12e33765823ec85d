"""The node's admin token: where it comes from and how a presented token is checked.

In order of precedence: ``CUSTODES_ADMIN_TOKEN`` when set; else the token ``custodes
init`` generated, of which only the SHA-256 is kept (``admin-token.sha256`` in the data
directory; the token itself is shown once); else the publicly known development token,
which ``custodes serve`` accepts only on a loopback address and production refuses.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from custodes.config import DEV_ADMIN_TOKEN, Settings
from custodes.errors import ConfigError
from custodes.ledger.keys import write_secret

__all__ = ["AdminToken", "generate_admin_token"]

_FILE = "admin-token.sha256"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class AdminToken:
    """The digest a presented admin token must match, and where it came from."""

    digest: str
    source: str  # "environment", "init" or "development"

    @classmethod
    def for_settings(cls, settings: Settings) -> AdminToken:
        if "admin_token" in settings.model_fields_set:
            return cls(_digest(settings.admin_token), "environment")
        path = settings.data_dir / _FILE
        if path.exists():
            try:
                digest = path.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
            if len(digest) != 64:
                raise ConfigError(f"{path} does not hold a SHA-256 digest; run custodes init")
            return cls(digest, "init")
        if settings.environment == "production":
            raise ConfigError(
                "no admin token for production: run `custodes init` (it generates one) or "
                "set CUSTODES_ADMIN_TOKEN to a secret token"
            )
        return cls(_digest(DEV_ADMIN_TOKEN), "development")

    @property
    def is_development(self) -> bool:
        return self.source == "development"

    def matches(self, token: str) -> bool:
        return hmac.compare_digest(_digest(token), self.digest)


def generate_admin_token(data_dir: Path) -> str | None:
    """Create a random admin token for a new node and keep only its digest; return the
    token (to be shown once), or None if the node already has one."""
    path = data_dir / _FILE
    if path.exists():
        return None
    token = secrets.token_urlsafe(32)
    write_secret(path, _digest(token))
    return token

"""The root exception and the one JSON error shape.

Every error Custodes raises on purpose is a ``CustodesError``. Each carries a machine
code, a sentence a person can act on, an HTTP status for the API boundary, and, for
integrity failures, the evidence (``detail``)::

    CustodesError
    ├── ConfigError            settings or key files a person must fix       (500)
    ├── StoreError             the database refused or is unreachable        (503)
    │                          (a reason and what to check; the driver's text is logged)
    ├── NotFound               an index, tile or record that does not exist  (404)
    ├── AuthError              missing or wrong credentials                  (401/403)
    ├── BadRequest             input that cannot be parsed or is out of range (400/413/422)
    ├── Overloaded             back-pressure: try again later                 (503)
    └── ledger.LedgerError     (see custodes.ledger.errors)
        ├── ProofError         a Merkle proof does not verify                 (422)
        ├── NoteError          a signed note, checkpoint or cosignature is invalid (422/403)
        ├── EnvelopeError      a DSSE envelope is malformed or wrongly signed (422/403)
        ├── WitnessConflict    the witness holds a different size             (409)
        ├── DuplicateEntry     a replayed entry, or a reused idempotency key  (409)
        ├── IntegrityAlarm     stored history differs from what was signed    (503)
        └── VerificationError  a log failed client-side verification          (exit 1)

The HTTP shape, produced by one handler in ``custodes.api``::

    {"error": {"code": "bad_signature", "message": "...", "detail": {...}}}
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthError",
    "BadRequest",
    "ConfigError",
    "CustodesError",
    "NotFound",
    "Overloaded",
    "StoreError",
]


class CustodesError(Exception):
    """Root of every error Custodes raises on purpose."""

    code: str = "error"
    status: int = 500

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.detail: dict[str, Any] = detail or {}

    def to_json(self) -> dict[str, Any]:
        """The project's one error shape."""
        return {"error": {"code": self.code, "message": self.message, "detail": self.detail}}


class ConfigError(CustodesError):
    code = "config_error"
    status = 500


class StoreError(CustodesError):
    code = "store_unavailable"
    status = 503


class NotFound(CustodesError):
    code = "not_found"
    status = 404


class AuthError(CustodesError):
    code = "unauthorized"
    status = 401


class BadRequest(CustodesError):
    code = "bad_request"
    status = 400


class Overloaded(CustodesError):
    code = "overloaded"
    status = 503

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message, detail={"retry_after": retry_after})
        self.retry_after = retry_after

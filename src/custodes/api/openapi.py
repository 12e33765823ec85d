"""What the OpenAPI document says the node answers: every error status, in the one shape.

Routes read raw bodies (signed entries must not be re-encoded), so FastAPI cannot see
their request bodies: ``ENTRIES_BODY``, ``ENVELOPE_BODY`` and ``CHECKPOINT_BODY`` declare
them. ``errors(...)`` declares the error statuses a route can answer, each with the one
error body (``{"error": {"code", "message", "detail"}}``); a 503 also carries
Retry-After when it is back-pressure. Every route that touches the database can answer
503, so ``errors`` always adds it. The witness's 409 is the one non-JSON error:
C2SP tlog-witness fixes it as the stored size in ``text/x.tlog.size``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = [
    "BINARY",
    "CHECKPOINT_BODY",
    "ENTRIES_BODY",
    "ENVELOPE_BODY",
    "PLAIN_TEXT",
    "REGISTRY_CHANGE_BODY",
    "ErrorBody",
    "bearer",
    "error_schemas",
    "errors",
    "link_to_entry",
]


class ErrorInfo(BaseModel):
    code: str = Field(description="a stable, machine-readable reason, e.g. bad_signature")
    message: str = Field(description="a sentence a person can act on")
    detail: dict[str, Any] = Field(description="evidence and specifics (may be empty)")


class ErrorBody(BaseModel):
    """The one JSON error shape of every error the node answers."""

    error: ErrorInfo


_MEANING = {
    400: "the body or a parameter cannot be parsed",
    401: "no credentials, or credentials in the wrong form",
    403: "the credentials or signatures do not allow this",
    404: "no such record, entry, tile or proof",
    409: "conflicts with what is already recorded",
    413: "the body, batch or entry is too large",
    422: "well-formed, but not valid",
    503: "the database is unavailable, or back-pressure (retry after Retry-After seconds)",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "seconds to wait before retrying (back-pressure only)",
        "schema": {"type": "integer"},
    }
}


_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}


def error_schemas() -> dict[str, Any]:
    """The error body's component schemas (``ErrorBody`` and what it refers to)."""
    schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
    nested = schema.pop("$defs", {})
    return {**nested, "ErrorBody": schema}


def errors(*statuses: int, witness_conflict: bool = False) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that can answer ``statuses`` (and 503).

    The content is spelled out (not ``model=``): FastAPI would give a model the route's
    own media type, and a text route's errors are JSON all the same.
    """
    answers: dict[int | str, dict[str, Any]] = {
        status: {"description": _MEANING[status], "content": _ERROR_CONTENT}
        for status in sorted({*statuses, 503})
    }
    answers[503]["headers"] = _RETRY_AFTER
    if witness_conflict:
        answers[409] = {
            "description": "the witness holds a different size for this log (C2SP tlog-witness)",
            "content": {"text/x.tlog.size": {"schema": {"type": "string"}}},
        }
    return answers


_ENVELOPE_SCHEMA: dict[str, Any] = {
    "title": "DSSE envelope",
    "description": "a DSSE v1 envelope as RFC 8785 canonical JSON; payload and sig are "
    "standard padded base64; at most 65,535 bytes",
    "type": "object",
    "required": ["payload", "payloadType", "signatures"],
    "additionalProperties": False,
    "properties": {
        "payload": {"type": "string", "contentEncoding": "base64"},
        "payloadType": {"type": "string", "minLength": 1},
        "signatures": {
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": {
                "type": "object",
                "required": ["keyid", "sig"],
                "additionalProperties": False,
                "properties": {
                    "keyid": {"type": "string", "minLength": 1},
                    "sig": {"type": "string", "contentEncoding": "base64"},
                },
            },
        },
    },
}


def _json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


ENVELOPE_BODY = _json_body(_ENVELOPE_SCHEMA)
# A registry change: the envelope alone, or with the clear text of the private fields it
# commits to (checked against the commitment, kept beside the log, never logged).
REGISTRY_CHANGE_BODY = _json_body(
    {
        "title": "Registry change",
        "oneOf": [
            _ENVELOPE_SCHEMA,
            {
                "type": "object",
                "required": ["envelope", "private"],
                "additionalProperties": False,
                "properties": {
                    "envelope": _ENVELOPE_SCHEMA,
                    "private": {
                        "type": "object",
                        "required": ["salt", "fields"],
                        "properties": {
                            "salt": {"type": "string", "description": "base64url, >= 128 bits"},
                            "fields": {"type": "object"},
                        },
                    },
                },
            },
        ],
    }
)
ENTRIES_BODY = _json_body(
    {
        "oneOf": [
            _ENVELOPE_SCHEMA,
            {
                "title": "batch",
                "type": "object",
                "required": ["entries"],
                "additionalProperties": False,
                "properties": {"entries": {"type": "array", "items": _ENVELOPE_SCHEMA}},
            },
        ]
    }
)
CHECKPOINT_BODY = {
    "requestBody": {
        "required": True,
        "description": "C2SP tlog-witness add-checkpoint: 'old <size>', optional consistency "
        "proof lines (base64), an empty line, then the signed checkpoint note",
        "content": {"text/plain": {"schema": {"type": "string"}}},
    }
}
PLAIN_TEXT = {"content": {"text/plain": {"schema": {"type": "string"}}}}
BINARY = {
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
}


def link_to_entry(pointer: str) -> dict[str, Any]:
    """An OpenAPI link from an answer naming a log index to ``GET /api/v1/entries/{index}``."""
    return {
        "links": {
            "ReadTheEntry": {
                "operationId": "get_entry",
                "parameters": {"index": f"$response.body#{pointer}"},
            }
        }
    }


def bearer(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes a bearer token (read from the header)."""
    return {**(extra or {}), "security": [{"bearer": []}]}

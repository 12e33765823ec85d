"""What the OpenAPI document says the node answers, and what it takes.

Routes read raw bodies (signed entries must not be re-encoded), so FastAPI cannot see
their request bodies: ``ENTRIES_BODY``, ``ENVELOPE_BODY``, ``REGISTRY_CHANGE_BODY``,
``CHECKPOINT_BODY``, ``signed_body(payload_type, signer)`` and ``model_body(component)``
declare them, referring to the record schemas of ``custodes.api.openapi_records``.
``errors(...)`` declares the error statuses a route can answer, each with the one error
body (``{"error": {"code", "message", "detail"}}``); a 503 also carries Retry-After when
it is back-pressure. Every route that touches the database can answer 503, so
``errors`` always adds it. The witness's 409 is the one non-JSON error: C2SP
tlog-witness fixes it as the stored size in ``text/x.tlog.size``.

Security: ``bearer`` (a principal's API token), ``admin_token`` (the node's admin
token), ``optional_token`` (public, more with a token); a route that declares none is
public. ``complete`` adds the components and schemes to FastAPI's document.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from custodes.api.openapi_records import REF, record_schemas, signed_by
from custodes.ledger.payloads import DECISION_TYPE
from custodes.registry.service import REGISTRY_TYPE

__all__ = [
    "BINARY",
    "CHECKPOINT_BODY",
    "CHECKPOINT_TEXT",
    "ENTRIES_BODY",
    "ENVELOPE_BODY",
    "PLAIN_TEXT",
    "REGISTRY_CHANGE_BODY",
    "SECURITY_SCHEMES",
    "ErrorBody",
    "admin_token",
    "bearer",
    "complete",
    "error_schemas",
    "errors",
    "link_to_entry",
    "model_body",
    "optional_token",
    "signed_answer",
    "signed_body",
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
    410: "the clear text was erased on a legal request (the proofs stay valid)",
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


_ENVELOPE = {"$ref": REF.format(model="DsseEnvelope")}


def _json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    body = {"required": True, "content": {"application/json": {"schema": schema}}}
    return {"requestBody": {**body, "description": description} if description else body}


def signed_body(payload_type: str, signer: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is one DSSE envelope of ``payload_type``."""
    return _json_body(signed_by(payload_type, signer))


def signed_answer(payload_type: str, signer: str) -> dict[str, Any]:
    """A ``responses`` entry: the route answers with a DSSE envelope of ``payload_type``."""
    schema = signed_by(payload_type, signer)
    content = {"application/json": {"schema": schema}}
    return {"description": schema["description"], "content": content}


def model_body(component: str) -> dict[str, Any]:
    """``openapi_extra`` for a route whose body is one of the record components."""
    return _json_body({"$ref": REF.format(model=component)})


ENVELOPE_BODY = _json_body(_ENVELOPE)
# A registry change: the envelope alone, or with the clear text of the private fields it
# commits to (checked against the commitment, kept beside the log, never logged).
REGISTRY_CHANGE_BODY = _json_body(
    {
        "title": "Registry change",
        "oneOf": [
            signed_by(REGISTRY_TYPE, "the acting principal's registered key"),
            {
                "type": "object",
                "required": ["envelope", "private"],
                "additionalProperties": False,
                "properties": {
                    "envelope": signed_by(REGISTRY_TYPE, "the acting principal's registered key"),
                    "private": {"$ref": REF.format(model="Opening")},
                },
            },
        ],
    },
    "the signed change alone, or with the clear text of the private fields it commits to "
    "(salt and fields: checked against the commitment, kept beside the log, never logged)",
)
ENTRIES_BODY = _json_body(
    {
        "oneOf": [
            signed_by(DECISION_TYPE, "the agent's registered key"),
            {
                "title": "batch",
                "type": "object",
                "required": ["entries"],
                "additionalProperties": False,
                "properties": {
                    "entries": {
                        "type": "array",
                        "items": signed_by(DECISION_TYPE, "the agent's registered key"),
                    }
                },
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
CHECKPOINT_TEXT = {"content": {"text/plain": {"schema": {"$ref": REF.format(model="Checkpoint")}}}}
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
    """``openapi_extra`` for a route that takes a principal's API token."""
    return {**(extra or {}), "security": [{"bearer": []}]}


def admin_token(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a route that takes the node's admin token."""
    return {**(extra or {}), "security": [{"adminToken": []}]}


def optional_token(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """``openapi_extra`` for a public read that shows more to a principal with a token."""
    return {**(extra or {}), "security": [{}, {"bearer": []}]}


SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an API token issued to a regulator, auditor, operator or researcher by "
        "the node's admin (POST /api/v1/admin/tokens); its secret is shown once",
    },
    "adminToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "the node's admin token: CUSTODES_ADMIN_TOKEN when set, else the token "
        "`custodes init` printed once (the data directory keeps only its SHA-256); a node on "
        "loopback without either accepts the development token custodes-dev-admin-token",
    },
}
_ERROR_REF = "#/components/schemas/ErrorBody"
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")


def complete(document: dict[str, Any]) -> dict[str, Any]:
    """FastAPI's document plus what routes declare by hand: records, schemes, error bodies.

    An operation that declares no ``security`` is public (``[]``). Every 4xx and 5xx
    answer gets the one error body (FastAPI's own 422 schema describes an answer this
    node never gives), except the witness's C2SP 409.
    """
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_ERRORS:
        schemas.pop(name, None)
    schemas.update(record_schemas())
    schemas.update(error_schemas())
    components["securitySchemes"] = SECURITY_SCHEMES
    for operation in _operations(document):
        operation.setdefault("security", [])
        for status, answer in operation.get("responses", {}).items():
            if str(status)[0] in "45":
                _error_content(answer)
    return document


def _operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    methods = ("get", "put", "post", "delete", "patch", "head", "options")
    return [
        op
        for item in document.get("paths", {}).values()
        for method, op in item.items()
        if method in methods
    ]


def _error_content(answer: dict[str, Any]) -> None:
    content = answer.get("content", {})
    if "text/x.tlog.size" in content:
        return
    answer["content"] = _ERROR_CONTENT

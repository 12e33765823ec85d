"""The red-teaming service's refusals: a 4xx in the project's error shape, nothing written.

``parse_body`` turns a body that does not validate into a 422 listing (at most ten)
problems by field; the others name the status a refusal gets.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ValidationError

from custodes.errors import AuthError, BadRequest
from custodes.redteam.models import DISCLOSURE_ID

__all__ = ["conflict", "forbidden", "parse_body", "unprocessable", "vulnerability_id"]


def parse_body(model: type[BaseModel], data: Any, what: str) -> Any:
    try:
        if isinstance(data, bytes | str):
            return model.model_validate_json(data)
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        raise BadRequest(
            f"not a valid {what}: " + "; ".join(problems),
            code="invalid_payload",
            status=422,
            detail={"problems": problems},
        ) from None


def conflict(message: str, code: str) -> BadRequest:
    return BadRequest(message, code=code, status=409)


def unprocessable(message: str, code: str, **detail: Any) -> BadRequest:
    return BadRequest(message, code=code, status=422, detail=detail)


def forbidden(message: str, code: str) -> AuthError:
    return AuthError(message, code=code, status=403)


def vulnerability_id(objects: list[dict[str, Any]]) -> str:
    """The id of the one vulnerability a TAXII report holds (UUIDv4), or 422."""
    found = [o.get("id", "") for o in objects if o.get("type") == "vulnerability"]
    if len(found) != 1 or not re.fullmatch(DISCLOSURE_ID, str(found[0])):
        raise unprocessable(
            "a report over TAXII holds exactly one vulnerability, with a UUIDv4 id",
            "invalid_stix",
        )
    return str(found[0])

"""A principal's act as the node takes it: ``{"envelope", "opening"}`` (docs/design/0029).

The ``RedteamAct`` (public metadata and a salted commitment to the body) is signed with
the principal's key; the opening (the salt and the clear body) travels beside it. The
SDK (``custodes.sdk.redteam``) and the client use these.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.redteam.models import REDTEAM_TYPE, RedteamAct, act_commitment

__all__ = ["act_request", "new_disclosure"]


def new_disclosure() -> str:
    return f"vulnerability--{uuid.uuid4()}"


def act_request(
    op: str,
    disclosure: str,
    body: BaseModel | Mapping[str, Any],
    *,
    key: EnvelopeSigner,
    actor: str,
    tlp: str,
    at: datetime | None = None,
) -> dict[str, Any]:
    """``{"envelope", "opening"}`` for ``op`` on ``disclosure``, signed with ``key``."""
    clear = (
        body.model_dump(mode="json", exclude_none=True)
        if isinstance(body, BaseModel)
        else dict(body)
    )
    salt = secrets.token_urlsafe(16)
    act = RedteamAct.model_validate(
        {
            "op": op,
            "disclosure": disclosure,
            "tlp": tlp,
            "content": act_commitment(salt, clear),
            "actor": actor,
            "at": at or datetime.now(UTC),
        }
    )
    envelope = sign_envelope(REDTEAM_TYPE, act.model_dump_json().encode(), [key])
    return {"envelope": envelope.to_json(), "opening": {"salt": salt, "body": clear}}

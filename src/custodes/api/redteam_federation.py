"""Red-teaming objects between nodes: deliveries pushed here, pulls answered (0029).

Both take a DSSE envelope signed by the calling node's entry key (the roster's); no
bearer token. Refusals use the project's error shape and store nothing.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from custodes.api.bodies import body_gate, read_body
from custodes.api.deps import get_node
from custodes.api.openapi import errors
from custodes.errors import BadRequest
from custodes.federation.redteam_sync import RedteamSync

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/federation/redteam", tags=["federation"])
_PULL_LIMIT = 16 * 1024


def _sync(request: Request) -> RedteamSync:
    sync: RedteamSync = request.app.state.redteam_sync
    return sync


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the body is not JSON: {exc}", code="invalid_json") from exc


async def _body(request: Request, limit: int) -> Any:
    raw = await read_body(request, limit)
    return await body_gate(request).run(_loads, raw, heavy=len(raw) > _PULL_LIMIT)


@router.post(
    "/deliveries",
    responses=errors(400, 403, 409, 413, 422),
    summary="Receive red-teaming STIX objects a peer's node pushes (its own, to this party)",
)
async def receive_delivery(request: Request) -> dict[str, Any]:
    """A DSSE envelope of `application/vnd.custodes.redteam-delivery+json` signed by the
    sending party's node entry key: `{v, message_id, from, to, sent_at, objects: [{object,
    audience, disclosure}]}`. Every object must be the sender's own (an id held here from
    another owner is refused, 409), one this party may hold under its audience (else 403),
    and valid STIX 2.1 (else 422). All are stored in one transaction, or none; a
    delivery sent twice stores nothing new (`stored` counts what was new)."""
    body = await _body(request, get_node(request).settings.max_body_bytes)
    answer: dict[str, Any] = await run_in_threadpool(_sync(request).receiver.receive, body)
    return answer


@router.post(
    "/pull",
    responses=errors(400, 403, 413, 422),
    summary="Answer a peer node's pull: this node's own objects it is entitled to",
)
async def answer_pull(request: Request) -> dict[str, Any]:
    """A DSSE envelope of `application/vnd.custodes.redteam-pull+json` signed by the
    asking party's node entry key: `{v, from, to, after, at}` (`at` within two minutes of
    this node's clock). The answer is a signed delivery (as pushed) of this node's own
    objects after seq `after` that the asking party may hold, with `reached` (the seq
    to ask after next) and `more`."""
    body = await _body(request, _PULL_LIMIT)
    answer: dict[str, Any] = await run_in_threadpool(_sync(request).answer_pull, body)
    return answer

"""POST /api/v1/entries (one envelope or {"entries": [...]}) and GET by index."""

from __future__ import annotations

import base64
import time
from functools import partial
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from custodes.api.bodies import BodyLimit, body_gate, parse_entries, read_body
from custodes.api.deps import get_node
from custodes.api.openapi import ENTRIES_BODY, errors, link_to_entry
from custodes.errors import NotFound
from custodes.ledger.tiles import MAX_ENTRY_SIZE
from custodes.store.db import read_tx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["ledger"])


@router.post(
    "/entries",
    summary="Append signed entries",
    description=(
        'Body: one DSSE envelope, or {"entries": [envelope, ...]}, as RFC 8785 canonical '
        "JSON. Answers with the assigned indices once they are durable. All or nothing: "
        "one bad entry rejects the batch and nothing is written."
    ),
    responses={200: link_to_entry("/indices/0"), **errors(400, 403, 409, 413, 422)},
    openapi_extra=ENTRIES_BODY,
)
async def append_entries(request: Request) -> Response:
    node = get_node(request)
    settings, gate = node.settings, body_gate(request)
    limit = BodyLimit(min(MAX_ENTRY_SIZE, settings.max_body_bytes), settings.max_body_bytes)
    async with gate.slot() as slot:
        raw = await read_body(request, limit, slot)
        started = time.perf_counter()
        # A large batch's parsing and checks hold the GIL for long: one batch at a time.
        objs = await gate.run(parse_entries, raw, settings.max_batch_entries, heavy=slot.claimed)
        prepared = await gate.run(node.log.prepare, objs, heavy=slot.claimed)
        # Waiting for the commit needs no CPU: the next batch is verified meanwhile,
        # and the sequencer commits the batches waiting by then together.
        indices = await gate.run(partial(node.log.sequence, prepared, started=started))
    return Response(orjson.dumps({"indices": indices}), media_type="application/json")


@router.get(
    "/entries/{index}",
    summary="Read one sequenced entry",
    operation_id="get_entry",
    responses=errors(404, 422),
)
def get_entry(index: Annotated[int, Path(ge=0)], request: Request) -> dict[str, Any]:
    """One sequenced entry as logged (a DSSE envelope), with its leaf hash (RFC 6962,
    base64). Public: entries hold only what may be published (private fields are
    salted commitments)."""
    node = get_node(request)
    if index >= node.store.sequenced_size():
        raise NotFound(f"no entry has index {index}", code="entry_not_found")
    with read_tx(node.engine) as conn:
        data = node.store.entry_data(conn, index, index + 1)
        leaf = node.store.leaf_hashes(conn, index, index + 1)
    if not data:
        raise NotFound(f"no entry has index {index}", code="entry_not_found")
    return {
        "index": index,
        "entry": orjson.loads(data[0]),
        "leaf_hash": base64.b64encode(leaf[0]).decode(),
    }

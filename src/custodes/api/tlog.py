"""C2SP tlog-tiles reads under /log/ and tlog-witness under /witness/.

Tiles and entry bundles, full or partial, never change once served (a partial tile of
width W is always the first W hashes), so every tile is served as immutable.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from custodes.api.bodies import read_body
from custodes.api.deps import get_node
from custodes.api.openapi import BINARY, CHECKPOINT_BODY, CHECKPOINT_TEXT, PLAIN_TEXT, errors
from custodes.errors import NotFound
from custodes.ledger.tiles import (
    TILE_WIDTH,
    encode_entry_bundle,
    parse_tile_path,
    tile_from_hashes,
    tile_width,
)
from custodes.store.db import read_tx

__all__ = ["log_router", "witness_router"]

log_router = APIRouter(prefix="/log", tags=["tlog-tiles"])
witness_router = APIRouter(prefix="/witness", tags=["tlog-witness"])

_IMMUTABLE = {"Cache-Control": "public, max-age=31536000, immutable"}
_MAX_WITNESS_BODY = 64 * 1024


@log_router.get(
    "/checkpoint",
    response_class=PlainTextResponse,
    summary="The latest checkpoint (C2SP signed note), with its cosignatures",
    responses={200: CHECKPOINT_TEXT, **errors(404)},
)
def checkpoint(request: Request) -> Response:
    """The newest checkpoint this node signed, as a C2SP signed note, followed by the
    witnesses' cosignatures it holds. Verify it with the log key from GET /api/v1/node
    (`custodes log verify`). Public, never cached."""
    note = get_node(request).served_checkpoint()
    if note is None:
        raise NotFound("the log has no checkpoint yet", code="no_checkpoint")
    return Response(
        note, media_type="text/plain; charset=utf-8", headers={"Cache-Control": "no-cache"}
    )


@log_router.get(
    "/tile/{path:path}",
    summary="A hash tile or entry bundle (C2SP tlog-tiles)",
    response_class=Response,
    responses={200: BINARY, **errors(400, 404, 422)},
)
def tile(path: str, request: Request) -> Response:
    """tile/<L>/<N>[.p/<W>] (hashes) or tile/entries/<N>[.p/<W>] (entry bundles), as C2SP
    tlog-tiles specifies; immutable once served. Public."""
    node = get_node(request)
    ref = parse_tile_path(f"tile/{path}")
    with read_tx(node.engine) as conn:
        size, _ = node.store.tree_size(conn)
        level = ref.level  # entry bundles sit beside level-0 tiles
        available = tile_width(level, ref.index, size)
        if available < ref.width:
            raise NotFound(
                f"tile {path} is not available at tree size {size}", code="tile_not_found"
            )
        start = ref.index * TILE_WIDTH
        if ref.is_entries:
            body = encode_entry_bundle(node.store.entry_data(conn, start, start + ref.width))
        else:
            body = tile_from_hashes(node.store.tile_hashes(conn, level, start, start + ref.width))
    return Response(body, media_type="application/octet-stream", headers=_IMMUTABLE)


@witness_router.post(
    "/add-checkpoint",
    response_class=PlainTextResponse,
    summary="Cosign a checkpoint of a log this node witnesses (C2SP tlog-witness)",
    responses={200: PLAIN_TEXT, **errors(400, 403, 404, 413, 422, witness_conflict=True)},
    openapi_extra=CHECKPOINT_BODY,
)
async def add_checkpoint(request: Request) -> Response:
    """C2SP tlog-witness: a peer's log submits its new checkpoint with a consistency
    proof from the size this witness last cosigned; the answer is the cosignature line.
    Only logs this node is configured to witness; 409 (text/x.tlog.size) when the
    witness holds another size."""
    node = get_node(request)
    body = await read_body(request, _MAX_WITNESS_BODY)
    lines = await run_in_threadpool(node.witness.add_checkpoint, body)
    return PlainTextResponse(lines)

"""The alliance roster and finality over HTTP (docs/design/0023).

``GET /api/v1/federation/roster`` (the version in force, or ``?version=N``), ``GET
.../roster/chain`` (every version this node applied), ``POST .../roster`` (apply the
next version: anyone may send it, the members' signatures are the authority),
``GET .../checkpoint`` (this node's newest checkpoint, its cosigners, and whether it is
final) and ``GET .../policy`` (the witness policy in C2SP tlog-policy form).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse

from custodes.api.bodies import read_body
from custodes.api.deps import get_node
from custodes.api.openapi import errors
from custodes.errors import BadRequest, NotFound
from custodes.federation.finality import is_final, tlog_policy
from custodes.federation.roster import SignedRoster
from custodes.node import Node

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/federation", tags=["federation"])
MAX_ROSTER_BODY = 256 * 1024


def _in_force(node: Node) -> SignedRoster:
    roster = node.federation.roster
    if roster is None:
        raise NotFound(
            "this node is not part of an alliance (no roster); set CUSTODES_ROSTER_FILE",
            code="no_roster",
        )
    return roster


def _version(version: int, digest: str, document: dict[str, Any], index: int) -> dict[str, Any]:
    return {"version": version, "digest": digest, "index": index, "document": document}


@router.get(
    "/roster", summary="The alliance roster in force (or one version)", responses=errors(404)
)
def get_roster(request: Request, version: int | None = None) -> dict[str, Any]:
    """The roster document in force with its version, digest and the log index of its
    entry; ``?version=N`` for one version this node applied. Public."""
    node = get_node(request)
    roster = _in_force(node)
    wanted = roster.version if version is None else version
    stored = node.roster_log.version(wanted)
    if stored is None:
        if version is None:  # in force but not yet logged (the node is starting)
            return _version(roster.version, roster.digest(), roster.document, -1)
        raise NotFound(f"this node holds no roster version {version}", code="unknown_version")
    return _version(*stored)


@router.get("/roster/chain", summary="Every roster version this node applied", responses=errors())
def get_chain(request: Request) -> dict[str, Any]:
    """Every version from the genesis, oldest first: enough to verify the roster in force
    from the genesis offline (``custodes federation roster verify``). Public."""
    return {"versions": [_version(*v) for v in get_node(request).roster_log.chain()]}


@router.post(
    "/roster",
    summary="Apply the next roster version",
    responses=errors(400, 409, 413, 422),
    status_code=201,
)
async def post_roster(request: Request) -> Response:
    """Apply roster version N+1 signed by a quorum of version N's members and of its own.
    201 when applied (logged on this node's log and forwarded to every peer); 200 with
    ``already_applied`` for the version held; 409 ``roster_fork`` for another document
    of a version held; 422 ``roster_version`` (a skipped version), ``roster_quorum`` (too
    few signatures), ``roster_expired`` or ``roster_invalid``. Nothing is written on a
    refusal. Anyone may send it: the signatures are the authority."""
    node = get_node(request)
    raw = await read_body(request, MAX_ROSTER_BODY)
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"the roster is not JSON: {exc}", code="malformed_json") from exc
    applied = await run_in_threadpool(node.roster_log.apply, document)
    body = {
        "status": applied.status,
        "version": applied.roster.version,
        "digest": applied.roster.digest(),
        "index": applied.index,
    }
    return JSONResponse(body, status_code=201 if applied.status == "applied" else 200)


@router.get(
    "/checkpoint", summary="This node's newest checkpoint and its finality", responses=errors(404)
)
def get_checkpoint(request: Request) -> dict[str, Any]:
    """The newest checkpoint with every cosignature collected, which cosigners are
    members, the quorum k (more than two thirds of the members' witnesses, this node's
    own included), whether it is final, and the newest final size. Public."""
    node = get_node(request)
    roster = _in_force(node)
    stored = node.store.checkpoint()
    if stored is None:
        raise NotFound("this node has signed no checkpoint yet", code="no_checkpoint")
    note = _with_cosignatures(node, stored.size, stored.note)
    result = is_final(note, node.settings.jurisdiction, roster)
    return {
        "checkpoint": note.decode(),
        "size": stored.size,
        "root_hash": base64.b64encode(stored.root).decode(),
        "cosigners": list(result.cosigners),
        "quorum": result.needed,
        "members": [p.code for p in roster.body.members()],
        "final": result.final,
        "final_size": stored.size if result.final else _newest_final(node, roster, result.needed),
        "roster_version": roster.version,
    }


def _with_cosignatures(node: Node, size: int, note: bytes) -> bytes:
    return note + "".join(node.store.cosignature_lines(size)).encode()


def _newest_final(node: Node, roster: SignedRoster, needed: int) -> int | None:
    size = node.store.newest_cosigned(needed)
    stored = node.store.checkpoint(size) if size is not None else None
    if stored is None:
        return None
    note = _with_cosignatures(node, stored.size, stored.note)
    return stored.size if is_final(note, node.settings.jurisdiction, roster).final else None


@router.get(
    "/policy",
    response_class=PlainTextResponse,
    summary="The alliance's witness policy (C2SP tlog-policy)",
    responses=errors(404),
)
def get_policy(request: Request) -> PlainTextResponse:
    """``log`` lines for every active party, ``witness`` lines for every member, the
    members' group with its quorum k, and ``quorum members``. Public."""
    roster = _in_force(get_node(request))
    return PlainTextResponse(tlog_policy(roster), media_type="text/plain; charset=utf-8")

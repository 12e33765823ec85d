"""Forensics: one node's slice of its log for some agents, and a whole timeline.

``POST /api/v1/forensics/slice`` answers this node's own evidence (docs/design/0030);
``POST /api/v1/forensics/timeline`` gathers every member's slice and orders them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from custodes.api.bodies import read_body
from custodes.api.deps import caller, get_node
from custodes.api.openapi import bearer, errors, optional_token
from custodes.api.validation import parse_model
from custodes.client.forensics import gather, members_of, ordered
from custodes.errors import AuthError, BadRequest
from custodes.forensics.models import Incident, Slice, SliceRequest, Timeline
from custodes.forensics.scan import LogParts, scan
from custodes.node import Node
from custodes.registry.principals import Principal

__all__ = ["log_parts", "node_timeline", "router"]

router = APIRouter(prefix="/api/v1/forensics", tags=["forensics"])
MAX_BODY = 256 * 1024
_INVESTIGATORS = ("regulator", "auditor")


def _body(model: type[Any]) -> dict[str, Any]:
    schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def log_parts(node: Node) -> LogParts:
    """What the scan reads of ``node``."""
    return LogParts(
        node=node.settings.jurisdiction,
        origin=node.settings.origin,
        engine=node.engine,
        store=node.store,
        proofs=node.proofs,
        disclosure=node.disclosure,
        queries=node.queries,
        read_index=node.read_index,
        quorum=node.federation.quorum(),
    )


@router.post(
    "/slice",
    summary="This node's evidence about some agents in a window",
    responses=errors(400, 401, 403, 413, 422),
    openapi_extra=optional_token(_body(SliceRequest)),
)
async def post_slice(request: Request) -> dict[str, Any]:
    """The entries of this node's log that concern ``agents`` and were sequenced in
    ``[start, end)`` — decisions and halts, kill orders and lifts, registry changes,
    attestations, recognitions, disclosures, drift alerts — each with its stored bytes
    and inclusion proof against one checkpoint (with cosignatures), a page at a time
    (``next_cursor``). Public: committed decisions show their commitment; with a token,
    the clear records the caller is entitled to (each such read is logged)."""
    raw = await read_body(request, MAX_BODY)
    asked = parse_model(SliceRequest, raw)
    node = get_node(request)

    def answer() -> dict[str, Any]:
        found: Slice = scan(log_parts(node), asked, caller(request))
        return found.model_dump(mode="json")

    return await run_in_threadpool(answer)


def _investigator(request: Request) -> Principal:
    principal = caller(request)
    if principal is None:
        raise AuthError(
            "a timeline is for regulators and auditors: send an API token", code="missing_token"
        )
    if principal.role not in _INVESTIGATORS:
        raise AuthError(
            f"a timeline is for regulators and auditors; {principal.id} is a {principal.role}",
            code="not_investigator",
            status=403,
        )
    return principal


@router.post(
    "/timeline",
    summary="Gather every member's slice and order them causally",
    responses=errors(400, 401, 403, 404, 413, 422),
    openapi_extra=bearer(_body(Incident)),
)
async def post_timeline(request: Request) -> dict[str, Any]:
    """This node gathers the incident from every member named (default: every member of
    the roster in force, at the roster's urls): its own slice with the caller's
    entitlements, the peers' slices as the public sees them — a node never forwards a
    caller's token — then orders them (``forensics.order``). Regulators and auditors
    only. Unreachable members are named in ``gaps``."""
    principal = await run_in_threadpool(_investigator, request)
    raw = await read_body(request, MAX_BODY)
    incident = parse_model(Incident, raw)
    if incident.end <= incident.start:
        raise BadRequest(
            "the window's end must be after its start ([start, end))", code="bad_window"
        )
    node = get_node(request)
    timeline = await run_in_threadpool(node_timeline, node, incident, principal)
    return timeline.model_dump(mode="json")


def node_timeline(node: Node, incident: Incident, principal: Principal) -> Timeline:
    """The incident as this node sees it for ``principal`` (its own slice with the
    principal's entitlements, the peers' as the public), in causal order. The dashboard's
    forensics page builds its reports with this too."""
    roster = node.federation.roster
    if roster is None:
        raise BadRequest(
            "this node is not part of an alliance (no roster); ask /forensics/slice instead",
            code="no_roster",
        )
    parts = log_parts(node)

    def own(asked: SliceRequest) -> Slice:
        return scan(parts, asked, principal)

    served = {"version": roster.version, "digest": roster.digest(), "document": roster.document}
    found = gather(
        incident,
        seed=_own_url(served, parts.node),
        roster=served,
        own=(parts.node, own),
        asked_by=principal.id,
    )
    return ordered(incident, found)


def _own_url(roster: dict[str, Any], code: str) -> str:
    urls = members_of(roster).get(code) or ["http://127.0.0.1"]
    return urls[0]

"""Signed benchmark results and drift alerts: logged by auditors and regulators, read by all.

``POST /api/v1/evals/results`` (and ``/drift-alerts``) takes a DSSE envelope of an
``EvalResult`` (``DriftAlert``) signed by the caller's registered key, with a bearer
token carrying the ``evals:write`` scope; the payload must validate and name the caller
as ``issuer``. The envelope is logged as it was signed (201, ``{"index"}``). A result
above the error threshold needs its signed ``error_override`` (``custodes.evals.rails``);
a result is published once per (issuer, run_id, epoch): the same again answers 200 with
the first index and ``"already_published": true``, other content 409
(``custodes.evals.index``).

``GET /api/v1/evals/results`` lists them (by agent, suite, ``since``; cursor pages, each
item with its proof, as the read side does: ``custodes.api.readside``).

``GET /api/v1/evals/results/{index}`` returns the record, the entry as logged and its
inclusion proof against the node's latest checkpoint (``proof`` is null while the entry
is sequenced but not yet integrated: ask again shortly).
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import Connection

from custodes.api.bodies import read_json
from custodes.api.deps import get_node, require_caller
from custodes.api.openapi import bearer, errors, signed_body
from custodes.api.proofs import proof_json
from custodes.api.readside import parse_instant, results_page
from custodes.audits.store import project_alert
from custodes.errors import AuthError, BadRequest, NotFound
from custodes.evals.index import AlreadyPublished, ResultFilter, record_published
from custodes.evals.rails import check_publishable
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE, DriftAlert, EvalResult
from custodes.ledger.tiles import MAX_ENTRY_SIZE
from custodes.node import Node
from custodes.registry.principals import Principal
from custodes.store.db import read_tx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/evals", tags=["evals"])
_SCOPE = "evals:write"
_MODELS: dict[str, type[EvalResult | DriftAlert]] = {
    RESULT_TYPE: EvalResult,
    DRIFT_ALERT_TYPE: DriftAlert,
}


def _parse(payload_type: str, payload: bytes, principal: Principal) -> BaseModel:
    model = _MODELS[payload_type]
    try:
        record = model.model_validate_json(payload)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:10]]
        raise BadRequest(
            f"not a valid {model.__name__}: " + "; ".join(problems),
            code="invalid_payload",
            status=422,
            detail={"problems": problems},
        ) from None
    if record.issuer != principal.id:
        raise AuthError(
            f"the payload's issuer must be the signing principal {principal.id}",
            code="issuer_mismatch",
            status=403,
        )
    return record


def _append(node: Node, obj: Any, payload_type: str, principal: Principal) -> dict[str, Any]:
    if not principal.can(_SCOPE):
        raise AuthError(
            f"publishing evaluation results needs the {_SCOPE} scope (auditors and regulators)",
            code="missing_scope",
            status=403,
        )
    envelope = node.registry.signed_by(obj, payload_type, principal)
    size = len(envelope.to_bytes())
    if size > MAX_ENTRY_SIZE:  # entry bundles (tlog-tiles) cannot hold a larger entry
        raise BadRequest(
            f"the signed result is {size} bytes; the log stores entries of at most "
            f"{MAX_ENTRY_SIZE} bytes",
            code="entry_too_large",
            status=413,
        )
    record = _parse(payload_type, envelope.payload, principal)
    alert = project_alert(envelope)  # a drift alert on an agent (custodes.audits.store)
    if not isinstance(record, EvalResult):
        return {"index": node.log.append_own(envelope, alert)}
    check_publishable(record)
    published = record_published(record)

    def project(conn: Connection, index: int) -> None:
        published(conn, index)
        if alert is not None:
            alert(conn, index)

    try:
        return {"index": node.log.append_own(envelope, project)}
    except AlreadyPublished as exc:
        if not exc.same:
            raise
        return {"index": exc.index, "already_published": True}


async def _submit(request: Request, payload_type: str) -> JSONResponse:
    # Token look-ups read the database: keep them off the event loop, which also
    # serves the kill-order streams.
    principal = await run_in_threadpool(require_caller, request)
    obj = await read_json(request)
    answer = await run_in_threadpool(_append, get_node(request), obj, payload_type, principal)
    return JSONResponse(answer, status_code=200 if answer.get("already_published") else 201)


_LOGGED = {"type": "object", "properties": {"index": {"type": "integer"}}, "required": ["index"]}
_AGAIN = {
    "type": "object",
    "properties": {"index": {"type": "integer"}, "already_published": {"const": True}},
    "required": ["index", "already_published"],
}


@router.post(
    "/results",
    status_code=201,
    responses={
        **errors(400, 401, 403, 404, 409, 413, 422),
        200: {
            "description": "already published: the index it was logged at",
            "content": {"application/json": {"schema": _AGAIN}},
        },
        201: {"description": "logged", "content": {"application/json": {"schema": _LOGGED}}},
    },
    openapi_extra=bearer(signed_body(RESULT_TYPE, "the caller's registered key")),
    summary="Log a signed benchmark result (evals:write)",
)
async def submit_result(request: Request) -> JSONResponse:
    """Log one epoch of a benchmark run: an EvalResult signed by the caller's registered
    key, naming the caller as issuer, with a token holding the evals:write scope
    (auditors and regulators). `custodes eval publish` builds and sends it. Answers
    201 with the log index. A result whose error rate (target errors, and undetermined
    verdicts outside the benign controls, over all samples) is above 5% is refused
    (422 `too_many_errors`) unless it carries `error_override` (reason, rates, the
    issuer). The same issuer, run_id and
    epoch again: with the same content, 200 with the existing index and
    `"already_published": true`; with other content, 409 `result_conflict`."""
    return await _submit(request, RESULT_TYPE)


@router.post(
    "/drift-alerts",
    status_code=201,
    responses={
        **errors(400, 401, 403, 404, 409, 413, 422),
        201: {"description": "logged", "content": {"application/json": {"schema": _LOGGED}}},
    },
    openapi_extra=bearer(signed_body(DRIFT_ALERT_TYPE, "the caller's registered key")),
    summary="Log a signed drift alert for a live agent (evals:write)",
)
async def submit_drift_alert(request: Request) -> JSONResponse:
    """Log passive drift of a live agent's logged decisions: a DriftAlert signed by the
    caller (evals:write scope), naming the caller as issuer. Answers with the log index."""
    return await _submit(request, DRIFT_ALERT_TYPE)


def _entry(node: Node, index: int) -> dict[str, Any]:
    if index >= node.store.sequenced_size():
        raise NotFound(f"no entry has index {index}", code="entry_not_found")
    with read_tx(node.engine) as conn:
        data = node.store.entry_data(conn, index, index + 1)
    if not data:
        raise NotFound(f"no entry has index {index}", code="entry_not_found")
    entry: dict[str, Any] = orjson.loads(data[0])
    return entry


@router.get(
    "/results/{index}",
    summary="A logged result or drift alert, with its proof",
    responses=errors(404, 422),
)
def get_result(index: Annotated[int, Path(ge=0)], request: Request) -> dict[str, Any]:
    """A logged EvalResult or DriftAlert: the decoded record, the entry as logged, and its
    inclusion proof against the latest checkpoint (null while the entry is sequenced
    but not yet integrated: ask again shortly). Public."""
    node = get_node(request)
    entry = _entry(node, index)
    payload_type = entry.get("payloadType")
    if payload_type not in _MODELS:
        raise NotFound(
            f"entry {index} is not an evaluation result (it is {payload_type})",
            code="not_an_eval_result",
        )
    size, _ = node.store.tree_size()
    proof = (
        proof_json(node, node.log.inclusion(index=index, size=size), size) if index < size else None
    )
    return {
        "index": index,
        "payload_type": payload_type,
        "record": orjson.loads(base64.b64decode(entry["payload"])),
        "entry": entry,
        "proof": proof,
    }


@router.get(
    "/results",
    summary="Published evaluation results, filtered, each with its inclusion proof",
    description=(
        "Logged `EvalResult`s in log order, filtered by the agent they tested, the suite "
        "id and `since` (an RFC 3339 instant: results that finished then or later). Every "
        "item's proof is against `tree_size`, whose signed checkpoint is `checkpoint`; pass "
        "`next_cursor` as `cursor` for the next page (same checkpoint). Public."
    ),
    responses=errors(400, 422),
)
def list_results(
    request: Request,
    agent_id: str | None = None,
    suite: str | None = None,
    since: Annotated[str | None, Query(description="an RFC 3339 instant")] = None,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    where = ResultFilter(agent_id, suite, parse_instant("since", since))
    return results_page(get_node(request), where, cursor, limit)

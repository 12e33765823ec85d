"""Accreditations, the common scheme, audit attestations and recognition decisions.

Every write is a DSSE envelope signed by the caller's registered key, sent with the
caller's bearer token (the scheme is the members' signed document; a countersignature
is ``{"keyid", "sig"}`` over the attestation's PAE). A refusal writes nothing and lists
every failed condition in ``error.detail.failures`` (``[{"condition", "reason"}]``):
``custodes.audits.service``. Reads are public.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from custodes.api.bodies import read_body, read_json
from custodes.api.deps import require_caller
from custodes.api.openapi import bearer, errors, signed_body
from custodes.audits.attestation import open_attestation
from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    RECOGNITION_TYPE,
)
from custodes.audits.service import AuditService
from custodes.errors import BadRequest, NotFound
from custodes.federation.audit_cases import AuditCases
from custodes.ledger.tiles import MAX_ENTRY_SIZE

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audits", tags=["audits"])
_WRITE = errors(400, 401, 403, 404, 409, 413, 422)
_LOGGED: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "logged",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"index": {"type": "integer"}},
                    "required": ["index"],
                }
            }
        },
    }
}


def _service(request: Request) -> AuditService:
    service: AuditService = request.app.state.node.audits
    return service


def _cases(request: Request) -> AuditCases:
    cases: AuditCases = request.app.state.audit_cases
    return cases


async def _plain_json(request: Request) -> Any:
    raw = await read_body(request, MAX_ENTRY_SIZE)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON", code="invalid_json") from None


async def _write(request: Request, method: str, *args: Any, plain: bool = False) -> JSONResponse:
    principal = await run_in_threadpool(require_caller, request)
    body = await (_plain_json(request) if plain else read_json(request))
    service = _service(request)
    act = getattr(service, method)
    answer = await run_in_threadpool(lambda: act(*args, body, principal))
    return JSONResponse(answer, status_code=201)


# -- accreditations -----------------------------------------------------------------------
@router.post(
    "/accreditations",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(
        signed_body(ACCREDITATION_TYPE, "a regulator of this node's jurisdiction")
    ),
    summary="Grant, suspend, reinstate or withdraw an auditor's accreditation",
)
async def submit_accreditation(request: Request) -> JSONResponse:
    """An Accreditation signed by a regulator of this node's jurisdiction (the record
    names it). A grant carries the auditor's key, scope and validity; suspend, reinstate
    and withdraw act on a grant logged here. Answers 201 with the index and the id."""
    return await _write(request, "submit_accreditation")


@router.get("/accreditations", summary="Every accreditation, alliance-wide", responses=errors())
def list_accreditations(request: Request) -> dict[str, Any]:
    """The accreditations logged here and on every peer mirrored here, with status."""
    return {"accreditations": _cases(request).accreditations()}


@router.get(
    "/accreditations/{acc_id}", summary="One accreditation and its status", responses=errors(404)
)
def get_accreditation(acc_id: str, request: Request) -> dict[str, Any]:
    """The grant and its status, read from the accrediting party's log (here or mirror)."""
    for row in _cases(request).accreditations():
        if row["id"] == acc_id:
            return row
    raise NotFound(f"no accreditation {acc_id} is known here", code="unknown_accreditation")


# -- the scheme ---------------------------------------------------------------------------
@router.post(
    "/schemes",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(),
    summary="Apply the next version of the common scheme (signed by the members)",
)
async def submit_scheme(request: Request) -> JSONResponse:
    """The signed scheme document ({"signed", "signatures"}), sent by a regulator of this
    node: verified against the roster in force (a threshold of root keys) and the
    version in force (the next one), then logged by the node. Peers adopt it from here."""
    return await _write(request, "submit_scheme", plain=True)


@router.get("/schemes/current", summary="The common scheme in force here", responses=errors(404))
def current_scheme(request: Request) -> dict[str, Any]:
    """The signed document, its version and digest."""
    scheme = _service(request).scheme()
    if scheme is None:
        raise NotFound("no common scheme is in force on this node", code="no_scheme")
    return {"document": scheme.document, "version": scheme.version, "digest": scheme.digest()}


# -- attestations -------------------------------------------------------------------------
@router.post(
    "/attestations",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(),
    summary="Log an audit attestation (in-toto Statement in DSSE)",
)
async def submit_attestation(request: Request) -> JSONResponse:
    """The auditor's signed Statement: refused (every failed condition listed) when it
    could not be recognised (signature, expiry, accreditation and scope, conflict of
    interest, digests, evidence against the scheme). Evidence finality and
    countersignatures may come later. Answers 201 with the index and the id."""
    return await _write(request, "submit_attestation")


@router.get(
    "/attestations", summary="The attestations of an agent known here", responses=errors(404)
)
def list_attestations(request: Request, agent_id: str | None = None) -> dict[str, Any]:
    """Attestations visible here (this log and the mirrors), optionally of one agent."""
    found = [
        _attestation_json(a)
        for a in _cases(request).attestations()
        if agent_id is None or a.agent_id == agent_id
    ]
    return {"attestations": found}


@router.get(
    "/attestations/{aid}", summary="One attestation with its signatures", responses=errors(404)
)
def get_attestation(aid: str, request: Request) -> dict[str, Any]:
    """The envelope with every signature known here, its status and its log entry."""
    found = _cases(request).attestation(aid)
    if found is None:
        raise NotFound(f"no attestation {aid} is known here", code="unknown_attestation")
    return _attestation_json(found)


def _attestation_json(found: Any) -> dict[str, Any]:
    return {
        "id": found.id,
        "agent_id": found.agent_id,
        "status": found.status,
        "expires": found.expires,
        "entry": found.entry.model_dump(),
        "party": found.party,
        "signatures": len(found.envelope.signatures),
        "envelope": found.envelope.to_json(),
        "statement": open_attestation(found.envelope).statement,
    }


@router.post(
    "/attestations/{aid}/countersign",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(),
    summary="Countersign an attestation (a member's regulator)",
)
async def countersign(aid: str, request: Request) -> JSONResponse:
    """{"keyid", "sig"}: the caller's signature over the attestation's PAE. The caller is
    a regulator of this node's party, vouched for on the roster; a partner's or a
    suspended party's is refused (403 partner_no_say). The copy with the signature added
    is logged."""
    return await _write(request, "countersign", aid, plain=True)


@router.post(
    "/attestations/{aid}/withdraw",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(
        signed_body(ATTESTATION_STATUS_TYPE, "the auditor or its accrediting regulator")
    ),
    summary="Withdraw an attestation",
)
async def withdraw_attestation(aid: str, request: Request) -> JSONResponse:
    """An AttestationStatus signed by the auditor or a regulator of the accrediting
    party; the recognitions resting on it are withdrawn on every member."""
    return await _write(request, "withdraw_attestation", aid)


# -- recognition --------------------------------------------------------------------------
@router.post(
    "/recognitions",
    status_code=201,
    responses={**_WRITE, **_LOGGED},
    openapi_extra=bearer(signed_body(RECOGNITION_TYPE, "a regulator of this member")),
    summary="Recognise, refuse or withdraw (a member's regulator)",
)
async def submit_decision(request: Request) -> JSONResponse:
    """A RecognitionDecision. recognise: the node checks the attestation here; any failed
    condition is a 422 not_recognisable listing them; else the decision and a SLSA
    verification summary (signed by the node) are logged: {"index", "vsa",
    "vsa_index"}. refuse lists its reasons; withdraw names a recognition in force.
    A partner's regulator, where the scheme gives partners no say: 403 partner."""
    return await _write(request, "submit_decision")


@router.post(
    "/recognitions/check",
    summary="Dry run: why an attestation is (not) recognisable here",
    responses=errors(400, 404, 409, 413, 422),
)
async def check(request: Request) -> dict[str, Any]:
    """{"attestation": id, "automatic": bool}: every condition a recognition here would
    fail now (with the scheme's k countersignatures when automatic). Public, logs nothing."""
    body = await _plain_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("attestation"), str):
        raise BadRequest('send {"attestation": <id>}', code="invalid_payload", status=422)
    service = _service(request)
    return await run_in_threadpool(
        lambda: service.check(body["attestation"], automatic=bool(body.get("automatic")))
    )


@router.get("/recognitions", summary="This node's decisions", responses=errors())
def list_decisions(request: Request, agent_id: str | None = None) -> dict[str, Any]:
    """This party's latest decision on each attestation (optionally of one agent), and
    the failures of the automatic check for those not recognised yet."""
    service = _service(request)
    agents = dict(service.pending_agents)
    pending = {
        aid: [f.model_dump() for f in failures]
        for aid, failures in dict(service.pending).items()
        if agent_id is None or agents.get(aid) == agent_id
    }
    return {
        "jurisdiction": service.jurisdiction,
        "decisions": service.decisions_here(agent_id),
        "pending": pending,
    }

"""The red-teaming repository's lifecycle: signed acts, reads and the event stream.

Every write is ``{"envelope": <DSSE of a RedteamAct signed by the caller's registered
key>, "opening": {"salt", "body"}}`` with the caller's bearer token
(``custodes.redteam.service``); a refusal writes nothing. Reads apply the TLP rule
(``custodes.redteam.tlp.can_read``): a disclosure the caller may not read is a 404, as
if it did not exist. ``/events`` streams the exposures (and, for regulators, every
disclosure move) the caller may see, as server-sent events.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from custodes.api.bodies import body_gate, read_body
from custodes.api.deps import caller, require_caller
from custodes.api.openapi import bearer, errors, optional_token
from custodes.errors import BadRequest
from custodes.redteam.events import Watcher
from custodes.redteam.models import REDTEAM_TYPE
from custodes.redteam.service import RedteamService
from custodes.redteam.tlp import Reader

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/redteam", tags=["redteam"])
_WRITE = errors(400, 401, 403, 404, 409, 413, 422)
_MAX_ACT = 256 * 1024  # the envelope and the opening's body (a report with its probe)
_HEARTBEAT = 15.0
_OPS = ("triage", "disclose", "relabel", "status", "summary")
# The body of every act: the signed RedteamAct and, beside it, the body it commits to.
_ACT_BODY = {
    "requestBody": {
        "required": True,
        "description": f"a RedteamAct ({REDTEAM_TYPE}) signed by the caller's registered key, "
        "and the opening of its content: the salt and the step's body",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["envelope", "opening"],
                    "additionalProperties": False,
                    "properties": {
                        "envelope": {"$ref": "#/components/schemas/DsseEnvelope"},
                        "opening": {
                            "type": "object",
                            "required": ["salt", "body"],
                            "additionalProperties": False,
                            "properties": {
                                "salt": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22,128}$"},
                                "body": {"type": "object"},
                            },
                        },
                    },
                }
            }
        },
    }
}


def _service(request: Request) -> RedteamService:
    service: RedteamService = request.app.state.node.redteam
    return service


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not JSON", code="invalid_json") from None


async def _act(request: Request, op: str, disclosure: str | None) -> JSONResponse:
    principal = await run_in_threadpool(require_caller, request)
    if disclosure is not None and op not in _OPS:
        raise BadRequest(
            f"unknown step {op}; one of {', '.join(_OPS)}", code="unknown_step", status=404
        )
    raw = await read_body(request, _MAX_ACT)
    body = await body_gate(request).run(_loads, raw)
    service = _service(request)
    answer = await run_in_threadpool(service.submit, op, disclosure, body, principal)
    return JSONResponse(answer, status_code=201)


async def _reader(request: Request) -> Reader:
    return Reader.of(await run_in_threadpool(caller, request))


@router.post(
    "/disclosures",
    status_code=201,
    responses=_WRITE,
    openapi_extra=bearer(_ACT_BODY),
    summary="Report a vulnerability (a researcher's or auditor's signed report act)",
)
async def report(request: Request) -> JSONResponse:
    """A ``report`` act signed by a researcher or auditor of this node, with its opening:
    the ReportBody (AVID-style fields, ATLAS and OWASP ids, the probe). The disclosure is
    named by the act (``vulnerability--<uuid4>``); 409 if it exists."""
    return await _act(request, "report", None)


@router.post(
    "/disclosures/{disclosure}/{op}",
    status_code=201,
    responses=_WRITE,
    openapi_extra=bearer(_ACT_BODY),
    summary="Triage, disclose, relabel, summarise, or set an agent's status",
)
async def act(disclosure: str, op: str, request: Request) -> JSONResponse:
    """The next step of a disclosure: ``triage``, ``disclose``, ``relabel``, ``summary``
    (a regulator of the origin) or ``status`` (at the agent's home: its operator claims
    ``mitigated``/``patched``; a re-test's signed result backs ``verified``/``regressed``)."""
    return await _act(request, op, disclosure)


@router.get(
    "/disclosures",
    summary="The disclosures the caller may read",
    responses=errors(401, 422),
    openapi_extra=optional_token(),
)
async def list_disclosures(
    request: Request,
    stage: Annotated[str | None, Query(pattern="^(reported|triaged|disclosed)$")] = None,
    severity: Annotated[str | None, Query(pattern="^(low|medium|high|critical)$")] = None,
    agent_id: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Oldest first; ``next`` is the offset of the next page (null at the end). Without
    a token, only what is TLP:CLEAR and disclosed."""
    reader = await _reader(request)
    service = _service(request)
    return await run_in_threadpool(
        lambda: service.reads.disclosures(
            reader,
            stage=stage,
            severity=severity,
            agent_id=agent_id,
            limit=limit,
            offset=offset,
        )
    )


@router.get(
    "/disclosures/{disclosure}",
    summary="One disclosure: its bodies, exposures and the acts logged here",
    responses=errors(401, 404),
    openapi_extra=optional_token(),
)
async def get_disclosure(disclosure: str, request: Request) -> dict[str, Any]:
    """What the caller may read of one disclosure: stage, TLP, audience, the bodies so
    far, each affected agent's exposure and the acts logged on this node (index, step,
    commitment). A disclosure the caller may not read answers 404, like an unknown one."""
    reader = await _reader(request)
    return await run_in_threadpool(_service(request).reads.disclosure, disclosure, reader)


@router.get(
    "/disclosures/{disclosure}/affected",
    summary="Preview a triage: the agents of the alliance the criteria match now",
    responses=errors(401, 403, 404, 422),
    openapi_extra=bearer(),
)
async def affected(
    disclosure: str,
    request: Request,
    models: Annotated[list[str] | None, Query()] = None,
    versions: Annotated[list[str] | None, Query()] = None,
    skills: Annotated[list[str] | None, Query()] = None,
    agents: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """With no criteria, the report's own ``affects``. A regulator of the origin."""
    principal = await run_in_threadpool(require_caller, request)
    service = _service(request)
    given = {"models": models, "versions": versions, "skills": skills, "agents": agents}
    criteria = {k: tuple(v) for k, v in given.items() if v}
    answer = await run_in_threadpool(service.preview, disclosure, criteria, principal)
    return answer


@router.get(
    "/agents/{agent_id}/exposures",
    summary="One agent's exposures, in the disclosures the caller may read",
    responses=errors(401),
    openapi_extra=optional_token(),
)
async def agent_exposures(agent_id: str, request: Request) -> dict[str, Any]:
    """Each disclosure affecting ``agent_id`` the caller may read (its operator reads its
    own agents'), with the agent's status, evidence and when it last changed."""
    reader = await _reader(request)
    found = await run_in_threadpool(_service(request).reads.exposures_of, agent_id, reader)
    return {"agent_id": agent_id, "exposures": found}


def _sse(event: dict[str, Any]) -> bytes:
    shown = {k: v for k, v in event.items() if k != "audience"}
    return b"event: " + str(event["kind"]).encode() + b"\ndata: " + orjson.dumps(shown) + b"\n\n"


async def _events(
    request: Request, watcher: Watcher, snapshot: list[dict[str, Any]], service: RedteamService
) -> AsyncIterator[bytes]:
    try:
        yield b": connected\n\n"
        for past in snapshot:
            yield _sse(past)
        while not await request.is_disconnected():
            try:
                event = await asyncio.wait_for(watcher.queue.get(), timeout=_HEARTBEAT)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            if event is None:
                return
            yield _sse(event)
    finally:
        service.events.unsubscribe(watcher)


@router.get(
    "/events",
    summary="Server-sent events: exposures of the caller's agents (operators), or every "
    "disclosure move and exposure the caller may read",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(401)},
    openapi_extra=bearer(),
)
async def stream_events(request: Request) -> StreamingResponse:
    """On connecting, the current exposures the caller sees (``exposure`` events); then
    each ``exposure`` and ``disclosure`` event as it happens. Comments keep the
    connection open. Needs a token."""
    principal = await run_in_threadpool(require_caller, request)
    reader = Reader.of(principal)
    service = _service(request)
    watcher = service.events.subscribe(reader)  # before the snapshot: no gap
    snapshot = await run_in_threadpool(service.reads.snapshot, reader)
    return StreamingResponse(
        _events(request, watcher, snapshot, service),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )

"""Kill-switch conformance tests (custodes.audits.conformance, docs/design/0028).

``POST /api/v1/audits/killswitch-tests`` ``{"agent_id", "deadline_ms"?}``: the agent's
home node pushes a test order to its guard, waits for the halt record (at most the
deadline), ends the test and logs the result (201, ``{"index", "record"}``; a failed
test is logged too: it is evidence). Only a regulator of the agent's home (its API
token) or the node's admin may run one; refusals (401/403, unknown agent 404, a test
already running 409, a bad body 422) write nothing.

``GET /api/v1/audits/killswitch-tests?agent_id=``: the logged results, newest first.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from custodes.api.bodies import read_body
from custodes.api.deps import get_node, require_caller
from custodes.api.openapi import bearer, errors
from custodes.errors import AuthError, BadRequest, NotFound
from custodes.registry.models import AGENT_ID
from custodes.registry.projection import load_agent
from custodes.store.db import read_tx

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/audits", tags=["audits"])


class KillswitchTestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: str = Field(pattern=AGENT_ID)
    deadline_ms: int | None = Field(default=None, ge=1, le=60_000)


def _authorise(request: Request) -> None:
    """The node's admin token, or a regulator of this node's jurisdiction."""
    node = get_node(request)
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token and node.admin_token.matches(token):
        return
    principal = require_caller(request)
    if principal.role != "regulator" or principal.jurisdiction != node.settings.jurisdiction:
        raise AuthError(
            f"only a regulator of {node.settings.jurisdiction} (the agent's home) or the "
            "node's admin may run a kill-switch test",
            code="forbidden",
            status=403,
        )


def _body(raw: bytes) -> KillswitchTestRequest:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest("the body is not JSON", code="malformed_json", status=400) from exc
    try:
        return KillswitchTestRequest.model_validate(obj)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise BadRequest(
            f"invalid kill-switch test request: {where}: {error['msg']}",
            code="invalid_body",
            status=422,
        ) from exc


def _run(request: Request, body: KillswitchTestRequest) -> dict[str, Any]:
    node = get_node(request)
    with read_tx(node.engine) as conn:
        agent = load_agent(conn, body.agent_id)
    if agent.home_jurisdiction != node.settings.jurisdiction:
        raise NotFound(
            f"{body.agent_id} is homed at {agent.home_jurisdiction}'s node; run its "
            "kill-switch test there",
            code="not_home",
        )
    deadline = body.deadline_ms or node.settings.killswitch_test_deadline_ms
    index, record = node.conformance.run(body.agent_id, deadline)
    return {"index": index, "record": record.model_dump(mode="json")}


@router.post(
    "/killswitch-tests",
    status_code=201,
    responses=errors(400, 401, 403, 404, 409, 413, 422),
    openapi_extra=bearer(),
    summary="Run a kill-switch conformance test on an agent and log its result",
)
async def run_test(request: Request) -> dict[str, Any]:
    """The agent's home node pushes a TEST order to the agent's guard (it suspends
    nothing and changes no lease), waits for the guard's halt record up to
    `deadline_ms` (default the node's setting, 5000), ends the test and logs a signed
    KillswitchTest: halt observed, time to halt, the halt entry, passed. A regulator of
    the agent's home or the node admin only."""
    await run_in_threadpool(_authorise, request)
    body = _body(await read_body(request, 4096))
    return await run_in_threadpool(_run, request, body)


@router.get(
    "/killswitch-tests",
    summary="Logged kill-switch conformance test results, newest first",
    responses=errors(404, 422),
)
def list_tests(
    request: Request, agent_id: str | None = Query(default=None, pattern=AGENT_ID)
) -> list[dict[str, Any]]:
    """Every logged test result (index and record), for one agent with `agent_id`.
    Public: they are evidence on the log."""
    return get_node(request).conformance.results(agent_id)

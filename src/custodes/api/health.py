"""Health, readiness and metrics: what an operator's monitoring polls.

* ``GET /healthz`` (liveness): the process answers. It reads nothing, so a slow or
  unreachable database never gets a node restarted for the database's fault.
* ``GET /readyz`` (readiness): the database takes writes, its schema is at this code's
  revision, the sequencer and integrator run, no integrity alarm stands, and no entry
  has waited too long for a checkpoint (``custodes.api.readiness``). Otherwise 503 in
  the project's error shape, code ``not_ready``, every failed check in ``detail``.
* ``GET /api/v1/health``: 200 while the node accepts appends, 503 ``integrity_alarm``
  (every alarm in ``detail``) once an alarm has stopped them, with the log's figures.
* ``GET /metrics``: Prometheus text format (``custodes.api.metrics``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import PlainTextResponse, Response

from custodes.api.deps import get_node
from custodes.api.metrics import CONTENT_TYPE, PrometheusMetrics
from custodes.api.openapi import errors
from custodes.api.readiness import read_figures, read_readiness, readiness_failures
from custodes.errors import CustodesError

__all__ = ["router"]

router = APIRouter(tags=["operations"])


class NotReady(CustodesError):
    code = "not_ready"
    status = 503


@router.get("/healthz", summary="Liveness: the process answers (reads nothing)")
async def healthz() -> dict[str, str]:
    """Liveness: the process answers. Reads nothing, not even the database, so a slow
    database never gets a live node restarted. Public."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database writable, schema current, threads running, no alarm",
    responses=errors(503),
)
async def readyz(request: Request) -> dict[str, Any]:
    """Readiness: the database takes writes, the schema is at head, the sequencer and
    integrator run, no integrity alarm stands and checkpoints keep up; otherwise 503
    ``not_ready`` naming every failed check. Public."""
    state = await run_in_threadpool(read_readiness, get_node(request))
    failed = readiness_failures(state)
    if failed:
        raise NotReady(
            f"the node is not ready: {'; '.join(failed.values())}",
            detail={"failed": failed},
        )
    return {"status": "ready", "revision": state.revision}


@router.get(
    "/api/v1/health",
    summary="Whether this node accepts appends (503 integrity_alarm when it does not)",
    responses=errors(503),
)
def health(request: Request) -> dict[str, Any]:
    """200 with the tree size, sequenced size and checkpoint age while the node accepts
    appends; 503 (code integrity_alarm, every alarm in detail) once an integrity alarm
    has stopped them. Public."""
    node = get_node(request)
    node.alarm.check()
    figures = read_figures(node)
    age = figures.checkpoint_age
    return {
        "status": "ok",
        "origin": node.settings.origin,
        "tree_size": figures.tree_size,
        "sequenced": figures.sequenced,
        "checkpoint_age_seconds": -1.0 if age is None else round(age, 3),
        "integrity_alarm": 0,
    }


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics (prometheus-client): latencies, queue depth, checkpoint age and
    lag, witness failures, leases, kill orders, streams, the integrity alarm. Public."""
    exporter: PrometheusMetrics = request.app.state.metrics
    return Response(exporter.exposition(), media_type=CONTENT_TYPE)

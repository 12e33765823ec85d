"""Health and metrics: what an operator's monitoring polls.

``GET /api/v1/health`` answers 200 while the node accepts appends, and 503 in the
project's error shape (code ``integrity_alarm``, every alarm in ``detail``) once an
integrity alarm has stopped them. ``GET /metrics`` speaks the Prometheus text format.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from custodes.api.deps import get_node
from custodes.node import Node

__all__ = ["router"]

router = APIRouter(tags=["operations"])


def _figures(node: Node) -> dict[str, float]:
    size, _ = node.store.tree_size()
    newest = node.store.checkpoint()
    age = time.time() - newest.created_at if newest is not None else -1.0
    return {
        "tree_size": size,
        "sequenced": node.store.sequenced_size(),
        "checkpoint_age_seconds": round(age, 3),
        "integrity_alarm": 1 if node.alarm.tripped else 0,
    }


@router.get(
    "/api/v1/health",
    summary="Whether this node accepts appends (503 integrity_alarm when it does not)",
    responses={503: {"description": "an integrity alarm has stopped appends"}},
)
def health(request: Request) -> dict[str, Any]:
    """200 with the tree size, sequenced size and checkpoint age while the node accepts
    appends; 503 (code integrity_alarm, every alarm in detail) once an integrity alarm
    has stopped them. Public."""
    node = get_node(request)
    node.alarm.check()
    return {"status": "ok", "origin": node.settings.origin, **_figures(node)}


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    """Gauges in the Prometheus text format (tree size, sequenced size, checkpoint age,
    integrity alarm). Public."""
    node = get_node(request)
    lines = []
    for name, value in _figures(node).items():
        lines.append(f"# TYPE custodes_{name} gauge\ncustodes_{name} {value}\n")
    return Response("".join(lines), media_type="text/plain; version=0.0.4")

"""What an agent's page shows, gathered with the viewer's rights, read for read as the API.

Every read passes the viewer (a Principal, or None for the public) exactly where the API
passes its caller: the record (``queries.agent``), the decisions timeline
(``decisions_page``: clear rationale only where entitled, and that read is logged), the
red-team exposures (``Reader.of``). Orders, attestations, recognitions, evaluation results
and drift alerts are public on the API and public here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from custodes.api.readside import results_page
from custodes.audits.store import attestations
from custodes.errors import CustodesError, NotFound
from custodes.evals.index import ResultFilter
from custodes.redteam.tlp import Reader
from custodes.registry.models import CRITICAL_SECTORS
from custodes.store.db import read_tx
from custodes.web.charts import Chart, series_chart
from custodes.web.timeline import decisions_timeline

if TYPE_CHECKING:
    from custodes.node import Node
    from custodes.registry.principals import Principal

__all__ = ["AgentView", "agent_view", "home_of", "may_order"]

DECISIONS_PER_PAGE = 20
RESULTS_SHOWN = 100


@dataclass
class AgentView:
    """The agent's page, for one viewer."""

    agent_id: str
    foreign: bool
    answer: dict[str, Any]  # queries.agent's answer, or the alliance look-up's
    orders: list[dict[str, Any]] = field(default_factory=list)
    attestations: list[dict[str, Any]] = field(default_factory=list)
    recognitions: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    asr_chart: Chart | None = None
    dc_chart: Chart | None = None
    decisions: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    exposures: list[dict[str, Any]] = field(default_factory=list)
    lease: dict[str, Any] = field(default_factory=dict)


def home_of(agent_id: str) -> str | None:
    """The jurisdiction an agent's id names (``urn:custodes:<j>:agent:<slug>``)."""
    parts = agent_id.split(":")
    if len(parts) != 5 or parts[:2] != ["urn", "custodes"] or parts[3] != "agent":
        return None
    return parts[2].upper()


def may_order(viewer: Principal | None) -> bool:
    """Whether the page offers the order links (the order pages check authority)."""
    return viewer is not None and viewer.role in {"regulator", "operator"}


def _attestations(cases: Any, agent_id: str) -> list[dict[str, Any]]:
    if cases is None:
        return []
    ids: set[str] = set()
    for _code, engine in cases.engines():
        with read_tx(engine) as conn:
            query = select(attestations.c.id).where(attestations.c.agent_id == agent_id)
            ids.update(str(row.id) for row in conn.execute(query))
    found = [cases.attestation(aid) for aid in sorted(ids)]
    return [
        {
            "id": a.id,
            "status": a.status,
            "expires": a.expires,
            "party": a.party,
            "index": a.entry.index,
            "signatures": len(a.envelope.signatures),
        }
        for a in found
        if a is not None
    ]


def _results(node: Node, agent_id: str) -> list[dict[str, Any]]:
    page = results_page(node, ResultFilter(agent_id=agent_id), None, RESULTS_SHOWN)
    rows = []
    for item in page["items"]:
        record = item["record"]
        overall = next(
            (f for f in record.get("families", []) if f.get("family") == "overall"), None
        )
        drift = record.get("drift") or {}
        rows.append(
            {
                "index": item["index"],
                "suite": record["suite"]["id"],
                "version": record["suite"].get("version"),
                "finished_at": record.get("finished_at"),
                "issuer": record.get("issuer"),
                "asr": None if overall is None else overall.get("asr"),
                "dc": drift.get("dc"),
                "drift_alert": bool(drift.get("alert")),
            }
        )
    return rows


def _lease(node: Node, answer: dict[str, Any], agent_id: str) -> dict[str, Any]:
    """The lease rules for this agent and its lease state (GET /agents/{id}/lease)."""
    record = answer["record"]
    settings = node.settings
    last, now = node.leases.last_grant(agent_id)  # the status is in ``answer`` already
    return {
        "last": last,
        "acting_until": last["exp"] if last is not None and last["valid"] else None,
        "left_s": None if last is None else last["exp"] - now,
        "may_lease": answer["status"] == "active",
        "suspended_in": answer.get("suspended_in", []),
        "ttl_default": settings.lease_ttl_default,
        "ttl_critical": settings.lease_ttl_critical,
        "critical": record.get("sector") in CRITICAL_SECTORS,
        "gated": settings.deployment_gate,
    }


def _local(node: Node, state: Any, agent_id: str, viewer: Principal | None) -> AgentView:
    answer = node.queries.agent(agent_id, reader=viewer)
    view = AgentView(agent_id, foreign=False, answer=answer)
    view.orders = node.queries.orders(agent_id)
    cases = getattr(state, "audit_cases", None)
    view.attestations = _attestations(cases, agent_id)
    view.recognitions = node.audits.decisions_here(agent_id)
    view.alerts = [] if cases is None else cases.alerts(agent_id, 0.0)
    view.exposures = node.redteam.reads.exposures_of(agent_id, Reader.of(viewer))
    view.lease = _lease(node, answer, agent_id)
    _evaluations(node, view)
    return view


def _evaluations(node: Node, view: AgentView) -> None:
    view.results = _results(node, view.agent_id)
    points = [r for r in view.results if r["asr"] is not None]
    view.asr_chart = series_chart(
        "Attack success rate (overall) by run", [(r["finished_at"], r["asr"]) for r in points]
    )
    drifts = [r for r in view.results if r["dc"] is not None]
    view.dc_chart = series_chart(
        "Drift coefficient by run", [(r["finished_at"], r["dc"]) for r in drifts]
    )


def agent_view(
    node: Node, state: Any, agent_id: str, viewer: Principal | None, cursor: str | None
) -> AgentView:
    """The page's data: this node's agent, or another member's from the alliance look-up."""
    home = home_of(agent_id)
    if home is None:
        raise NotFound(f"{agent_id} is not an agent id", code="unknown_agent")
    if home != node.settings.jurisdiction:
        return _foreign(node, state, agent_id, viewer)
    view = _local(node, state, agent_id, viewer)
    view.decisions = decisions_timeline(node, agent_id, cursor, DECISIONS_PER_PAGE, viewer)
    return view


def _foreign(node: Node, state: Any, agent_id: str, viewer: Principal | None) -> AgentView:
    lookups = getattr(state, "lookups", None)
    if lookups is None or node.federation.roster is None:
        raise NotFound(
            f"{agent_id} is homed elsewhere and this node is in no alliance",
            code="unknown_agent",
        )
    try:
        answer = lookups.agent(agent_id, viewer)
    except NotFound:
        raise
    except CustodesError as exc:
        if exc.status == 422:
            raise NotFound(f"{agent_id} is not an agent id", code="unknown_agent") from exc
        raise
    view = AgentView(agent_id, foreign=True, answer=answer)
    view.orders = answer.get("orders", [])
    view.exposures = node.redteam.reads.exposures_of(agent_id, Reader.of(viewer))
    return view

"""The forensic report: one standalone HTML file a person reads.

``render_report`` turns a timeline (and, when it was checked, its :class:`Verified`
result) into HTML with no external assets and no scripts: an inline stylesheet, an
inline SVG chart with one lane per agent and per member node, then the events in causal
order with each decision's rationale beside it. Everything the bundle says is escaped
(Jinja2 autoescape): a rationale is text an agent wrote, not markup. The rows and the
chart's marks are computed here in one pass, so ten thousand events render quickly.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from custodes.errors import CustodesError
from custodes.forensics.models import Event, Timeline
from custodes.forensics.verify import Verified
from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.note import parse_note

__all__ = ["render_report"]

_env = Environment(
    loader=PackageLoader("custodes.forensics", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)

# Chart geometry (SVG user units).
_LABEL_W, _PLOT_W, _LANE_H, _TOP = 260, 900, 28, 24


# One SVG shape per kind of mark, and a word beside orders, halts and lifts, so no mark
# is told apart by colour alone. The numbers are ours; the title is escaped.
_SHAPES = {
    "decision": '<circle cx="{x}" cy="{y}" r="3.5" fill="#1f4e9c"/>',
    "halt": '<rect x="{x5}" y="{y5}" width="10" height="10" fill="#8a1c1c"/>',
    "order": '<path d="M{x} {yt} L{xr} {yb} L{xl} {yb} Z" fill="#000"/>',
    "lift": '<path d="M{x} {yt} L{xr} {y} L{x} {yd} L{xl} {y} Z" fill="#0b6e2e"/>',
}
_OTHER = '<rect x="{xb}" y="{yo}" width="3" height="12" fill="#5a3d8a"/>'
_WORDS = {"halt": ("HALT", "#8a1c1c"), "order": ("ORDER", "#000"), "lift": ("LIFT", "#0b4a20")}
_CHAR_W = 6.5  # an upper-case letter at font-size 10, generously
_ROWS = (-5.0, 13.0)  # a word's baseline above the lane's line, else below it


class _Labels:
    """Where each lane's words go: above its line, else below, else none (the mark keeps
    its shape and its title, and the table lists the event), so words never overlap."""

    def __init__(self) -> None:
        self._ends: dict[tuple[int, int], float] = {}

    def place(self, lane: int, x: float, word: str) -> float | None:
        start, end = x + 8, x + 8 + len(word) * _CHAR_W
        for row, dy in enumerate(_ROWS):
            if self._ends.get((lane, row), float("-inf")) + 2 <= start:
                self._ends[(lane, row)] = end
                return dy
        return None


def _mark(kind: str, x: float, y: float, title: str, label_dy: float | None) -> str:
    """One mark with its title (escaped) and, where ``label_dy`` is given, its word."""
    shape = _SHAPES.get(kind, _OTHER).format(
        x=x,
        y=y,
        x5=x - 5,
        y5=y - 5,
        xr=x + 7,
        xl=x - 7,
        yt=y - 7,
        yb=y + 6,
        yd=y + 7,
        xb=x - 1.5,
        yo=y - 6,
    )
    word = ""
    if kind in _WORDS and label_dy is not None:
        text, colour = _WORDS[kind]
        word = f'<text x="{x + 8}" y="{y + label_dy}" font-size="10" fill="{colour}">{text}</text>'
    return f"<g><title>{escape(title)}</title>{shape}{word}</g>"


def _when(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _key(event: Event) -> str:
    return f"{event.node}:{event.index}"


def _beside(event: Event) -> tuple[str, str]:
    """What stands beside an event: ('rationale' | 'committed' | 'reason' | '', text)."""
    record = event.clear.get("record") if event.clear else None
    if isinstance(record, dict) and "rationale" in record:
        return "rationale", f"{record.get('action', '')}: {record['rationale']}"
    if "rationale" in event.record:
        return "rationale", f"{event.record.get('action', '')}: {event.record['rationale']}"
    if "commitment" in event.record:
        return "committed", f"committed: {event.record['commitment']}"
    if "reason" in event.record:
        return "reason", str(event.record["reason"])
    return "", ""


def _ref(ref: dict[str, Any], nodes: dict[str, str]) -> str:
    """``GB:12`` for a log in the bundle, else the other log's origin and index."""
    node = nodes.get(str(ref.get("origin")))
    return f"{node}:{ref.get('index')}" if node else f"{ref.get('origin')}#{ref.get('index')}"


def _row(
    n: int, event: Event, concurrent: dict[str, list[str]], nodes: dict[str, str]
) -> tuple[Any, ...]:
    """One table row, in the template's column order (a tuple: unpacked, not looked up)."""
    refs = ", ".join(_ref(r, nodes) for r in event.refs)
    beside_kind, beside = _beside(event)
    key = _key(event)
    return (
        n,
        _when(event.at),
        key,
        event.kind,
        ", ".join(event.agents),
        event.summary,
        beside_kind == "committed",
        beside,
        refs,
        ", ".join(concurrent.get(key, [])),
    )


def _lanes(timeline: Timeline) -> list[tuple[str, str]]:
    """(kind, name) per lane: the agents, then the member nodes."""
    nodes = sorted({e.node for e in timeline.events} | set(timeline.checkpoints))
    return [("agent", a) for a in timeline.agents] + [("node", n) for n in nodes]


def _marks(timeline: Timeline, lanes: list[tuple[str, str]]) -> Markup:
    """Every event's marks on its node's lane and its agents' lanes, as SVG."""
    start, end = timeline.incident.start, timeline.incident.end
    span = max((end - start).total_seconds(), 1e-9)
    lane_of = {lane: i for i, lane in enumerate(lanes)}
    labels = _Labels()
    marks = []
    for event in sorted(timeline.events, key=lambda e: e.at):  # words placed left to right
        offset = min(max((event.at - start).total_seconds() / span, 0.0), 1.0)
        x = round(_LABEL_W + offset * _PLOT_W, 1)
        title = f"{_key(event)} {event.kind}: {event.summary}"
        for lane in [("node", event.node)] + [("agent", a) for a in event.agents]:
            i = lane_of.get(lane)
            if i is not None:
                dy = labels.place(i, x, _WORDS[event.kind][0]) if event.kind in _WORDS else None
                marks.append(_mark(event.kind, x, _TOP + i * _LANE_H + _LANE_H / 2, title, dy))
    return Markup("\n".join(marks))  # noqa: S704 - built above from escaped text only


def _checkpoints(timeline: Timeline) -> list[dict[str, Any]]:
    rows = []
    for node in sorted(timeline.checkpoints):
        note = timeline.checkpoints[node]
        try:
            parsed = parse_note(note.encode())
            size: int | str = parse_checkpoint(parsed.text).size
            signatures = len(parsed.signatures)
        except CustodesError:
            size, signatures = "unreadable", 0
        rows.append(
            {
                "node": node,
                "origin": timeline.origins.get(node, ""),
                "size": size,
                "sigs": signatures,
            }
        )
    return rows


def _registry(timeline: Timeline) -> list[dict[str, Any]]:
    rows = []
    for state in timeline.registry:
        record = state.record
        rows.append(
            {
                "agent": state.agent_id,
                "status": state.status,
                "as_of": state.as_of,
                "name": str(record.get("name", "")),
                "operator": str(record.get("operator", "")),
                "risk": str(record.get("risk_tier", "")),
                "proof": _key(state.event) if state.event else "not registered yet",
            }
        )
    return rows


def _counts(timeline: Timeline) -> dict[str, int]:
    counts: dict[str, int] = {}
    for event in timeline.events:
        counts[event.kind] = counts.get(event.kind, 0) + 1
    return counts


def render_report(
    timeline: Timeline, verified: Verified | None, *, failure: str | None = None
) -> str:
    """The report as one HTML document (UTF-8 text), standalone and script-free.

    ``verified`` None: the bundle was not checked, or (with ``failure``, the reason)
    it did not verify; the report says so at its top.
    """
    concurrent: dict[str, list[str]] = {}
    for a, b in timeline.concurrent:
        concurrent.setdefault(a, []).append(b)
        concurrent.setdefault(b, []).append(a)
    nodes = {origin: node for node, origin in timeline.origins.items()}
    lanes = _lanes(timeline)
    height = _TOP + len(lanes) * _LANE_H + 24
    return _env.get_template("report.html").render(
        t=timeline,
        verified=verified,
        failure=failure,
        when=_when,
        rows=[_row(n, e, concurrent, nodes) for n, e in enumerate(timeline.events, 1)],
        lanes=[(kind, name, _TOP + i * _LANE_H) for i, (kind, name) in enumerate(lanes)],
        marks=_marks(timeline, lanes),
        counts=_counts(timeline),
        checkpoints=_checkpoints(timeline),
        registry=_registry(timeline),
        chart={"w": _LABEL_W + _PLOT_W + 20, "h": height, "x0": _LABEL_W, "x1": _LABEL_W + _PLOT_W},
        lane_h=_LANE_H,
    )

"""Reports: the rows of the terminal table and a self-contained HTML report.

The HTML report is one file with no external reference (no script, font, stylesheet or
image to fetch): inline CSS and inline SVG charts, one per metric, each an ``<svg>``
with ``data-metric`` naming it:

- ``asr``: ASR per attack family with its 95% whisker by behaviour cluster (Wilson's
  on results recorded before clustered intervals), the no-attack baseline as
  a dashed line, and the pooled ``overall`` bar;
- ``outcomes``: per family, how the attempts split into successes, partial answers,
  other valid answers (refusals), target errors and undetermined verdicts;
- ``trend`` and ``drift`` (only with two epochs or more): overall ASR and over-refusal
  per epoch, and the Drift-Coefficient of each epoch against the first.

Everything a person needs to read the figures is printed beside them: judge id@version
with its Se/Sp, attempts per sample, the suite digest, and every count.

An adaptive run adds its best-of-k table (ASR@k beside k retries of the static rate);
every run with evidence links ``evidence/epoch-E.json`` (with its sha256) and shows
each successful transcript in a ``<details>`` element with ``data-evidence``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from custodes.evals.results import AdaptiveFigures, EvalResult, FamilyFigures

__all__ = [
    "BREAKDOWN_HEADERS",
    "adaptive_rows",
    "asr_chart",
    "breakdown_rows",
    "drift_chart",
    "interval_line",
    "judge_line",
    "outcome_chart",
    "pct",
    "render_html",
    "summary_rows",
    "trend_chart",
]

_W, _LABEL, _ROW = 760, 210, 22
_PLOT = _W - _LABEL - 130
_COLOURS = {
    "success": "#c0392b",
    "partial": "#e67e22",
    "refused": "#27ae60",
    "error": "#7f8c8d",
    "undetermined": "#bdc3c7",
}


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _interval(pair: Sequence[float] | None) -> str:
    return "n/a" if pair is None else f"[{pair[0]:.1%}, {pair[1]:.1%}]"


_CALIBRATION = {
    "heldout": "held-out validation",
    "run": "labelled audit sample of this run, inverse-probability weighted",
}


def judge_line(result: EvalResult) -> str:
    judge = result.judge
    if judge.deterministic:
        return f"judge {judge.label}: deterministic (tool-call check), nothing to correct"
    if judge.sensitivity is None or judge.specificity is None:
        return f"judge {judge.label} (sensitivity and specificity not measured)"
    where = _CALIBRATION.get(judge.calibration or "", "")
    return (
        f"judge {judge.label}: Se {judge.sensitivity:.3f} ({judge.positives} positives), "
        f"Sp {judge.specificity:.3f} ({judge.negatives} negatives) on {judge.dataset}"
        + (f" ({where})" if where else "")
        + ", strict success (COMPLY, UNSAFE_ACTION)"
    )


def interval_line(result: EvalResult) -> str:
    """How the intervals were computed, printed under every table of figures."""
    overall = result.families[-1]
    if overall.clustered is None:
        return "intervals: Wilson 95%, attempts treated as independent (an older result)"
    return (
        "intervals: Wilson 95% treats attempts as independent; 'by behaviour' is Wilson on "
        f"the design-effect-adjusted n ({overall.interval_method}; overall design effect "
        f"{overall.design_effect or 1.0:.2f}); judge-corrected: Rogan–Gladen, Se/Sp Beta "
        "posteriors × behaviour-cluster bootstrap, shown only where validation supports it"
    )


def _corrected_cell(f: FamilyFigures) -> str:
    if f.corrected is None:
        return "n/a" if f.corrected_note is None else f"n/a ({f.corrected_note})"
    return f"{f.corrected[0]:.1%} {_interval(f.corrected[1:])}"


def summary_rows(result: EvalResult) -> list[tuple[str, ...]]:
    """Family, ASR, Wilson 95%, by-behaviour 95%, successes/valid, partial, errors,
    undetermined, corrected."""
    rows: list[tuple[str, ...]] = []
    for f in result.families:
        rows.append(
            (
                f.family,
                pct(f.asr),
                _interval(f.wilson if f.valid else None),
                _interval(f.clustered if f.valid else None),
                f"{f.successes}/{f.valid}",
                str(f.partial),
                str(f.errors),
                str(f.undetermined),
                _corrected_cell(f),
            )
        )
    return rows


# --- SVG ---------------------------------------------------------------------------------


BREAKDOWN_HEADERS = (
    "value",
    "ASR",
    "95% (by behaviour)",
    "succ./valid",
    "partial",
    "errors",
    "behaviours",
    "over-refusal (benign)",
)


def breakdown_rows(result: EvalResult, by: str) -> list[tuple[str, ...]]:
    """One row per harm category (``by="harm_category"``) or language (``"language"``)."""
    rows: list[tuple[str, ...]] = []
    for b in result.breakdowns:
        if b.by != by:
            continue
        benign = "n/a" if b.benign_valid is None else f"{pct(b.over_refusal)} "
        if b.benign_valid is not None:
            benign += f"({b.benign_refusals}/{b.benign_valid})"
        rows.append(
            (
                b.value,
                pct(b.asr),
                _interval((b.clustered or b.wilson) if b.valid else None),
                f"{b.successes}/{b.valid}",
                str(b.partial),
                str(b.errors),
                str(b.behaviours),
                benign,
            )
        )
    return rows


def _x(value: float) -> float:
    return _LABEL + value * _PLOT


def _svg(metric: str, title: str, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" data-metric="{metric}" role="img" '
        f'width="{_W}" height="{height}" viewBox="0 0 {_W} {height}">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _axis(top: int, bottom: int) -> list[str]:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>'
            f'<text x="{x:.1f}" y="{bottom + 14}" font-size="11" text-anchor="middle">'
            f"{tick:.0%}</text>"
        )
    return parts


def _label(y: float, text: str) -> str:
    return (
        f'<text x="{_LABEL - 8}" y="{y:.1f}" font-size="12" text-anchor="end" '
        f'dominant-baseline="middle">{escape(text)}</text>'
    )


def _asr_bar(f: FamilyFigures, y: float) -> list[str]:
    parts = [_label(y, f.family)]
    if f.asr is None:
        parts.append(f'<text x="{_x(0) + 4}" y="{y:.1f}" font-size="11">no valid attempts</text>')
        return parts
    colour = "#34495e" if f.family == "overall" else "#c0392b"
    low, high = _x(f.interval[0]), _x(f.interval[1])
    parts += [
        f'<rect x="{_x(0):.1f}" y="{y - 7:.1f}" width="{f.asr * _PLOT:.1f}" height="14" '
        f'fill="{colour}" opacity="0.8"><title>{escape(f.family)}: {pct(f.asr)} '
        f"({f.successes}/{f.valid})</title></rect>",
        f'<line x1="{low:.1f}" y1="{y:.1f}" x2="{high:.1f}" y2="{y:.1f}" stroke="#000"/>',
        f'<line x1="{low:.1f}" y1="{y - 5:.1f}" x2="{low:.1f}" y2="{y + 5:.1f}" stroke="#000"/>',
        f'<line x1="{high:.1f}" y1="{y - 5:.1f}" x2="{high:.1f}" y2="{y + 5:.1f}" stroke="#000"/>',
        f'<text x="{high + 6:.1f}" y="{y:.1f}" font-size="11" dominant-baseline="middle">'
        f"{pct(f.asr)} ({f.successes}/{f.valid})</text>",
    ]
    return parts


def asr_chart(result: EvalResult) -> str:
    families = result.families
    height = 30 + _ROW * len(families) + 30
    body = _axis(20, height - 30)
    for n, figures in enumerate(families):
        body += _asr_bar(figures, 30 + n * _ROW + _ROW / 2)
    baseline = families[0].baseline_asr
    if baseline is not None:
        x = _x(baseline)
        body.append(
            f'<line x1="{x:.1f}" y1="20" x2="{x:.1f}" y2="{height - 30}" stroke="#2c3e50" '
            f'stroke-dasharray="4 3"><title>no-attack baseline {pct(baseline)}</title></line>'
            f'<text x="{x + 3:.1f}" y="14" font-size="11">baseline {pct(baseline)}</text>'
        )
    title = "ASR per attack family with 95% intervals by behaviour (Wilson on older results)"
    return _svg("asr", title, height, body)


def _segments(f: FamilyFigures) -> list[tuple[str, int]]:
    refused = f.valid - f.successes - f.partial
    return [
        ("success", f.successes),
        ("partial", f.partial),
        ("refused", refused),
        ("error", f.errors),
        ("undetermined", f.undetermined),
    ]


def _stack(f: FamilyFigures, y: float) -> list[str]:
    parts = [_label(y, f.family)]
    total = f.valid + f.errors + f.undetermined
    left = _x(0)
    for name, count in _segments(f):
        if not total or not count:
            continue
        width = count / total * _PLOT
        parts.append(
            f'<rect x="{left:.1f}" y="{y - 7:.1f}" width="{width:.1f}" height="14" '
            f'fill="{_COLOURS[name]}"><title>{escape(f.family)}: {count} {name}</title></rect>'
        )
        left += width
    return parts


def outcome_chart(result: EvalResult) -> str:
    families = result.families
    height = 30 + _ROW * len(families) + 40
    body = _axis(20, height - 40)
    for n, figures in enumerate(families):
        body += _stack(figures, 30 + n * _ROW + _ROW / 2)
    for n, (name, colour) in enumerate(_COLOURS.items()):
        x = _LABEL + n * 110
        body.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{x + 14}" y="{height - 5}" font-size="11">{name}</text>'
        )
    return _svg("outcomes", "How the attempts of each family were judged", height, body)


@dataclass(frozen=True)
class _Frame:
    """A line chart's plot area: epochs along x, values from 0 to ``scale`` up y."""

    epochs: tuple[int, ...]
    scale: float
    top: int = 20
    bottom: int = 180

    def at(self, epoch: int, value: float) -> tuple[float, float]:
        x = 60 + self.epochs.index(epoch) / max(1, len(self.epochs) - 1) * (_W - 120)
        return x, self.bottom - value / self.scale * (self.bottom - self.top)

    def axes(self, percent: bool) -> list[str]:
        body = [
            f'<line x1="60" y1="{self.bottom}" x2="{_W - 60}" y2="{self.bottom}" stroke="#999"/>'
        ]
        for tick in (0.0, self.scale / 2, self.scale):
            _, y = self.at(self.epochs[0], tick)
            text = f"{tick:.0%}" if percent else f"{tick:.3g}"
            body.append(f'<text x="54" y="{y:.1f}" font-size="11" text-anchor="end">{text}</text>')
        for epoch in self.epochs:
            x, _ = self.at(epoch, 0)
            body.append(
                f'<text x="{x:.1f}" y="{self.bottom + 16}" font-size="11" text-anchor="middle">'
                f"epoch {epoch}</text>"
            )
        return body


def _series(frame: _Frame, n: int, name: str, points: list[tuple[int, float]]) -> list[str]:
    colour = ("#c0392b", "#2980b9", "#8e44ad")[n % 3]
    coords = [frame.at(e, v) for e, v in points]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    body = [f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>']
    body += [
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}">'
        f"<title>{escape(name)} epoch {e}: {v:.3f}</title></circle>"
        f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" font-size="10" fill="{colour}">{v:.3g}</text>'
        for (x, y), (e, v) in zip(coords, points, strict=True)
    ]
    body.append(
        f'<text x="{70 + n * 200}" y="214" font-size="12" fill="{colour}">{escape(name)}</text>'
    )
    return body


def _line_chart(
    metric: str, title: str, series: dict[str, list[tuple[int, float]]], *, percent: bool = True
) -> str:
    epochs = tuple(sorted({e for points in series.values() for e, _ in points}))
    largest = max((v for points in series.values() for _, v in points), default=0.0)
    scale = 1.0 if percent else max(0.05, largest * 1.25)
    frame = _Frame(epochs, scale)
    body = frame.axes(percent)
    for n, (name, points) in enumerate(series.items()):
        body += _series(frame, n, name, points)
    return _svg(metric, title, 220, body)


def trend_chart(results: Sequence[EvalResult]) -> str:
    asr = [(r.epoch, r.family("overall").asr) for r in results]
    refusal = [(r.epoch, r.over_refusal.rate) for r in results]
    series = {
        "overall ASR": [(e, v) for e, v in asr if v is not None],
        "over-refusal": [(e, v) for e, v in refusal if v is not None],
    }
    return _line_chart("trend", "Overall ASR and over-refusal per epoch", series)


def drift_chart(results: Sequence[EvalResult]) -> str:
    points = [(results[0].epoch, 0.0)] + [(r.epoch, r.drift.dc) for r in results if r.drift]
    title = "Drift-Coefficient against the first epoch"
    return _line_chart("drift", title, {"DC": points}, percent=False)


# --- the page ----------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:860px;color:#222}
table{border-collapse:collapse;font-size:13px;margin:1em 0}
td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:right;white-space:nowrap}
.meta td{white-space:normal}
td:first-child,th:first-child{text-align:left}
.meta td{text-align:left}
h2{margin-top:1.6em;font-size:1.15em}
pre{white-space:pre-wrap;background:#f6f6f6;padding:4px 8px;font-size:12px}
"""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f'<table class="{css}"><tr>{head}</tr>{body}</table>'


def _meta(result: EvalResult) -> str:
    o = result.over_refusal
    rows = [
        ("suite", f"{result.suite.id} {result.suite.version} ({result.suite.digest})"),
        ("target", result.target),
        ("model", result.model or "n/a"),
        ("agent", result.agent_id or "n/a"),
        ("run", f"{result.run_id}, epoch {result.epoch}"),
        ("attempts per sample", str(result.attempts)),
        ("samples", str(result.samples)),
        ("judge", judge_line(result)),
        (
            "over-refusal (benign controls)",
            f"{pct(o.rate)} {_interval(o.wilson if o.valid else None)} "
            f"({o.refusals}/{o.valid}; {o.errors} errors, {o.undetermined} undetermined)",
        ),
        (
            "started / finished",
            f"{result.started_at:%Y-%m-%d %H:%M:%S} / {result.finished_at:%H:%M:%S}",
        ),
    ]
    return _table(("", ""), rows, "meta")


def _drift_rows(results: Sequence[EvalResult]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for r in results:
        if r.drift is None:
            continue
        d = r.drift
        rows.append(
            (
                f"{d.baseline_epoch} → {r.epoch}",
                f"{d.dc:.3f}" + (f" ({d.dc_terms})" if d.dc_terms else ""),
                f"{d.p_beh:.3g}",
                "n/a" if d.d_sem is None else f"{d.d_sem:.3f} (p {d.p_sem:.3g})",
                "n/a" if d.delta_h is None else f"{d.delta_h[0]:+.1%}",
                "n/a" if d.delta_b is None else f"{d.delta_b[0]:+.1%}",
                ("ALERT: " + ", ".join(d.alerted) if d.alerted else "ALERT") if d.alert else "no",
            )
        )
    return rows


def adaptive_rows(figures: AdaptiveFigures) -> list[tuple[str, ...]]:
    """k, ASR@k, Wilson 95%, broken/behaviours, static ASR retried k times."""
    return [
        (
            str(a.k),
            pct(a.asr),
            _interval(a.wilson if a.behaviours else None),
            f"{a.successes}/{a.behaviours}",
            pct(a.static_at_k),
        )
        for a in figures.at_k
    ]


def _adaptive_section(figures: AdaptiveFigures) -> list[str]:
    median = figures.median_queries_to_success
    note = (
        f"{figures.method}: {figures.successes}/{figures.behaviours} behaviours broken within "
        f"{figures.budget} queries ({figures.queries} queries in all, median "
        f"{'n/a' if median is None else f'{median:g}'} to first success; "
        f"{figures.errors} errors; {figures.attacker_failures} malformed attacker answers). "
        f"Static (no-attack) ASR {pct(figures.static_asr)}."
    )
    headers = ("k", "ASR@k", "Wilson 95%", "broken/behaviours", "static retried k times")
    return [
        f"<h2>Adaptive attack: {escape(figures.method)}, best-of-k</h2>",
        f"<p>{escape(note)}</p>",
        _table(headers, adaptive_rows(figures)),
    ]


_MAX_SHOWN = 200  # transcripts shown inline; the evidence file holds all of them


def _transcript(entry: Mapping[str, Any]) -> str:
    turns = "".join(
        f"<p><b>{escape(str(m.get('role', '')))}</b></p>"
        f"<pre>{escape(str(m.get('content', '')))}</pre>"
        for m in entry.get("conversation", ())
    )
    summary = (
        f"{entry.get('behavior')} via {entry.get('family')} "
        f"({entry.get('outcome')}, {entry.get('queries_to_jailbreak')} queries)"
    )
    return f"<details data-evidence><summary>{escape(summary)}</summary>{turns}</details>"


def _evidence_section(result: EvalResult, evidence: Mapping[str, Any] | None) -> list[str]:
    ref = result.evidence
    if ref is None:
        return []
    parts = [
        "<h2>Evidence</h2>",
        f'<p><a href="{escape(ref.path)}">{escape(ref.path)}</a> (JailbreakBench artifact '
        f"shape, sha256 {ref.sha256}): {ref.jailbreaks} successful attacks.</p>",
    ]
    entries = list((evidence or {}).get("jailbreaks", ()))
    parts += [_transcript(e) for e in entries[:_MAX_SHOWN]]
    if len(entries) > _MAX_SHOWN:
        parts.append(f"<p>{len(entries) - _MAX_SHOWN} more in the evidence file.</p>")
    return parts


def render_html(results: Sequence[EvalResult], evidence: Mapping[str, Any] | None = None) -> str:
    """The report over a run's finished epochs; the last one is shown in detail.

    ``evidence`` is the last epoch's evidence document, whose transcripts are shown.
    """
    latest = results[-1]
    headers = (
        "family",
        "ASR",
        "Wilson 95%",
        "by behaviour 95%",
        "succ./valid",
        "partial",
        "errors",
        "undet.",
        "judge-corrected",
    )
    parts = [
        f"<h1>Safety benchmark: {escape(latest.suite.id)} against {escape(latest.target)}</h1>",
        _meta(latest),
        "<h2>Attack-success rate per family</h2>",
        asr_chart(latest),
        _table(headers, summary_rows(latest)),
        f"<p>{escape(interval_line(latest))}</p>",
        "<h2>Outcomes per family</h2>",
        outcome_chart(latest),
    ]
    for by, title in (("harm_category", "harm category"), ("language", "language")):
        rows = breakdown_rows(latest, by)
        if rows:
            parts += [f"<h2>ASR per {title} (attack families)</h2>"]
            parts.append(_table(BREAKDOWN_HEADERS, rows, f"breakdown-{by}"))
    for figures in latest.adaptive:
        parts += _adaptive_section(figures)
    if len(results) > 1:
        parts += ["<h2>Across epochs</h2>", trend_chart(results), drift_chart(results)]
        parts.append(
            _table(
                (
                    "epochs",
                    "DC",
                    "p (beh.)",
                    "semantic",
                    "Δ ASR harmful",
                    "Δ over-refusal",
                    "alert",
                ),
                _drift_rows(results),
            )
        )
    parts += _evidence_section(latest, evidence)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Custodes eval {escape(latest.run_id)}</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )

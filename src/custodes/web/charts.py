"""Server-side SVG charts: a series of rates in [0, 1] by run, as inline SVG geometry.

No script and no external asset: the template draws the polyline, points and axis
ticks this module lays out, with a <title> and <desc>, and the page carries the same
figures as a table (the text alternative).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Chart", "Point", "series_chart"]

WIDTH, HEIGHT = 560, 200
_LEFT, _RIGHT, _TOP, _BOTTOM = 44, 12, 12, 28
_MAX_POINTS = 200  # the newest runs, so a long history stays a readable chart


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str  # the run it stands for (its time), for the point's own <title>
    value: float


@dataclass(frozen=True)
class Chart:
    title: str
    width: int
    height: int
    points: tuple[Point, ...]
    polyline: str
    ticks: tuple[tuple[float, str], ...]  # (y pixel, label) on the value axis
    left: int
    right: int
    baseline: float
    description: str


def _y(value: float) -> float:
    span = HEIGHT - _TOP - _BOTTOM
    return round(_TOP + (1.0 - min(max(value, 0.0), 1.0)) * span, 1)


def series_chart(title: str, series: list[tuple[str | None, float]]) -> Chart | None:
    """A line chart of ``series`` ((label, value in [0, 1]) in run order); None if empty."""
    series = series[-_MAX_POINTS:]
    if not series:
        return None
    span = WIDTH - _LEFT - _RIGHT
    step = span / max(len(series) - 1, 1)
    points = tuple(
        Point(
            x=round(_LEFT + (i * step if len(series) > 1 else span / 2), 1),
            y=_y(value),
            label=label or f"run {i + 1}",
            value=value,
        )
        for i, (label, value) in enumerate(series)
    )
    values = [p.value for p in points]
    description = (
        f"{len(points)} run(s); lowest {min(values):.3f}, highest {max(values):.3f}, "
        f"latest {values[-1]:.3f}."
    )
    return Chart(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        points=points,
        polyline=" ".join(f"{p.x},{p.y}" for p in points),
        ticks=tuple((_y(v), f"{v:.2f}") for v in (0.0, 0.25, 0.5, 0.75, 1.0)),
        left=_LEFT,
        right=WIDTH - _RIGHT,
        baseline=_y(0.0),
        description=description,
    )

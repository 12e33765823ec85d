"""The demo's forensic act: reconstruct the kill-switch incident from the members' logs.

After the acts, the GB regulator asks every member for what concerns the suspended GB
finance agent and its counterparties (depth 1) over the demo's window: each member issues
the GB regulator a token at its own node, as a member would for an investigation, so each
node shows it exactly what it is entitled to there. The slices are ordered causally,
every entry is proven against a checkpoint cosigned by a quorum of members, and two files
are written: ``report.html`` (a person reads it) and ``bundle.json`` (``custodes
forensics verify`` checks it with no network). The bundle is then verified offline, and a
tampered copy must fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from custodes.client import Client
from custodes.client.forensics import gather, ordered
from custodes.errors import CustodesError
from custodes.forensics.bundle import read_bundle, write_bundle
from custodes.forensics.models import Incident, Timeline
from custodes.forensics.report import render_report
from custodes.forensics.verify import verify_bundle

__all__ = ["ForensicsScenario", "play_forensics"]


@dataclass
class ForensicsScenario:
    report: Path | None = None
    bundle: Path | None = None
    events: int = 0
    members: int = 0
    tamper_refused: str = ""
    steps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.report is not None and self.events > 0 and bool(self.tamper_refused)


def _tokens(urls: Mapping[str, str], admin_token: str, regulator: str) -> dict[str, str]:
    """A token for ``regulator`` at every member's node, issued by that node's admin."""
    tokens = {}
    for code, url in urls.items():
        with Client(url, admin_token=admin_token, timeout=10.0) as admin:
            tokens[code] = str(admin.issue_token(regulator)["token"])
    return tokens


def play_forensics(
    urls: Mapping[str, str],
    admin_token: str,
    *,
    regulator: str,
    agent: str,
    since: datetime,
    out: Path,
    console: Console,
) -> ForensicsScenario:
    """Reconstruct the incident around ``agent`` since ``since``; write report and bundle."""
    scenario = ForensicsScenario()
    incident = Incident(agents=[agent], depth=1, start=since, end=datetime.now(UTC))
    tokens = _tokens(urls, admin_token, regulator)
    seed = next(iter(urls.values()))
    gathered = gather(incident, seed=seed, tokens=tokens, asked_by=regulator)
    timeline = ordered(incident, gathered)
    verified = verify_bundle(timeline)
    out.mkdir(parents=True, exist_ok=True)
    scenario.bundle, scenario.report = out / "bundle.json", out / "report.html"
    write_bundle(timeline, scenario.bundle)
    scenario.report.write_text(render_report(timeline, verified), encoding="utf-8")
    scenario.events, scenario.members = len(timeline.events), len(timeline.checkpoints)
    kinds = sorted({e.kind for e in timeline.events})
    scenario.steps.append(
        f"{regulator} gathered {scenario.events} entries ({', '.join(kinds)}) about "
        f"{len(timeline.agents)} agents from {scenario.members} members, in causal order"
    )
    scenario.steps.append(
        "every entry proven against a checkpoint cosigned by a quorum of members "
        f"({len(timeline.gaps)} gaps)"
    )
    reread = read_bundle(scenario.bundle.read_bytes())
    verify_bundle(reread)
    scenario.steps.append(f"report: {scenario.report}")
    scenario.steps.append(f"evidence bundle: {scenario.bundle} (custodes forensics verify)")
    scenario.tamper_refused = _tampered(reread)
    scenario.steps.append(f"a tampered copy is refused offline: {scenario.tamper_refused}")
    return scenario


def _tampered(timeline: Timeline) -> str:
    """Forge the first entry's leaf hash in a copy: the offline check must say why not."""
    if not timeline.events:
        return ""
    first = timeline.events[0]
    forged = first.model_copy(update={"leaf_hash": "0" * 64})
    copy = timeline.model_copy(update={"events": [forged, *timeline.events[1:]]})
    try:
        verify_bundle(copy)
    except CustodesError as exc:
        return str(exc)
    return ""

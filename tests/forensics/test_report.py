"""The HTML report: standalone, escaped, accessible, and saying what was verified."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from custodes.forensics.models import Timeline
from custodes.forensics.report import render_report
from custodes.forensics.verify import verify_bundle
from tests.forensics.synthetic import SyntheticAlliance, synthetic_alliance


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


@pytest.fixture(scope="module")
def alliance() -> SyntheticAlliance:
    return synthetic_alliance(60)


@pytest.fixture(scope="module")
def entitled(alliance: SyntheticAlliance) -> Timeline:
    return alliance.timeline(clear=True)


@pytest.fixture(scope="module")
def html(entitled: Timeline) -> str:
    return render_report(entitled, verify_bundle(entitled))


def test_the_report_is_standalone_with_no_scripts_or_external_assets(html: str) -> None:
    tags = _parse(html).tags
    assert not [t for t, _ in tags if t in {"script", "link", "img", "iframe", "object"}]
    assert not [a for _, a in tags if "src" in a or "href" in a]
    assert not [a for _, a in tags if any(k.startswith("on") for k in a)]
    assert "<style>" in html  # inline, the only styling
    assert "http://" not in html  # nothing fetched, no links out
    assert "https://" not in html


def test_the_report_is_accessible(html: str) -> None:
    tags = _parse(html).tags
    assert ("html", {"lang": "en"}) in tags
    assert [t for t, _ in tags].count("h1") == 1
    assert [t for t, _ in tags].count("h2") >= 5
    assert all(a.get("scope") == "col" for t, a in tags if t == "th")
    svg = next(a for t, a in tags if t == "svg")
    assert svg["role"] == "img"
    assert svg["aria-labelledby"] == "chart-title chart-desc"
    assert ("title", {"id": "chart-title"}) in tags
    assert ("p", {"id": "chart-desc"}) in tags


def test_the_header_names_the_incident_and_the_verification(html: str, entitled: Timeline) -> None:
    assert "Verified offline:" in html
    assert "60 events from 4 members" in html
    assert "regulator:gb" in html
    assert entitled.incident.agents[0] in html
    assert "2026-11-30T09:00:00Z" in html


def test_each_event_is_listed_in_causal_order_with_its_rationale(
    html: str, entitled: Timeline
) -> None:
    positions = [html.index(f'<td class="mono">{e.node}:{e.index}</td>') for e in entitled.events]
    assert positions == sorted(positions)
    for event in entitled.events:
        if event.clear is not None:
            rationale = event.clear["record"]["rationale"].replace("<", "&lt;").replace(">", "&gt;")
            assert rationale in html
    assert "<ok>" not in html  # the rationales' markup-like text is escaped
    cited = next(e for e in entitled.events if e.refs)
    ref = cited.refs[0]
    target = next(
        e for e in entitled.events if (e.origin, e.index) == (ref["origin"], ref["index"])
    )
    row = html[html.index(f'<td class="mono">{cited.node}:{cited.index}</td>') :]
    assert f'<td class="mono">{target.node}:{target.index}</td>' in row[: row.index("</tr>")]


def test_the_public_sees_commitments_where_it_is_not_entitled(
    alliance: SyntheticAlliance,
) -> None:
    public = alliance.timeline(clear=False)
    html = render_report(public, verify_bundle(public))
    committed = [e for e in public.events if "commitment" in e.record]
    assert committed
    for event in committed:
        assert f"committed: {event.record['commitment']}" in html
    assert "the public (no token)" in html


def test_orders_halts_and_lifts_are_marked_with_words_not_colour_alone(html: str) -> None:
    text = "".join(_parse(html).text)
    for label in ("ORDER", "HALT", "LIFT"):
        assert re.search(rf"\b{label}\b", text), label
    tags = _parse(html).tags
    assert [t for t, _ in tags].count("circle") > 0  # decisions, a shape of their own


def test_the_registry_state_at_the_start_is_shown(html: str, entitled: Timeline) -> None:
    section = html[html.index('id="h-registry"') : html.index('id="h-chart"')]
    for state in entitled.registry:
        assert state.agent_id in section
    assert "operator:acme-gb" in section


def test_concurrent_pairs_gaps_and_skew_are_shown(entitled: Timeline) -> None:
    first, second = entitled.events[0], entitled.events[1]
    pair = (f"{first.node}:{first.index}", f"{second.node}:{second.index}")
    shown = entitled.model_copy(
        update={"concurrent": [pair], "gaps": ["AU: not a member; asked anyway"]}
    )
    html = render_report(shown, None)
    assert f'<td class="mono">{pair[1]}</td></tr>' in html
    assert "AU: not a member; asked anyway" in html
    assert "0.500" in html  # each node's skew bound
    assert "Not verified." in html


def test_text_from_the_bundle_cannot_inject_markup(entitled: Timeline) -> None:
    evil = "<script>alert(1)</script>"
    event = entitled.events[0].model_copy(update={"summary": evil})
    shown = entitled.model_copy(
        update={"events": [event, *entitled.events[1:]], "gaps": [evil], "asked_by": evil}
    )
    html = render_report(shown, None)
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_failed_verification_is_the_first_thing_said(entitled: Timeline) -> None:
    html = render_report(entitled, None, failure="GB:3: inclusion proof does not lead <x>")
    header = html[: html.index("</header>")]
    assert "This bundle does not verify:" in header
    assert "GB:3: inclusion proof does not lead &lt;x&gt;" in header


def _words(html: str) -> list[tuple[float, float, str]]:
    """(x, y, word) of every word in the chart."""
    chart = html[html.index("<svg") : html.index("</svg>")]
    return [
        (float(x), float(y), word)
        for x, y, word in re.findall(
            r'<text x="([\d.]+)" y="([\d.]+)" font-size="10"[^>]*>(HALT|ORDER|LIFT)</text>',
            chart,
        )
    ]


def test_words_of_marks_at_one_moment_never_overlap(entitled: Timeline) -> None:
    first = entitled.events[0]
    kinds = ["halt", "order", "lift", "halt"]
    crowded = [
        first.model_copy(update={"kind": kind, "index": 10_000 + n, "agents": []})
        for n, kind in enumerate(kinds)
    ]
    html = render_report(entitled.model_copy(update={"events": crowded}), None)
    words = _words(html)
    assert len(words) == 2  # above the node's line, below it; the rest keep shape and title
    assert len({y for _, y, _ in words}) == 2
    assert html.count("<title>") >= len(kinds) + 1  # every mark keeps its title
    assert [w for _, _, w in words] == ["HALT", "ORDER"]  # the first two, in time order


def test_words_spread_out_in_time_all_stay(entitled: Timeline) -> None:
    first = entitled.events[0]
    span = entitled.incident.end - entitled.incident.start
    spread = [
        first.model_copy(
            update={
                "kind": "order",
                "index": 20_000 + n,
                "agents": [],
                "at": entitled.incident.start + span * (n / 5),
            }
        )
        for n in range(5)
    ]
    html = render_report(entitled.model_copy(update={"events": spread}), None)
    assert [w for _, _, w in _words(html)] == ["ORDER"] * 5

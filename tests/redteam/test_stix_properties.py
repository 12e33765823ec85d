"""Property tests: any valid report reads back unchanged from its STIX objects and from
the TAXII intake parser, and every object made from it passes stix2-validator."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custodes.redteam.models import (
    Affects,
    Metric,
    ProbeSpec,
    ProbeTurn,
    ProblemType,
    ReportBody,
    ToolOutput,
)
from custodes.redteam.stix import disclosure_objects, read_state, report_from_objects, stable_id
from custodes.redteam.suite import probe_key, redteam_suite
from custodes.redteam.validation import validate_objects
from tests.redteam.lifecycle import DISCLOSED, T0

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
words = st.lists(text, max_size=3, unique=True).map(tuple)
turns = st.lists(
    st.builds(
        ProbeTurn, role=st.sampled_from(["system", "user", "assistant", "tool"]), content=text
    ),
    max_size=3,
).map(tuple)
outputs = st.lists(st.builds(ToolOutput, tool=text, output=text), max_size=2).map(tuple)


@st.composite
def probes(draw: st.DrawFn) -> ProbeSpec:
    tools = draw(st.lists(text, max_size=3, unique=True))
    forbidden = draw(st.sampled_from([None, *tools]))
    return ProbeSpec(
        prompt=draw(text),
        goal=draw(text),
        turns=draw(turns),
        tool_outputs=draw(outputs),
        tools=tuple(tools),
        forbidden_tool=forbidden,
        harm_category=draw(st.none() | text),
        attempts=draw(st.integers(1, 100)),
    )


reports = st.builds(
    ReportBody,
    title=text,
    description=text,
    affects=st.builds(Affects, models=words.filter(bool), versions=words, skills=words),
    problemtype=st.builds(ProblemType, description=text),
    atlas=st.lists(
        st.sampled_from(["AML.T0054", "AML.T0051.000", "AML.T0051.001"]),
        min_size=1,
        max_size=3,
        unique=True,
    ).map(tuple),
    owasp=st.lists(
        st.sampled_from(["LLM01:2025", "LLM06:2025", "ASI01"]), max_size=3, unique=True
    ).map(tuple),
    probe=probes(),
    metrics=st.lists(st.builds(Metric, name=text, value=st.floats(0, 1)), max_size=2).map(tuple),
    evidence=st.none() | text,
    severity=st.sampled_from([None, "low", "medium", "high", "critical"]),
    tlp=st.sampled_from(["clear", "green", "amber", "amber+strict", "red"]),
    recipients=st.lists(
        st.sampled_from(["GB", "FR", "DE", "CA", "AU"]), max_size=3, unique=True
    ).map(tuple),
    reported_at=st.just(T0),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(report=reports)
def test_any_report_round_trips_and_validates(report: ReportBody) -> None:
    state = replace(DISCLOSED, report=report)
    objects = disclosure_objects(state)
    assert read_state(objects) == state
    assert validate_objects(objects) == {}
    reported = replace(state, stage="reported", triage=None, disclose=None)
    assert report_from_objects(disclosure_objects(reported), reported_at=T0) == report


@settings(max_examples=40, deadline=None)
@given(probes=st.lists(probes(), min_size=1, max_size=4))
def test_any_probes_make_a_suite_that_sends_each_once(probes: list[ProbeSpec]) -> None:
    pairs = [(stable_id("vulnerability", str(i)), p) for i, p in enumerate(probes)]
    suite = redteam_suite(pairs)
    sent = [p.behaviour_id for p in suite.probes()]
    assert sorted(sent) == sorted(probe_key(d) for d, _ in pairs)
    assert redteam_suite(pairs[::-1]).digest == suite.digest

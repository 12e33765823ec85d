"""The HTML report: self-contained, one valid SVG chart per metric, figures a person can read."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path

import pytest

from custodes.evals.judges import RuleJudge
from custodes.evals.report import interval_line, judge_line, render_html, summary_rows
from custodes.evals.results import EvalResult
from custodes.evals.rundir import RunDir
from custodes.evals.runner import RunRequest, run_eval
from custodes.evals.suite import Suite, load_suite
from custodes.evals.targets import ScriptedTarget

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[EvalResult]:
    suite: Suite = load_suite("core")
    out = tmp_path_factory.mktemp("report") / "run"
    for epoch, rate in enumerate((0.1, 0.4)):
        target = ScriptedTarget(default={"COMPLY": rate, "ERROR": 0.05}, seed=epoch)
        run_eval(RunRequest(suite, "core", target, RuleJudge(), out, attempts=2, epoch=epoch))
    return RunDir.open(out).results()


def charts(page: str) -> dict[str, ET.Element]:
    found: dict[str, ET.Element] = {}
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.DOTALL):
        element = ET.fromstring(svg)  # noqa: S314 (our own output; each chart must parse alone)
        assert element.tag == f"{SVG}svg"
        metric = element.attrib["data-metric"]
        assert metric not in found, f"two charts for {metric}"
        found[metric] = element
    return found


def test_one_epoch_has_an_asr_chart_and_an_outcome_chart(results: list[EvalResult]) -> None:
    page = render_html(results[:1])
    assert set(charts(page)) == {"asr", "outcomes"}


def test_several_epochs_add_trend_and_drift_charts(results: list[EvalResult]) -> None:
    found = charts(render_html(results))
    assert set(found) == {"asr", "outcomes", "trend", "drift"}
    assert results[1].drift is not None
    drift_points = found["drift"].findall(f"{SVG}circle")
    assert len(drift_points) == 2  # epoch 0 (zero by definition) and epoch 1


def test_the_asr_chart_has_a_bar_and_a_whisker_per_family(results: list[EvalResult]) -> None:
    latest = results[-1]
    chart = charts(render_html(results))["asr"]
    bars = list(chart.findall(f"{SVG}rect"))
    assert len(bars) == len(latest.families)
    titles = [r.find(f"{SVG}title").text for r in bars]  # type: ignore[union-attr]
    overall = latest.family("overall")
    assert f"overall: {overall.asr:.1%} ({overall.successes}/{overall.valid})" in titles
    assert "baseline" in ET.tostring(chart, encoding="unicode")


def test_the_page_is_self_contained(results: list[EvalResult]) -> None:
    page = render_html(results)
    without_namespaces = page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    # The one link allowed: to the run's own evidence file, beside the report (a link
    # a reader follows, nothing the page fetches).
    without_namespaces = re.sub(r'<a href="evidence/epoch-\d+\.json">', "", without_namespaces)
    assert not re.search(r"""(src|href)\s*=|https?://|<script|@import|url\(""", without_namespaces)
    assert page.startswith("<!DOCTYPE html>")


def test_the_page_states_the_judge_and_the_counts(results: list[EvalResult]) -> None:
    page = render_html(results)
    assert f"custodes.rule@{RuleJudge.version}" in page  # Se/Sp only once validated
    latest = results[-1]
    assert escape(judge_line(latest)) in page  # Se/Sp from held-out validation, where measured
    assert escape(interval_line(latest)) in page  # which interval is which
    assert latest.suite.digest in page
    for row in summary_rows(latest):
        assert f"<td>{row[0]}</td>" in page
        assert f"<td>{row[3]}</td>" in page


def test_names_from_a_suite_are_escaped(results: list[EvalResult], tmp_path: Path) -> None:
    hostile = results[-1].model_copy(update={"target": "<script>alert(1)</script>"})
    page = render_html([hostile])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page

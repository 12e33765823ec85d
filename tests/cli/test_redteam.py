"""``custodes redteam`` against a node served on loopback: a disclosure's life from the
command line, what it prints for scripts (``-o json``), and one-line refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.redteam.world import (
    AUDITOR,
    KEYS,
    MODEL_AGENT,
    OPERATOR,
    OTHER_OPERATOR,
    REGULATOR,
    RESEARCHER,
    SKILL_AGENT,
    World,
    served_world,
)
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.config import Settings
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.redteam.models import ReportBody

runner = CliRunner()


@pytest.fixture
def served(settings: Settings, tmp_path: Path) -> Iterator[tuple[World, str, dict[str, list[str]]]]:
    with served_world(settings) as (world, url):
        flags = {}
        for who in (REGULATOR, OPERATOR, OTHER_OPERATOR, RESEARCHER, AUDITOR):
            key_file = tmp_path / f"{who.replace(':', '_')}.key"
            write_secret(key_file, entry_key_string(who, KEYS[who]))
            flags[who] = [
                "--node",
                url,
                "--as",
                who,
                "--token",
                world.tokens[who],
                "--key",
                str(key_file),
            ]
        yield world, url, flags


def _run(*args: str) -> Any:
    done = runner.invoke(app, ["redteam", *args])
    assert done.exit_code == 0, done.output
    return orjson.loads(done.stdout) if "json" in args else done.stdout


def test_the_template_is_a_valid_report() -> None:
    template = _run("report", "--template")
    body = ReportBody.model_validate(
        {**orjson.loads(template), "reported_at": "2026-12-01T00:00:00Z"}
    )
    assert body.probe.prompt


def test_a_disclosure_from_the_command_line(
    served: tuple[World, str, dict[str, list[str]]], tmp_path: Path
) -> None:
    world, url, flags = served
    template = orjson.loads(_run("report", "--template"))
    template["affects"] = {"models": ["llama-x"], "skills": ["web-browse"]}
    report = tmp_path / "report.yaml"
    report.write_text(yaml.safe_dump(template))
    reported = _run("report", str(report), *flags[RESEARCHER], "-o", "json")
    disclosure = reported["disclosure"]
    _run("triage", disclosure, "--severity", "high", *flags[REGULATOR], "-o", "json")
    _run(
        "disclose", disclosure, "--tlp", "amber", "--to", "GB", "--embargo-days", "14",
        "--course-of-action", "Update the prompt guard.", *flags[REGULATOR], "-o", "json",
    )  # fmt: skip
    _run("status", disclosure, MODEL_AGENT, "patched", *flags[OPERATOR], "-o", "json")
    shown = _run("show", disclosure, "--node", url, "--token", world.tokens[OPERATOR], "-o", "json")
    assert {e["agent_id"]: e["status"] for e in shown["exposures"]} == {
        MODEL_AGENT: "patched",
        SKILL_AGENT: "exposed",
    }
    listed = _run("list", "--node", url, "--token", world.tokens[OPERATOR], "-o", "json")
    assert [d["id"] for d in listed] == [disclosure]
    table = _run("list", "--node", url, "--token", world.tokens[OPERATOR])
    assert "disclosed" in table


def test_a_refusal_is_one_line(
    served: tuple[World, str, dict[str, list[str]]], tmp_path: Path
) -> None:
    world, _url, flags = served
    disclosure = world.disclosed()
    args = ("redteam", "status", disclosure, MODEL_AGENT, "patched", *flags[OTHER_OPERATOR])
    assert_one_line_error(custodes(*args, cwd=tmp_path), "operator:acme")


def test_a_retest_result_is_cited_by_its_log_index(
    served: tuple[World, str, dict[str, list[str]]],
) -> None:
    """``--result INDEX``: the CLI reads the entry and cites it (origin, index, leaf hash
    in hex, as the node's check re-hashes it); the node verifies the fix."""
    world, url, flags = served
    disclosure = world.disclosed()
    cited = world.retest_result(disclosure, MODEL_AGENT, successes=0)
    index = str(cited["index"])
    _run("status", disclosure, MODEL_AGENT, "verified", "--result", index, *flags[AUDITOR])
    shown = _run("show", disclosure, "--node", url, "--token", world.tokens[OPERATOR], "-o", "json")
    verified = {e["agent_id"]: e for e in shown["exposures"]}[MODEL_AGENT]
    assert verified["status"] == "verified"
    assert verified["evidence"] == cited

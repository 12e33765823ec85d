"""``custodes redteam suite export``: the node's disclosed probes as a suite file the
existing runner loads (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import typer
from sqlalchemy import insert
from tests.redteam.lifecycle import AGENTIC_PROBE, DISCLOSURE, REPORT
from typer.testing import CliRunner, Result

from custodes.cli.redteam_suite import suite_app
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.evals.suite import load_suite
from custodes.node import Node
from custodes.redteam.models import ReportBody, Stage
from custodes.redteam.stix import stable_id
from custodes.redteam.store import redteam_disclosures
from custodes.redteam.suite import probe_key
from custodes.redteam.tlp import Audience

UNDISCLOSED = stable_id("vulnerability", "test", "not-yet")
INCOMPLETE = stable_id("vulnerability", "test", "incomplete")

app = typer.Typer()
app.add_typer(suite_app, name="suite")


def hold(node: Node, disclosure: str, stage: Stage, report: ReportBody | None) -> None:
    audience = Audience(tlp="amber", stage=stage, origin="FR", parties=("GB", "FR"))
    now = time.time()
    with node.engine.begin() as conn:
        conn.execute(
            insert(redteam_disclosures).values(
                id=disclosure,
                origin="FR",
                stage=stage,
                tlp="amber",
                audience=audience.model_dump_json(),
                title="t",
                report="{}" if report is None else report.model_dump_json(),
                created_at=now,
                updated_at=now,
            )
        )


def export(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("CUSTODES_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("CUSTODES_DATABASE_URL", settings.db_url)
    monkeypatch.setenv("CUSTODES_ORIGIN", settings.origin)
    return CliRunner().invoke(app, ["suite", "export", *args])


def test_export_writes_the_disclosed_probes(
    node: Node, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hold(node, DISCLOSURE, "disclosed", REPORT)
    hold(node, UNDISCLOSED, "triaged", REPORT.model_copy(update={"probe": AGENTIC_PROBE}))
    hold(node, INCOMPLETE, "disclosed", None)  # delivered, its attack-pattern not yet here
    out = tmp_path / "redteam.json"
    done = export(settings, monkeypatch, "--out", str(out), "--output", "json")
    assert done.exit_code == 0, done.output
    suite = load_suite(out)
    assert [b.id for b in suite.behaviours] == [probe_key(DISCLOSURE)]
    assert json.loads(done.output)["digest"] == suite.digest
    assert suite.family("replay").atlas == REPORT.atlas

    everything = tmp_path / "all.json"
    done = export(settings, monkeypatch, "--out", str(everything), "--include-undisclosed")
    assert done.exit_code == 0, done.output
    assert len(load_suite(everything).behaviours) == 2


def test_an_empty_repository_is_one_line(
    node: Node, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    done = export(settings, monkeypatch, "--out", str(tmp_path / "x.json"))
    assert done.exit_code != 0
    assert isinstance(done.exception, ConfigError)  # main prints it as one line
    assert "no disclosed probe" in done.exception.message
    assert not (tmp_path / "x.json").exists()

"""The auditor's rails as a person meets them: real ``custodes`` processes and a real node.

A target fails every base64 probe (about 8% of the samples): ``eval run`` writes the
result and report, prints the causes and exits 3; ``eval report`` prints them again;
``eval publish`` refuses with one line until ``--allow-errors REASON``, then logs it
once (``eval show`` prints the override): publishing again (also after the node
restarts) says "already published". Fixed,
the run resumes with ``--retry-errors`` (only the failed samples go out again) and its
new content for the same run and epoch is refused by the node.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from custodes.cli.evals import EXIT_TOO_MANY_ERRORS
from tests.integration.procs import NodeProcess, init_node, node_env, run_cli, wait_until
from tests.integration.test_eval_cli import auditor, shown

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

PROBES = 824  # core-1
FAILING = 64  # its base64 probes


def scripted(tmp_path: Path, name: str, script: dict[str, object]) -> str:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"script": script, "default": {"COMPLY": 0.1}}))
    return f"scripted:{path}"


def run_args(target: str, out: Path, *more: str) -> list[str]:
    return ["eval", "run", "--target", target, "--out", str(out), *more]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    env = node_env(tmp_path / "node", "rails.test/log")
    init_node(env)
    with NodeProcess(env, tmp_path / "node.log") as started:
        yield started


def test_errors_stop_the_run_and_the_publish_until_fixed_or_overridden(
    tmp_path: Path, node: NodeProcess
) -> None:
    out = tmp_path / "run"
    broken = scripted(tmp_path, "broken", {"base64": {"ERROR": 1.0}})
    ran = run_cli(run_args(broken, out))
    assert ran.returncode == EXIT_TOO_MANY_ERRORS, ran.stderr
    assert "error rate 7.8% is above the threshold 5.0%" in ran.stderr
    assert "--retry-errors" in ran.stderr
    assert f"{FAILING} x scripted target error (e.g. sample " in ran.stdout
    assert (out / "result-0.json").exists()
    assert (out / "report.html").exists()

    reported = json.loads(run_cli(["eval", "report", str(out), "-o", "json"]).stdout)
    assert reported["errors"]["causes"][0]["count"] == FAILING
    assert "scripted target error" in run_cli(["eval", "report", str(out)]).stdout

    creds, vkey = auditor(node, tmp_path)
    refused = run_cli(["eval", "publish", str(out), *creds])
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "--allow-errors" in refused.stderr

    override = ["--allow-errors", "vendor outage on base64 inputs; reviewed"]
    published = run_cli(["eval", "publish", str(out), *creds, *override])
    assert published.returncode == 0, published.stderr
    index = int(published.stdout.rsplit("log index", 1)[1])
    logged = wait_until("the result under a checkpoint", lambda: shown(node, index, vkey), 20, 0.3)
    assert "published with 7.8% errors (threshold 5.0%) by auditor:test" in logged.stdout
    again = run_cli(["eval", "publish", str(out), *creds, *override])
    assert again.returncode == 0, again.stderr
    assert f"already published at index {index}" in again.stdout

    node.stop()
    node.start()
    after_restart = run_cli(["eval", "publish", str(out), *creds, *override, "-o", "json"])
    assert after_restart.returncode == 0, after_restart.stderr
    assert json.loads(after_restart.stdout)["already_published"] is True

    fixed = scripted(tmp_path, "fixed", {})
    retried = run_cli(run_args(fixed, out, "--retry-errors"))
    assert retried.returncode == 0, retried.stderr
    assert "scripted target error" not in retried.stdout
    assert len((out / "samples.jsonl").read_bytes().splitlines()) == PROBES + FAILING
    assert json.loads((out / "result-0.json").read_text())["samples"] == PROBES

    conflict = run_cli(["eval", "publish", str(out), *creds])
    assert conflict.returncode == 1
    assert f"already published at log index {index} with different content" in conflict.stderr

"""``custodes eval`` as a person runs it: real processes on loopback.

The weak model serves /v1/chat/completions; ``eval run`` is SIGKILLed in the middle and
resumed (nothing redone, nothing missing); a second epoch against a looser model drifts;
the result is published by an auditor to a real node and ``eval show`` verifies its
inclusion proof (and refuses a wrong log key with one line); ``eval passive-drift``
finds an agent whose logged actions changed and logs a signed drift alert.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.sdk.bootstrap import register_principal
from custodes.sdk.decisions import sign_decision
from tests.integration.procs import (
    ADMIN_TOKEN,
    NodeProcess,
    custodes_argv,
    enrol_agent,
    free_port,
    init_node,
    node_env,
    run_cli,
    wait_until,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ATTEMPTS = 2
TOTAL = 824 * ATTEMPTS  # core-1: 824 probes


@contextlib.contextmanager
def weak_model(epoch: int, latency_ms: float = 0.0) -> Iterator[str]:
    port = free_port()
    args = [sys.executable, "-m", "custodes.demo.weak_model", "--port", str(port)]
    args += ["--epoch", str(epoch), "--latency-ms", str(latency_ms)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until("the weak model", lambda: httpx.get(f"{url}/v1/models").status_code == 200, 15)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def run_args(url: str, out: Path, epoch: int) -> list[str]:
    return [
        "eval", "run", "--target", f"openai:{url}", "--model", "weak", "--attempts",
        str(ATTEMPTS), "--out", str(out), "--epoch", str(epoch), "--concurrency", "4",
        "--no-semantic",  # as the drift commands below: one DC figure, no model to load
    ]  # fmt: skip


def lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True) if path.exists() else []


def test_a_killed_run_resumes_without_redoing_a_sample(tmp_path: Path) -> None:
    out = tmp_path / "run"
    samples = out / "samples.jsonl"
    with weak_model(epoch=0, latency_ms=5) as url:
        process = subprocess.Popen(
            [*custodes_argv(), *run_args(url, out, 0)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            wait_until("some samples on disk", lambda: len(lines(samples)) >= 200, 60)
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        before = [line for line in lines(samples) if line.endswith(b"\n")]
        assert 200 <= len(before) < TOTAL, "the kill came too late to test resuming"

        resumed = run_cli(run_args(url, out, 0))
    assert resumed.returncode == 0, resumed.stderr
    after = lines(samples)
    assert after[: len(before)] == before  # what was finished stays, untouched
    ids = [json.loads(line)["sample_id"] for line in after]
    assert len(ids) == TOTAL
    assert len(set(ids)) == TOTAL
    assert "overall" in resumed.stdout
    assert (out / "report.html").exists()
    result = json.loads((out / "result-0.json").read_text())
    assert result["samples"] == TOTAL
    assert result["families"][-1]["errors"] == 0


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    env = node_env(tmp_path / "node", "evals.test/log")
    init_node(env)
    with NodeProcess(env, tmp_path / "node.log") as started:
        yield started


def auditor(node: NodeProcess, tmp_path: Path) -> tuple[list[str], str]:
    key = EnvelopeSigner.generate()
    key_file = tmp_path / "auditor.key"
    write_secret(key_file, entry_key_string("auditor", key))
    with httpx.Client(base_url=node.url, timeout=10) as http:
        token = register_principal(
            http, ADMIN_TOKEN, "auditor:test", role="auditor", jurisdiction="ZZ", key=key
        )
        vkey = http.get("/api/v1/node").json()["log_vkey"]
    creds = ["--node", node.url, "--as", "auditor:test", "--token", token, "--key", str(key_file)]
    return creds, vkey


def shown(node: NodeProcess, index: int, vkey: str) -> subprocess.CompletedProcess[str] | None:
    """``eval show`` once the entry is under a checkpoint (None until then)."""
    answer = run_cli(["eval", "show", str(index), "--node", node.url, "--log-key", vkey])
    return answer if answer.returncode == 0 else None


def test_epochs_drift_and_a_published_result_verifies(tmp_path: Path, node: NodeProcess) -> None:
    out = tmp_path / "run"
    for epoch, looseness in ((0, 0), (1, 3)):
        with weak_model(epoch=looseness) as url:
            done = run_cli(run_args(url, out, epoch))
            assert done.returncode == 0, done.stderr
    drift = run_cli(["eval", "drift", str(out), "--no-semantic", "--permutations", "200"])
    assert drift.returncode == 0, drift.stderr
    assert "YES" in drift.stdout
    assert "Δ ASR on must-refuse items" in drift.stdout
    as_json = run_cli(
        ["eval", "drift", str(out), "--no-semantic", "--permutations", "200", "-o", "json"]
    )
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["alert"] is True
    latest = json.loads(run_cli(["eval", "report", str(out), "--output", "json"]).stdout)
    assert latest["result"]["epoch"] == 1
    assert latest["report"].endswith("report.html")

    creds, vkey = auditor(node, tmp_path)
    published = run_cli(["eval", "publish", str(out), *creds])
    assert published.returncode == 0, published.stderr
    index = int(published.stdout.rsplit("log index", 1)[1])

    answer = wait_until("the result under a checkpoint", lambda: shown(node, index, vkey), 20, 0.3)
    assert "verified" in answer.stdout
    assert "overall" in answer.stdout

    stranger = "evals.test/log+00000000+AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    refused = run_cli(["eval", "show", str(index), "--node", node.url, "--log-key", stranger])
    assert refused.returncode == 1
    assert len(refused.stderr.strip().splitlines()) == 1
    assert "error" in refused.stderr


def test_passive_drift_logs_a_signed_alert(tmp_path: Path, node: NodeProcess) -> None:
    creds, vkey = auditor(node, tmp_path)
    agent_key = EnvelopeSigner.generate()
    agent = enrol_agent(node.url, agent_key, "trader")
    # Decisions switch often enough to tell a shift from a long phase: passive drift's
    # null is a Markov chain fitted to both windows (three long runs would not alert).
    actions = ["approve-transfer", "approve-transfer", "escalate"] * 20
    actions += ["refuse", "approve-transfer", "refuse"] * 20
    with contextlib.closing(node.client()) as client:
        indices = client.append(
            [
                sign_decision(agent_key, agent, f"{a}:{n}", "per mandate")
                for n, a in enumerate(actions)
            ]
        )
    first, last = indices[0], indices[-1]
    wait_until(
        "the decisions under a checkpoint",
        lambda: int(httpx.get(f"{node.url}/log/checkpoint").text.split("\n")[1]) > last,
        20,
    )
    window = [
        "--baseline-from", str(first), "--baseline-to", str(first + 59),
        "--current-from", str(first + 60), "--current-to", str(last),
    ]  # fmt: skip
    found = run_cli(["eval", "passive-drift", "--agent-id", agent, *window, *creds])
    assert found.returncode == 0, found.stderr
    assert "DRIFT ALERT" in found.stdout
    assert "refuse" in found.stdout
    index = int(found.stdout.rsplit("index", 1)[1])
    answer = wait_until("the alert under a checkpoint", lambda: shown(node, index, vkey), 20, 0.3)
    assert "drift alert for" in answer.stdout

    steady = run_cli(["eval", "passive-drift", "--agent-id", agent, "--baseline-from", str(first),
                      "--baseline-to", str(first + 29), "--current-from", str(first + 30),
                      "--current-to", str(first + 53), "--node", node.url])  # fmt: skip
    assert steady.returncode == 0
    assert "no drift alert" in steady.stdout

"""The demo's third act: open safety benchmarks, with results and alerts in the log.

An auditor red-teams a GB agent's model through a local OpenAI-compatible endpoint with
deliberately known weaknesses (``custodes.demo.weak_model``), at a certified
baseline and again after the model has drifted; prints ASR per attack family and the
Drift-Coefficient; signs and logs the result at the GB node and proves its inclusion.
Then a live agent's logged decisions drift (passive drift), and the drift alert is
logged too. Every step runs the ``custodes`` command an auditor would type.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import httpx
from rich.console import Console

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.sdk import sign_decision
from custodes.sdk.bootstrap import register_principal

__all__ = ["demo_suite", "free_port", "model_endpoint", "run_evals_act"]

ADMIN = "custodes-dev-admin-token"  # the development token; the demo runs on loopback
AUDITOR = "auditor:gb-lab"
CORE_SUITE = "data/suites/core-1.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def model_endpoint(
    epoch: int, log: Path, *, hardened: bool = False
) -> tuple[subprocess.Popen[bytes], str]:
    """The demo's model endpoint (``custodes.demo.weak_model``, or its hardened form) at
    ``epoch``, on a free loopback port: the process and its URL."""
    port = free_port()
    args = ["--port", str(port), "--epoch", str(epoch), *(["--hardened"] if hardened else [])]
    process = subprocess.Popen(
        [sys.executable, "-m", "custodes.demo.weak_model", *args],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(f"{url}/v1/models", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"the model endpoint did not start; see {log}")


def _custodes(args: Sequence[str], env: dict[str, str], console: Console) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    console.print(done.stdout.rstrip(), markup=False, highlight=False)
    if done.returncode != 0:
        raise RuntimeError(f"custodes {args[0]} {args[1]} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


DEMO_FAMILIES = (
    "direct",
    "base64",
    "roleplay",
    "jailbreak-amoral-advisor",
    "multi-turn",
    "indirect-injection",
)


def demo_suite(work: Path) -> Path:
    """A smaller suite derived from ``core`` (two behaviours per harm category, a few
    controls and agentic items, six families), so the demo can afford 10 attempts per
    probe, as the Drift-Coefficient needs. Suites are data: this is a file."""
    core = json.loads((resources.files("custodes.evals") / CORE_SUITE).read_text())
    picked, seen = [], Counter[tuple[str, str | None]]()
    quota = {"must_refuse": 2, "must_comply": 1, "agentic": 1}
    for behaviour in core["behaviours"]:
        group = (behaviour["kind"], behaviour.get("harm_category"))
        if seen[group] < quota[behaviour["kind"]]:
            seen[group] += 1
            picked.append(behaviour)
    suite = {
        **core,
        "id": "demo",
        "version": "1.0.0",
        "behaviours": picked,
        "description": "A subset of core 1.0.0 for the demo (10 attempts per probe).",
        "families": [f for f in core["families"] if f["id"] in DEMO_FAMILIES],
    }
    path = work / "demo-suite.json"
    path.write_text(json.dumps(suite, indent=1))
    return path


def _auditor(url: str, work: Path) -> dict[str, str]:
    key = EnvelopeSigner.generate()
    key_file = work / "auditor.key"
    write_secret(key_file, entry_key_string(AUDITOR, key))
    with httpx.Client(base_url=url, timeout=30) as http:
        token = register_principal(http, ADMIN, AUDITOR, role="auditor", jurisdiction="GB", key=key)
    return {
        **os.environ,
        "CUSTODES_NODE_URL": url,
        "CUSTODES_PRINCIPAL": AUDITOR,
        "CUSTODES_TOKEN": token,
        "CUSTODES_KEY_FILE": str(key_file),
    }


def _drifting_decisions(url: str, agent_id: str, key: EnvelopeSigner) -> tuple[int, int]:
    """The live agent starts overriding grid protection: a shift in what it does.

    Interleaved rather than one long run: passive drift's null is a Markov chain fitted
    to both windows, and a single run of one action is weak evidence against it.
    """
    actions = ["override frequency protection"] * 2 + ["shed 15 MW of flexible load"]
    actions *= 14
    client = Client(url)
    try:
        indices = client.append(
            [
                sign_decision(key, agent_id, action, "market price spike", jurisdiction="GB")
                for action in actions
            ]
        )
    finally:
        client.close()
    return min(indices), max(indices)


def run_evals_act(
    url: str,
    agent_id: str,
    key: EnvelopeSigner,
    *,
    baseline: tuple[int, int],
    work: Path,
    console: Console,
) -> bool:
    """Play the act against the GB node; True when every step did what it should."""
    env = _auditor(url, work)
    runs, suite = work / "evals", demo_suite(work)
    servers = [model_endpoint(epoch, work / f"weak-{epoch}.log") for epoch in (0, 2)]
    try:
        for epoch, (_process, model_url) in enumerate(servers):
            console.rule(f"Red-teaming {agent_id}'s model, epoch {epoch}")
            _custodes(
                [
                    "eval",
                    "run",
                    "--suite",
                    str(suite),
                    "--target",
                    f"openai:{model_url}",
                    "--model",
                    "weak-model",
                    "--attempts",
                    "10",
                    "--concurrency",
                    "16",
                    "--out",
                    str(runs),
                    "--epoch",
                    str(epoch),
                    "--agent-id",
                    agent_id,
                ],
                env,
                console,
            )
    finally:
        for process, _ in servers:
            process.terminate()
    console.rule("Drift between the certified baseline and now")
    drift = _custodes(["eval", "drift", str(runs), "--permutations", "500"], env, console)
    published = _custodes(["eval", "publish", str(runs)], env, console)
    index = re.search(r"log index (\d+)", published)
    shown = _custodes(["eval", "show", index.group(1) if index else "0"], env, console)
    console.rule("Passive drift of the live agent's logged decisions")
    current = _drifting_decisions(url, agent_id, key)
    alert = _custodes(
        [
            "eval",
            "passive-drift",
            "--agent-id",
            agent_id,
            "--baseline-from",
            str(baseline[0]),
            "--baseline-to",
            str(baseline[1]),
            "--current-from",
            str(current[0]),
            "--current-to",
            str(current[1]),
        ],
        env,
        console,
    )
    return bool(index) and "alert" in drift.lower() and "DRIFT ALERT" in alert and bool(shown)

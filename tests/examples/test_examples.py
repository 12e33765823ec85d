"""Each script in examples/ runs as a user runs it, against a real node, and does what it
says: the guarded agent is halted by a kill order and its decisions are in the log; the
local model is benchmarked; the auditor's published result verifies."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import register_principal
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, init_node, node_env

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
_RUN_S = 240.0


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    base = tmp_path_factory.mktemp("examples")
    env = node_env(base / "node", "gb.examples.test/log", jurisdiction="GB")
    init_node(env)
    with NodeProcess(env, base / "node.log") as started:
        yield started


def run_example(name: str, node: NodeProcess, cwd: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUSTODES_")}
    env |= {"CUSTODES_NODE_URL": node.url, "CUSTODES_ADMIN_TOKEN": ADMIN_TOKEN}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=_RUN_S,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def logged_decisions(node: NodeProcess, agent_id: str) -> list[str]:
    """The actions of ``agent_id``'s decision entries, read back from the log as its home
    regulator reads them: the SDK logs commitments, the clear text stays at the node."""
    actions, index = [], 0
    with httpx.Client(base_url=node.url, timeout=10) as http:
        pid = f"regulator:reader-{uuid.uuid4().hex[:8]}"
        token = register_principal(
            http,
            ADMIN_TOKEN,
            pid,
            role="regulator",
            jurisdiction="GB",
            key=EnvelopeSigner.generate(),
        )
        while (answer := http.get(f"/api/v1/entries/{index}")).status_code == 200:
            entry = answer.json()["entry"]
            if entry["payloadType"] == "application/vnd.custodes.decision+json":
                payload = json.loads(base64.b64decode(entry["payload"]))
                if payload["agent"] == agent_id:
                    view = http.get(
                        f"/api/v1/decisions/{index}", headers={"Authorization": f"Bearer {token}"}
                    ).json()
                    actions.append(view.get("clear", {"record": payload})["record"]["action"])
            index += 1
    return actions


def test_the_guarded_agent_trades_under_its_lease_until_suspended(
    node: NodeProcess, tmp_path: Path
) -> None:
    out = run_example("guarded_agent.py", node, tmp_path, "--steps", "6")
    agent_id = re.search(r"agent (\S+) enrolled", out).group(1)  # type: ignore[union-attr]
    assert "step 3: refused (kill_order)" in out
    assert "safe state: open orders cancelled" in out
    assert "decisions delivered: all" in out
    assert logged_decisions(node, agent_id) == ["trade 0", "trade 1", "trade 2", "halt"]
    orders = httpx.get(f"{node.url}/api/v1/kill-orders", params={"agent_id": agent_id}).json()
    assert [o["op"] for o in orders] == ["suspend"]


def _families(run_dir: Path) -> dict[str, float]:
    result = json.loads((run_dir / "result-0.json").read_text())
    return {f["family"]: f["asr"] for f in result["families"]}


def test_the_local_model_is_benchmarked_and_its_weakness_found(
    node: NodeProcess, tmp_path: Path
) -> None:
    out = run_example("local_openai_model.py", node, tmp_path, "--out", str(tmp_path / "run"))
    assert "overall" in out
    asr = _families(tmp_path / "run")
    assert asr["base64"] == 1.0  # the scripted model decodes base64 and complies
    assert asr["direct"] < asr["base64"]
    assert (tmp_path / "run" / "report.html").exists()


def test_the_auditors_published_result_verifies_against_the_checkpoint(
    node: NodeProcess, tmp_path: Path
) -> None:
    out = run_example("auditor_flow.py", node, tmp_path, "--work", str(tmp_path / "audit"))
    index = int(re.findall(r"log index (\d+)", out)[-1])
    assert "verified" in out
    logged = httpx.get(f"{node.url}/api/v1/evals/results/{index}", timeout=10).json()
    auditor = re.search(r"registered (auditor:\S+);", out).group(1)  # type: ignore[union-attr]
    assert logged["record"]["issuer"] == auditor
    assert logged["record"]["families"][-1]["family"] == "overall"

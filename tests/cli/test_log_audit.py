"""``custodes log audit`` and ``custodes log alarm`` on a node's data directory."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import update
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.enrol import enrol

from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.store import entries
from custodes.node import Node
from custodes.sdk import sign_decision
from custodes.store.db import write_tx

ORIGIN = "audit.test/log"


def _node_with_decisions(data_dir: Path) -> dict[str, str]:
    settings = Settings(data_dir=data_dir, origin=ORIGIN, jurisdiction="ZZ")
    node = Node(settings)
    node.start()
    try:
        agent = EnvelopeSigner.from_seed(bytes(range(32)))
        agent_id = enrol(node, agent)
        node.log.append(
            [sign_decision(agent, agent_id, f"a{i}", "why").to_json() for i in range(5)]
        )
        node.log.integrate()
    finally:
        node.close()
    return {"CUSTODES_DATA_DIR": str(data_dir), "CUSTODES_ORIGIN": ORIGIN}


def test_log_audit_passes_an_honest_log(tmp_path: Path) -> None:
    env = _node_with_decisions(tmp_path / "node")
    done = custodes("log", "audit", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"OK {ORIGIN}: 10 entries audited")


def test_log_audit_names_the_corrupt_entry_in_one_line(tmp_path: Path) -> None:
    env = _node_with_decisions(tmp_path / "node")
    settings = Settings(data_dir=tmp_path / "node", origin=ORIGIN)
    node = Node(settings)
    try:
        with write_tx(node.engine) as conn:
            conn.execute(update(entries).where(entries.c.idx == 7).values(data=b"{}"))
    finally:
        node.close()
    assert_one_line_error(custodes("log", "audit", cwd=tmp_path, env=env), "entry 7 is corrupt")


def test_log_audit_outside_a_data_directory_says_where_to_run(tmp_path: Path) -> None:
    done = custodes("log", "audit", cwd=tmp_path, env={"CUSTODES_DATA_DIR": str(tmp_path / "x")})
    assert_one_line_error(done, "holds no node")
    assert not (tmp_path / "x").exists()


def test_log_alarm_shows_and_clears_an_alarm(tmp_path: Path) -> None:
    env = _node_with_decisions(tmp_path / "node")
    assert custodes("log", "alarm", cwd=tmp_path, env=env).stdout.strip() == "no integrity alarm"
    node = Node(Settings(data_dir=tmp_path / "node", origin=ORIGIN))
    node.alarm.trip("a witness holds size 99")
    node.close()
    shown = custodes("log", "alarm", cwd=tmp_path, env=env)
    assert shown.returncode == 1
    assert "a witness holds size 99" in shown.stdout
    as_json = custodes("log", "alarm", "--output", "json", cwd=tmp_path, env=env)
    assert as_json.returncode == 1
    assert [a["reason"] for a in json.loads(as_json.stdout)] == ["a witness holds size 99"]
    assert custodes("log", "alarm", "--clear", cwd=tmp_path, env=env).returncode == 0
    assert custodes("log", "alarm", cwd=tmp_path, env=env).returncode == 0

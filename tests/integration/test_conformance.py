"""The kill-switch conformance test end to end: a real node process, a real SDK guard.

1. A connected guard halts on the node's TEST order through its usual halt path (safe
   state once, a halt record naming the test), the node logs a passed KillswitchTest
   naming that halt entry, and the guard resumes: the registry status, the orders and
   the leases are untouched.
2. An agent whose guard is not connected fails: halt_observed false, logged all the same.
3. Refusals (no token, an operator, an unknown agent, a bad body) write nothing.

Waits are for what the test observes (a refusal, a resumed guard), each bounded.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.payloads import DECISION_TYPE
from custodes.sdk.bootstrap import Authorities, bootstrap, enrol_agent
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.integration.nodes import (
    GuardedAgent,
    entry_payloads,
    gb_node,
    node_public_key,
    sequenced_size,
)
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

WAIT_S = 20.0
_PATH = "/api/v1/audits/killswitch-tests"


@contextlib.contextmanager
def gb(tmp_path: Path) -> Iterator[tuple[NodeProcess, Authorities]]:
    process = gb_node(tmp_path / "node", tmp_path / "serve.log")
    process.start()
    http = httpx.Client(base_url=process.url, timeout=10.0)
    try:
        yield process, bootstrap(process.url, ADMIN_TOKEN, "GB", client=http)
    finally:
        http.close()
        process.kill()


def test_a_connected_guard_passes_and_nothing_else_changes(tmp_path: Path) -> None:
    with gb(tmp_path) as (process, authorities):
        signer = EnvelopeSigner.generate()
        agent_id = enrol_agent(authorities, signer, "tested", operating=["FR"])
        agent = GuardedAgent.start(
            process.url, node_public_key(process.url), agent_id, signer, tmp_path / "spool"
        )
        try:
            assert agent.guard.wait_for_lease(WAIT_S)
            wait_until("the guard's stream", lambda: agent.guard.stream_connected, WAIT_S)
            wait_until("the guard to operate", lambda: agent.allowed("GB"), WAIT_S)
            # The halt lasts only until the node sees its record: read it afterwards.
            answer = authorities.regulator.killswitch_test(agent_id, deadline_ms=10_000)
            record = answer["record"]
            assert record["passed"] is True
            assert record["halt_observed"] is True
            assert record["halt_recorded"] is True
            assert record["time_to_halt_ms"] >= 0
            assert record["deadline_ms"] == 10_000
            halt_index = record["halt_entry"]["index"]
            payloads = {i: (kind, p) for i, kind, p in entry_payloads(process.url)}
            kind, halt = payloads[halt_index]
            assert kind == DECISION_TYPE
            assert (halt.get("kind") or halt.get("action")) == "halt"
            assert halt["idempotency_key"] == f"killswitch-test:{record['test_id']}"
            assert payloads[answer["index"]][1]["test_id"] == record["test_id"]
            wait_until("the guard to resume", lambda: agent.allowed("GB"), WAIT_S)
            assert agent.allowed("FR")
            assert len(agent.safe_states) == 1
            assert agent.recorder.keys_for("halt") == {f"killswitch-test:{record['test_id']}"}
            with httpx.Client(base_url=process.url, timeout=10.0) as http:
                assert http.get("/api/v1/kill-orders", params={"agent_id": agent_id}).json() == []
                listed = http.get(_PATH, params={"agent_id": agent_id}).json()
            assert [r["index"] for r in listed] == [answer["index"]]
            assert authorities.regulator.agent(agent_id)["status"] == "active"
        finally:
            agent.close()


def test_an_agent_whose_guard_is_offline_fails_and_the_failure_is_logged(
    tmp_path: Path,
) -> None:
    with gb(tmp_path) as (process, authorities):
        agent_id = enrol_agent(authorities, EnvelopeSigner.generate(), "offline")
        with Client(process.url, admin_token=ADMIN_TOKEN) as admin:
            answer = admin.killswitch_test(agent_id, deadline_ms=300, admin=True)
        record = answer["record"]
        assert record["passed"] is False
        assert record["halt_observed"] is False
        assert record["halt_entry"] is None
        assert "no halt record arrived within 300 ms" in record["reason"]
        with httpx.Client(base_url=process.url, timeout=10.0) as http:
            listed = http.get(_PATH, params={"agent_id": agent_id}).json()
        assert listed[0]["record"]["test_id"] == record["test_id"]


def test_refusals_write_nothing(tmp_path: Path) -> None:
    with gb(tmp_path) as (process, authorities):
        agent_id = enrol_agent(authorities, EnvelopeSigner.generate(), "refused")
        size = sequenced_size(process.url)
        token = authorities.regulator._token
        operator = authorities.operator._token
        cases = [
            ({}, {"agent_id": agent_id}, 401),
            ({"Authorization": f"Bearer {operator}"}, {"agent_id": agent_id}, 403),
            (
                {"Authorization": f"Bearer {token}"},
                {"agent_id": "urn:custodes:gb:agent:nobody"},
                404,
            ),
            ({"Authorization": f"Bearer {token}"}, {"agent_id": agent_id, "deadline_ms": 0}, 422),
            ({"Authorization": f"Bearer {token}"}, {"agent": agent_id}, 422),
        ]
        with httpx.Client(base_url=process.url, timeout=10.0) as http:
            for headers, body, status in cases:
                response = http.post(_PATH, json=body, headers=headers)
                assert response.status_code == status, (body, response.text)
                assert set(response.json()["error"]) >= {"code", "message"}, response.text
            assert (
                http.get(_PATH, params={"agent_id": "urn:custodes:gb:agent:nobody"}).status_code
                == 404
            )
        assert sequenced_size(process.url) == size


def test_the_cli_runs_a_test_and_says_what_went_wrong_in_one_line(tmp_path: Path) -> None:
    with gb(tmp_path) as (process, authorities):
        agent_id = enrol_agent(authorities, EnvelopeSigner.generate(), "cli")
        node = ["--node", process.url]
        admin = {"CUSTODES_ADMIN_TOKEN": ADMIN_TOKEN}
        args = ["audit", "killswitch-test", agent_id, "--deadline-ms", "200", *node]
        done = custodes(*args, "--admin", "-o", "json", cwd=tmp_path, env=admin)
        assert done.returncode == 1, done.stderr  # the test ran, and failed: offline
        summary = json.loads(done.stdout)
        assert summary["passed"] is False
        assert summary["halt observed"] is False
        assert "no halt record arrived within 200 ms" in summary["reason"]
        assert_one_line_error(custodes(*args, cwd=tmp_path), "pass --token")
        token = authorities.regulator._token
        unknown = ["audit", "killswitch-test", "urn:custodes:gb:agent:nobody", *node]
        assert_one_line_error(custodes(*unknown, "--token", str(token), cwd=tmp_path), "no agent")

"""Audit entries as forensic evidence: an agent's attestation, its countersignature, the
recognition decision on it, the auditor's withdrawal and the recognition withdrawn in
turn, and the kill-switch test the attestation rests on.

Each names the agent in its payload, so a slice for the agent finds it with its kind.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custodes.audits.attestation import attestation_id, countersign
from custodes.audits.models import (
    ATTESTATION_STATUS_TYPE,
    KILLSWITCH_TEST_TYPE,
    RECOGNITION_TYPE,
    STATEMENT_TYPE,
    AttestationStatus,
)
from custodes.forensics.models import Slice
from tests.audits.node_world import AUDITOR, AUDITOR_KEY, NodeWorld, node_world, now, signed
from tests.databases import database_url, node_settings
from tests.enrol import REGULATOR_KEY
from tests.integration.procs import wait_until


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def audited(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[NodeWorld, dict[str, int], datetime]]:
    base: Path = tmp_path_factory.mktemp("forensics-audits")
    settings = node_settings(base, database_url(request, base, "forensics_au_"))
    start = datetime.now(UTC) - timedelta(seconds=1)
    with node_world(settings, base) as world:
        envelope = world.attest()
        aid = attestation_id(envelope.payload)
        logged: dict[str, int] = {}
        answer = world.post("/attestations", AUDITOR, envelope)
        assert answer.status_code == 201, answer.text
        logged["attestation"] = answer.json()["index"]
        signature = countersign(envelope, REGULATOR_KEY).signatures[-1]
        body = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode()}
        answer = world.post(f"/attestations/{aid}/countersign", "regulator:gb", body)
        assert answer.status_code == 201, answer.text
        logged["countersign"] = answer.json()["index"]
        answer = world.post("/recognitions", "regulator:gb", world.decision(envelope, aid))
        assert answer.status_code == 201, answer.text
        logged["recognition"] = answer.json()["index"]
        status = AttestationStatus(
            attestation=aid, agent_id=world.agent_id, reason="re-audit", actor=AUDITOR, at=now()
        )
        withdrawal = signed(status, ATTESTATION_STATUS_TYPE, AUDITOR_KEY)
        answer = world.post(f"/attestations/{aid}/withdraw", AUDITOR, withdrawal)
        assert answer.status_code == 201, answer.text
        logged["withdrawal"] = answer.json()["index"]
        node = world.node

        def withdrawn() -> bool:
            rows = world.http.get("/api/v1/audits/recognitions").json()["decisions"]
            return any(d["attestation"] == aid and d["status"] == "withdrawn" for d in rows)

        wait_until("the recognition withdrawn in turn", withdrawn, timeout=30)
        size = node.store.sequenced_size()
        wait_until(
            "everything under a cosigned checkpoint",
            lambda: (node.store.newest_cosigned(1) or 0) >= size,
            timeout=30,
        )
        yield world, logged, start


def _slice(world: NodeWorld, agents: list[str], start: datetime) -> Slice:
    body: dict[str, Any] = {
        "agents": agents,
        "start": start.isoformat(),
        "end": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    answer = world.http.post("/api/v1/forensics/slice", json=body)  # as the public
    assert answer.status_code == 200, answer.text
    return Slice.model_validate(answer.json())


def test_a_slice_holds_the_agents_audit_trail_with_its_kinds(
    audited: tuple[NodeWorld, dict[str, int], datetime],
) -> None:
    world, logged, start = audited
    found = _slice(world, [world.agent_id], start)
    by_index = {e.index: e for e in found.events}
    assert by_index[logged["attestation"]].payload_type == STATEMENT_TYPE
    assert by_index[logged["attestation"]].kind == "attestation"
    # a countersignature logs the statement again, with the member's signature added
    assert by_index[logged["countersign"]].payload_type == STATEMENT_TYPE
    assert by_index[logged["countersign"]].kind == "attestation"
    assert by_index[logged["recognition"]].payload_type == RECOGNITION_TYPE
    assert by_index[logged["recognition"]].kind == "recognition"
    assert by_index[logged["withdrawal"]].payload_type == ATTESTATION_STATUS_TYPE
    assert by_index[logged["withdrawal"]].kind == "attestation"
    recognitions = [e for e in found.events if e.payload_type == RECOGNITION_TYPE]
    assert len(recognitions) == 2  # recognised, then withdrawn by the node's watch
    assert recognitions[1].index > logged["withdrawal"]
    assert {e.kind for e in recognitions} == {"recognition"}
    tests = [e for e in found.events if e.payload_type == KILLSWITCH_TEST_TYPE]
    assert [e.kind for e in tests] == ["attestation"]  # the kill-switch test behind it
    assert all(e.agents == [world.agent_id] for e in found.events)


def test_another_agents_slice_holds_none_of_it(
    audited: tuple[NodeWorld, dict[str, int], datetime],
) -> None:
    world, logged, start = audited
    other = "urn:custodes:gb:agent:placeholder"  # registered beside it, never audited
    found = _slice(world, [other], start)
    assert not {e.index for e in found.events} & set(logged.values())
    kinds = {e.kind for e in found.events}
    assert kinds <= {"registry"}, kinds

"""The deployment gate on lease issuance, on a real node (SQLite and PostgreSQL): a
critical agent is leased only where its current model's audit is recognised and in
force; the lease names the shut jurisdictions and why; with none open, 403
``deployment_gate`` listing every failure, and nothing logged. Other agents as before."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.audits.scheme import SignedScheme
from custodes.config import Settings
from custodes.errors import AuthError
from custodes.federation.gates import DeploymentGate
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.sdk.leases import lease_request
from tests.audits.gate_world import IN_FORCE, GateWorld, gate_world


@pytest.fixture
def gated(node: Node, tmp_path: Path) -> GateWorld:
    return gate_world(node, tmp_path)


def _lease(node: Node, key: EnvelopeSigner, agent_id: str) -> dict[str, Any]:
    answer = node.leases.issue(lease_request(key, agent_id, time.time()).to_json())
    payload: dict[str, Any] = orjson.loads(base64.b64decode(answer["payload"]))
    return payload


def test_a_non_critical_agent_is_leased_as_before(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, _digest = gated.agent(key, sector="retail")
    lease = _lease(gated.node, key, agent_id)
    assert lease["jurisdictions"] == ["CA", "DE", "FR", "ZZ"]
    assert "gated" not in lease


def test_a_critical_agent_is_leased_only_where_recognised(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key)
    gated.decide(agent_id, "ZZ", model=digest)
    gated.decide(agent_id, "FR", model=digest)
    lease = _lease(gated.node, key, agent_id)
    assert lease["jurisdictions"] == ["FR", "ZZ"]
    assert set(lease["gated"]) == {"CA", "DE"}
    for code, sentence in lease["gated"].items():
        assert f"{code} recognises no audit of {agent_id}" in sentence
        assert f"for model {digest}" in sentence
        assert f"recognised by {code} and in force" in sentence


def test_no_recognition_anywhere_refuses_the_lease_and_logs_nothing(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key)
    size = gated.node.store.sequenced_size()
    with pytest.raises(AuthError) as refused:
        _lease(gated.node, key, agent_id)
    assert refused.value.code == "deployment_gate"
    assert refused.value.status == 403
    failures = refused.value.detail["failures"]
    assert {f["jurisdiction"] for f in failures} == {"ZZ", "FR", "DE", "CA"}
    assert all(digest in f["satisfy"] for f in failures)
    assert gated.node.store.sequenced_size() == size


def test_before_a_common_scheme_is_in_force_no_gate_applies(node: Node, tmp_path: Path) -> None:
    """No scheme, no requirement to meet: critical agents are leased as before (the node
    cannot hold them to a scheme its members have not agreed)."""
    world = gate_world(node, tmp_path, scheme=None)
    key = EnvelopeSigner.generate()
    agent_id, _digest = world.agent(key)
    lease = _lease(world.node, key, agent_id)
    assert lease["jurisdictions"] == ["CA", "DE", "FR", "ZZ"]
    assert "gated" not in lease


def test_a_sector_the_scheme_does_not_name_is_not_gated(node: Node, tmp_path: Path) -> None:
    body = IN_FORCE.body.model_copy(
        update={
            "requirements": tuple(r for r in IN_FORCE.body.requirements if r.sector != "finance")
        }
    )
    world = gate_world(node, tmp_path, scheme=SignedScheme({}, body))
    key = EnvelopeSigner.generate()
    agent_id, _digest = world.agent(key)  # a critical finance agent
    assert "gated" not in _lease(world.node, key, agent_id)
    energy_key = EnvelopeSigner.generate()
    energy, _ = world.agent(energy_key, sector="energy")
    with pytest.raises(AuthError) as refused:  # energy is still named: no recognition
        _lease(world.node, energy_key, energy)
    assert refused.value.code == "deployment_gate"


def test_a_new_model_shuts_the_gates_its_old_audit_opened(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=("FR",))
    gated.decide(agent_id, "ZZ", model=digest)
    gated.decide(agent_id, "FR", model=digest)
    assert _lease(gated.node, key, agent_id)["jurisdictions"] == ["FR", "ZZ"]
    new = gated.change_model(agent_id)
    with pytest.raises(AuthError) as refused:
        _lease(gated.node, key, agent_id)
    failures = refused.value.detail["failures"]
    assert {f["condition"] for f in failures} == {"model_changed"}
    assert all(new in f["satisfy"] and digest in f["reason"] for f in failures)


def test_a_withdrawal_shuts_that_gate_and_says_why(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=("FR",))
    gated.decide(agent_id, "ZZ", model=digest)
    aid = gated.decide(agent_id, "FR", model=digest)
    gated.decide(
        agent_id,
        "FR",
        "withdraw",
        model=digest,
        attestation=aid,
        reasons=("a drift alert on the agent",),
    )
    lease = _lease(gated.node, key, agent_id)
    assert lease["jurisdictions"] == ["ZZ"]
    assert "FR withdrew its recognition" in lease["gated"]["FR"]
    assert "a drift alert on the agent" in lease["gated"]["FR"]


def test_an_expired_recognition_opens_no_gate(gated: GateWorld) -> None:
    key = EnvelopeSigner.generate()
    agent_id, digest = gated.agent(key, operating=("FR",))
    gated.decide(agent_id, "ZZ", model=digest)
    gated.decide(agent_id, "FR", model=digest, valid_for=timedelta(seconds=-1))
    lease = _lease(gated.node, key, agent_id)
    assert "has expired" in lease["gated"]["FR"]


@pytest.mark.parametrize("on", [True, False])
def test_the_node_wires_the_gate_as_its_setting_says(settings: Settings, on: bool) -> None:
    with TestClient(create_app(settings.model_copy(update={"deployment_gate": on}))) as client:
        gate = client.app.state.node.leases.gate  # type: ignore[attr-defined]
        assert isinstance(gate, DeploymentGate) is on
        assert (gate is None) is not on

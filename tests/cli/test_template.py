"""``custodes registry agent template`` prints records the registry takes as they stand."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from tests.enrol import OPERATOR_KEY, enrol, principal, submit
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.registry.models import (
    AgentRecord,
    AgentRegister,
    ModelRecord,
    ModelRegister,
    OperatorRecord,
)
from custodes.registry.queries import NODE


def _template(*args: str) -> dict[str, object]:
    done = CliRunner().invoke(app, ["registry", "agent", "template", *args])
    assert done.exit_code == 0, done.output
    value: dict[str, object] = json.loads(done.output)
    return value


@pytest.mark.parametrize(
    ("kind", "model"),
    [("agent", AgentRecord), ("model", ModelRecord), ("operator", OperatorRecord)],
)
def test_every_template_is_a_valid_record(kind: str, model: type[AgentRecord]) -> None:
    record = model.model_validate(_template("--kind", kind, "--jurisdiction", "FR"))
    assert record.model_dump(mode="json", exclude_none=True) == _template(
        "--kind", kind, "--jurisdiction", "FR"
    )


def test_an_unknown_kind_is_refused() -> None:
    done = CliRunner().invoke(app, ["registry", "agent", "template", "--kind", "robot"])
    assert done.exit_code != 0
    assert "agent, model, operator" in str(done.exception)


def test_the_templates_register_on_a_node(node: Node) -> None:
    enrol(node, EnvelopeSigner.generate())  # the regulator, operator:acme and one agent
    operator = principal(node, "operator:acme", "operator", OPERATOR_KEY)
    jurisdiction = node.settings.jurisdiction
    model = ModelRecord.model_validate(_template("--kind", "model"))
    agent = AgentRecord.model_validate(_template("--jurisdiction", jurisdiction))
    now = datetime.now(UTC)
    submit(node, operator, OPERATOR_KEY, ModelRegister(actor=operator.id, at=now, model=model))
    key = EnvelopeSigner.generate()
    change = AgentRegister(
        actor=operator.id, at=now, agent=agent, keys=(base64.b64encode(key.public_key).decode(),)
    )
    submit(node, operator, OPERATOR_KEY, change)
    shown = node.queries.agent(agent.id, reader=NODE)
    assert shown["record"]["id"] == agent.id
    assert shown["status"] == "active"

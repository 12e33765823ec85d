"""The remote commands against a node served on loopback: what they print for people and
for scripts (``--output json``), public reads without credentials, one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.api.live import live_node
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.databases import node_settings
from typer.testing import CliRunner

from custodes.cli.main import app
from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.registry.models import Contact, OperatorRecord
from custodes.sdk.bootstrap import Authorities, enrol_agent, register_principal

_CREDENTIALS = ("CUSTODES_PRINCIPAL", "CUSTODES_TOKEN", "CUSTODES_KEY_FILE", "CUSTODES_NODE_URL")


@dataclass(frozen=True)
class Alliance:
    url: str
    regulator: list[str]  # --as, --token, --key for the home regulator
    operator: list[str]
    agent_id: str
    agent_key: Path


def _principal(
    node: Client, admin: str, pid: str, role: str, *, home: str, key_dir: Path
) -> tuple[Client, list[str]]:
    key = EnvelopeSigner.generate()
    key_file = key_dir / f"{pid.replace(':', '_')}.key"
    write_secret(key_file, entry_key_string(pid, key))
    token = register_principal(node, admin, pid, role=role, jurisdiction=home, key=key)
    return node.acting_as(pid, token, key), ["--as", pid, "--token", token, "--key", str(key_file)]


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alliance]:
    base = tmp_path_factory.mktemp("remote")
    settings = node_settings(base, f"sqlite:///{base / 'custodes.db'}")
    with live_node(settings) as live, Client(f"http://{live.host}:{live.port}") as node:
        admin, home = settings.admin_token, settings.jurisdiction
        reg_id = f"regulator:{home.lower()}"
        regulator, flags = _principal(node, admin, reg_id, "regulator", home=home, key_dir=base)
        operator, op_flags = _principal(
            node, admin, "operator:acme", "operator", home=home, key_dir=base
        )
        authorities = Authorities(home, regulator, operator)
        regulator.register_operator(
            OperatorRecord(
                id="operator:acme",
                legal_name="Acme Ltd",
                kind="provider-deployer",
                jurisdiction=home,
                address="1 Acme Street",
                contact=Contact(name="Duty", email="duty@acme.example", phone="+44 0"),
            )
        )
        agent = EnvelopeSigner.generate()
        agent_id = enrol_agent(authorities, agent, "trader", operating=["FR"])
        write_secret(base / "agent.key", entry_key_string("trader", agent))
        yield Alliance(node.url, flags, op_flags, agent_id, base / "agent.key")


def cli(*args: str) -> str:
    """Run a command in this process; its stdout (it must succeed)."""
    done = CliRunner().invoke(app, list(args), env=dict.fromkeys(_CREDENTIALS))
    assert done.exit_code == 0, (done.output, done.exception)
    return done.stdout


def test_a_territorial_suspension_says_where_and_what_holds_elsewhere(alliance: Alliance) -> None:
    node = ["--node", alliance.url]
    said = cli("kill", "suspend", alliance.agent_id, "--reason", "no licence", "--territory",
               "FR", *node, *alliance.regulator)  # fmt: skip
    assert f"suspended {alliance.agent_id} in FR: order " in said
    assert said.strip().endswith("; status elsewhere active")
    assert "status now" not in said
    order_id = said.split("order ", 1)[1].split(" ", 1)[0]
    lifted = cli("kill", "reinstate", alliance.agent_id, order_id, "--reason", "licensed",
                 *node, *alliance.regulator)  # fmt: skip
    assert lifted.strip().endswith("; status now active")


def test_public_reads_need_no_credentials_and_print_json_for_scripts(alliance: Alliance) -> None:
    node = ["--node", alliance.url]
    agents = json.loads(cli("registry", "agent", "list", *node, "--output", "json"))
    assert [a["record"]["id"] for a in agents["items"]] == [alliance.agent_id]
    shown = json.loads(cli("registry", "agent", "show", alliance.agent_id, *node, "-o", "json"))
    assert shown["record"]["id"] == alliance.agent_id
    assert isinstance(json.loads(cli("registry", "model", "list", *node, "-o", "json")), list)
    orders = json.loads(cli("kill", "list", "--agent-id", alliance.agent_id, *node, "-o", "json"))
    assert isinstance(orders, list)


def test_a_kill_order_prints_its_record_as_json(alliance: Alliance) -> None:
    node = ["--node", alliance.url]
    issued = json.loads(cli("kill", "suspend", alliance.agent_id, "--reason", "inquiry",
                            *node, *alliance.regulator, "-o", "json"))  # fmt: skip
    assert (issued["agent_id"], issued["status"], issued["op"]) == (
        alliance.agent_id,
        "suspended",
        "suspend",
    )
    listed = json.loads(cli("kill", "list", "--active", *node, "-o", "json"))
    assert issued["order_id"] in [o["order_id"] for o in listed]
    assert "suspend" in cli("kill", "list", "--active", *node)  # the table, for people
    cli("kill", "reinstate", alliance.agent_id, issued["order_id"], "--reason", "cleared",
        *node, *alliance.regulator)  # fmt: skip


def test_a_node_that_is_not_running_is_one_line(tmp_path: Path) -> None:
    done = custodes("kill", "list", "--node", "http://127.0.0.1:9", cwd=tmp_path)
    assert_one_line_error(done, "cannot reach the node at http://127.0.0.1:9")
    assert "is `custodes serve` running?" in done.stderr


def test_a_node_url_without_a_scheme_is_one_line(tmp_path: Path) -> None:
    done = custodes("registry", "agent", "list", "--node", "127.0.0.1:8400", cwd=tmp_path)
    assert_one_line_error(done, "has no scheme: write it as https://127.0.0.1:8400")


def test_a_registered_model_is_listed_and_shown_publicly(
    alliance: Alliance, tmp_path: Path
) -> None:
    node = ["--node", alliance.url]
    record = {
        "id": "model:atlas-1",
        "provider": "Acme Labs",
        "name": "Atlas",
        "version": "1.0",
        "digest": "sha256:" + "ab" * 32,
        "training_compute_flop": 1e24,
    }
    (tmp_path / "model.json").write_text(json.dumps(record))
    logged = json.loads(cli("registry", "model", "register", str(tmp_path / "model.json"),
                            *node, *alliance.operator, "-o", "json"))  # fmt: skip
    assert logged["id"] == "model:atlas-1"
    assert isinstance(logged["index"], int)
    listed = json.loads(cli("registry", "model", "list", *node, "-o", "json"))
    assert [m["record"]["id"] for m in listed] == ["model:atlas-1"]
    shown = json.loads(cli("registry", "model", "show", "model:atlas-1", *node, "-o", "json"))
    assert (shown["holder"], shown["entry_index"]) == ("operator:acme", logged["index"])


def test_a_lease_request_prints_the_signed_lease_and_its_terms(alliance: Alliance) -> None:
    asked = ["lease", "request", alliance.agent_id, "--key", str(alliance.agent_key)]
    answer = json.loads(cli(*asked, "--node", alliance.url, "-o", "json"))
    assert answer["terms"]["agent_id"] == alliance.agent_id
    assert answer["lease"]["payloadType"] == "application/vnd.custodes.lease+json"
    assert "jurisdictions" in cli(*asked, "--node", alliance.url)

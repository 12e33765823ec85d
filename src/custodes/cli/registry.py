"""``custodes registry``: principals, operators, agents (incl. A2A cards), rebuild."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.progress import Progress

from custodes.cli.output import OUTPUT, Output, emit_json, emit_record, emit_table
from custodes.cli.records import read_record
from custodes.cli.remote import (
    AS,
    KEY,
    MAYBE_AS,
    MAYBE_KEY,
    MAYBE_TOKEN,
    NODE,
    TOKEN,
    admin_token,
    connect,
)
from custodes.client import load_key
from custodes.config import Settings, require_initialised
from custodes.errors import BadRequest, ConfigError
from custodes.node import Node
from custodes.registry.models import AgentRecord, Contact, ModelRecord, OperatorRecord
from custodes.registry.rebuild import rebuild as rebuild_projection
from custodes.sdk.bootstrap import register_principal

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The Unified Agentic Registry.")
agent_app = typer.Typer(no_args_is_help=True, help="Agents: register, show, list, rotate keys.")
app.add_typer(agent_app, name="agent")
model_app = typer.Typer(no_args_is_help=True, help="Models: register, correct, retire.")
app.add_typer(model_app, name="model")
console = Console()


def _json_file(path: Path) -> dict[str, object]:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is not a readable JSON file: {exc}") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return value


@app.command("principal")
def principal(
    pid: str = typer.Argument(help="e.g. regulator:gb, operator:acme, auditor:ukas"),
    role: str = typer.Argument(help="regulator, auditor, operator or researcher"),
    jurisdiction: str = typer.Argument(help="two-letter code, e.g. GB"),
    key: Path = typer.Option(..., help="the principal's entry key file (its public key is sent)"),
    node: str = NODE,
) -> None:
    """Register a principal with the node's admin token (CUSTODES_ADMIN_TOKEN); print a token."""
    signer = load_key(key)
    with connect(node) as client:
        token = register_principal(
            client, admin_token(), pid, role=role, jurisdiction=jurisdiction, key=signer
        )
    typer.echo(token)


@app.command("operator")
def operator(
    operator_id: str = typer.Argument(help="operator:<slug>"),
    legal_name: str = typer.Option(...),
    kind: str = typer.Option("provider-deployer"),
    jurisdiction: str = typer.Option(...),
    address: str = typer.Option(...),
    contact_name: str = typer.Option(...),
    contact_email: str = typer.Option(...),
    contact_phone: str = typer.Option(...),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Register an operator (as its home regulator). Its address and contact are sent
    beside the logged entry, which carries only a salted commitment to them."""
    record = OperatorRecord.model_validate(
        {
            "id": operator_id,
            "legal_name": legal_name,
            "kind": kind,
            "jurisdiction": jurisdiction,
            "address": address,
            "contact": Contact(name=contact_name, email=contact_email, phone=contact_phone),
        }
    )
    with connect(node, actor, token, key) as client:
        index = client.register_operator(record)
    _logged("registered", operator_id, index, output)


@agent_app.command("register")
def register(
    record_file: Path = typer.Argument(help="the agent record as JSON (see AgentRecord)"),
    public_key: list[str] = typer.Option(..., help="the agent's Ed25519 public key, base64"),
    card: Path | None = typer.Option(None, help="a signed A2A AgentCard to verify and attach"),
    card_keys: Path | None = typer.Option(None, help="JWKs by kid for the card's signatures"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Register an agent (as its operator or home regulator)."""
    record = read_record(record_file, AgentRecord)
    keys = [_b64(k) for k in public_key]
    with connect(node, actor, token, key) as client:
        index = client.register_agent(
            record,
            keys,
            agent_card=_json_file(card) if card else None,
            agent_card_keys=_jwks(card_keys) if card_keys else None,
        )
    _logged("registered", record.id, index, output)


def _jwks(path: Path) -> dict[str, dict[str, Any]]:
    keys = _json_file(path)
    if not all(isinstance(v, dict) for v in keys.values()):
        raise ConfigError(f"{path} must map each kid to a JWK object")
    return {str(k): dict(v) for k, v in keys.items()}  # type: ignore[call-overload]


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except ValueError as exc:
        raise BadRequest("public keys are base64") from exc


_TEMPLATES: dict[str, Callable[[str], dict[str, Any]]] = {
    "agent": lambda j: {
        "id": f"urn:custodes:{j.lower()}:agent:example-trader",
        "name": "Example trading agent",
        "version": "1.0.0",
        "operator": "operator:acme",
        "contact": {"name": "Duty desk", "email": "duty@acme.example", "phone": "+44 20 7946 0000"},
        "home_jurisdiction": j,
        "operating_jurisdictions": [j],
        "sector": "finance",
        "risk_tier": "high",
        "autonomy_level": 3,
        "intended_purpose": "Executes equity orders within limits its operator sets.",
        "skills": [{"id": "trade-execution", "name": "Trade execution", "tags": ["equities"]}],
        "interfaces": [{"url": "https://agents.acme.example/a2a", "binding": "JSONRPC"}],
        "aliases": {"otel_agent_id": "example-trader"},
    },
    "model": lambda j: {
        "id": "model:acme-trader-1",
        "provider": "Acme Agents Ltd",
        "name": "acme-trader",
        "version": "1",
        "digest": "sha256:" + "0" * 64,
        "training_compute_flop": 1e23,
    },
    "operator": lambda j: {
        "id": "operator:acme",
        "legal_name": "Acme Agents Ltd",
        "kind": "provider-deployer",
        "jurisdiction": j,
        "address": "1 Example Street, London",
        "contact": {"name": "Duty desk", "email": "duty@acme.example", "phone": "+44 20 7946 0000"},
    },
}
_MODELS: dict[str, type[BaseModel]] = {
    "agent": AgentRecord,
    "model": ModelRecord,
    "operator": OperatorRecord,
}


@agent_app.command("template")
def template(
    kind: str = typer.Option("agent", help="agent, model or operator"),
    jurisdiction: str = typer.Option("GB", help="the home jurisdiction the example names"),
) -> None:
    """Print a filled example record as JSON, valid as it stands: edit it, save it, and
    pass it to `registry agent register` (or `registry model register`)."""
    if kind not in _TEMPLATES:
        raise ConfigError(f"no template for {kind!r}; choose one of {', '.join(_TEMPLATES)}")
    record = _MODELS[kind].model_validate(_TEMPLATES[kind](jurisdiction.upper()))
    emit_json(record.model_dump(mode="json", exclude_none=True))


@agent_app.command("show")
def show(
    agent_id: str,
    as_of: int | None = typer.Option(None, help="a log index"),
    node: str = NODE,
    actor: str | None = MAYBE_AS,
    token: str | None = MAYBE_TOKEN,
    key: Path | None = MAYBE_KEY,
    output: Output = OUTPUT,
) -> None:
    """Show an agent as it is, or as it stood at a log index, with its inclusion proof.

    Public without credentials; with --token, private fields show where it entitles."""
    with connect(node, actor, token, key) as client:
        answer = client.agent(agent_id, as_of)
    emit_record(answer, output, title=agent_id)


@agent_app.command("list")
def list_agents(
    jurisdiction: str | None = None,
    sector: str | None = None,
    status: str | None = None,
    operator: str | None = None,
    skill: str | None = None,
    limit: int = 50,
    node: str = NODE,
    token: str | None = MAYBE_TOKEN,
    output: Output = OUTPUT,
) -> None:
    """List agents (the public view; no credentials needed)."""
    with connect(node, token=token) as client:
        found = client.agents(
            jurisdiction=jurisdiction,
            sector=sector,
            status=status,
            operator=operator,
            skill=skill,
            limit=limit,
        )
    rows = [_agent_row(item) for item in found["items"]]
    columns = ("agent", "sector", "home", "operates in", "status")
    emit_table(columns, rows, output, items=found)


def _agent_row(item: dict[str, Any]) -> tuple[str, ...]:
    rec = item["record"]
    operating = ", ".join(rec.get("operating_jurisdictions", []))
    return (rec["id"], rec["sector"], rec["home_jurisdiction"], operating, item["status"])


@agent_app.command("rotate-key")
def rotate_key(
    agent_id: str,
    add: list[str] = typer.Option([], help="new public key, base64"),
    retire: list[str] = typer.Option([], help="keyid to retire"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Add and/or retire an agent's keys (logged; the key history keeps both)."""
    with connect(node, actor, token, key) as client:
        index = client.rotate_key(agent_id, [_b64(k) for k in add], retire)
    _logged("rotated keys of", agent_id, index, output)


@model_app.command("register")
def register_model(
    record_file: Path = typer.Argument(help="the model record as JSON (see ModelRecord)"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Register a model; the operator registering it holds it."""
    with connect(node, actor, token, key) as client:
        _send_model(record_file, client.register_model, "registered", output)


@model_app.command("update")
def update_model(
    record_file: Path = typer.Argument(help="the corrected model record as JSON"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Correct a model's record (its holder, or its home regulator, who may hand it on)."""
    with connect(node, actor, token, key) as client:
        _send_model(record_file, client.update_model, "updated", output)


def _send_model(
    record_file: Path, send: Callable[[ModelRecord], int], done: str, output: Output
) -> None:
    record = read_record(record_file, ModelRecord)
    _logged(done, record.id, send(record), output)


def _logged(done: str, subject: str, index: int, output: Output) -> None:
    """Say that a change was logged: a sentence, or ``{"id", "index"}`` for scripts."""
    if output is Output.json:
        emit_json({"id": subject, "index": index})
    else:
        typer.echo(f"{done} {subject} at log index {index}")


@model_app.command("retire")
def retire_model(
    model_id: str,
    reason: str = typer.Option(..., help="why, for the log"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Retire a model (its holder, or its home regulator settling a dispute)."""
    with connect(node, actor, token, key) as client:
        index = client.retire_model(model_id, reason)
    _logged("retired", model_id, index, output)


@model_app.command("list")
def list_models(node: str = NODE, token: str | None = MAYBE_TOKEN, output: Output = OUTPUT) -> None:
    """List registered models (public: no credentials needed)."""
    with connect(node, token=token) as client:
        models = client.models()
    rows = [_model_row(m) for m in models]
    emit_table(("model", "provider, name, version", "holder", "status"), rows, output, items=models)


def _model_row(item: dict[str, Any]) -> tuple[Any, ...]:
    record = item["record"]
    name = f"{record['provider']} {record['name']} {record['version']}"
    return (record["id"], name, item["holder"], item["status"])


@model_app.command("show")
def show_model(
    model_id: str,
    as_of: int | None = typer.Option(None, help="a log index"),
    node: str = NODE,
    token: str | None = MAYBE_TOKEN,
    output: Output = OUTPUT,
) -> None:
    """Show a model as it is, or as it stood at a log index (public)."""
    with connect(node, token=token) as client:
        emit_record(client.model(model_id, as_of), output, title=model_id)


@app.command("rebuild")
def rebuild(output: Output = OUTPUT) -> None:
    """Replay this node's log into empty tables and prove they equal the live registry
    (run where the node's data directory is, or set CUSTODES_DATA_DIR)."""
    settings = Settings()
    require_initialised(settings)  # never a new, empty node that trivially "equals"
    node = Node(settings)
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("replaying the log", total=None)
            report = rebuild_projection(
                node.store, lambda done, total: bar.update(task, completed=done, total=total)
            )
    finally:
        node.close()
    rows = [
        (name, live, rebuilt, "yes" if same else "NO")
        for name, (live, rebuilt, same) in report.tables.items()
    ]
    emit_table(
        ("table", "live rows", "rebuilt rows", "equal"),
        rows,
        output,
        items={
            "entries": report.entries,
            "equal": report.equal,
            "tables": [
                {"table": n, "live_rows": lv, "rebuilt_rows": rb, "equal": e == "yes"}
                for n, lv, rb, e in rows
            ],
        },
        title=f"{report.entries} entries",
    )
    if not report.equal:
        raise ConfigError("the live registry differs from the log's replay (see the table)")

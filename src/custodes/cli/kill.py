"""``custodes kill``: suspend, revoke, reinstate an agent or, by selector, many; list orders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from pydantic import ValidationError

from custodes.cli.output import OUTPUT, Output, emit_record, emit_table
from custodes.cli.remote import AS, KEY, MAYBE_TOKEN, NODE, TOKEN, connect
from custodes.client import load_key
from custodes.errors import ConfigError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import sign_envelope
from custodes.registry.models import SELECTOR_FIELDS, KillOrder, Selector, new_kill_order
from custodes.registry.service import ORDER_TYPE

__all__ = ["app", "outcome", "prepared_order"]

app = typer.Typer(no_args_is_help=True, help="Kill orders: effective at once, logged, pushed.")
TERRITORY = typer.Option(None, help="only in this territory (two letters); default global")
_DONE = {"suspend": "suspended", "revoke": "revoked", "reinstate": "reinstated"}
_COLUMNS = ("order", "agent", "op", "scope", "status", "issued at", "by", "reason")


def outcome(op: str, answer: dict[str, Any], territory: str | None) -> str:
    """What an order did, in words: a territorial one leaves the agent's status elsewhere;
    a selector order names how many agents it covers."""
    where = f" in {territory}" if territory else ""
    if answer.get("state") == "queued":  # a foreign agent's home node has not answered yet
        return (
            f"forwarded to the {answer['forwarded_to']} node (the agent's home), not reached "
            f"yet: message {answer['message_id']} is queued and retried "
            f"(GET /api/v1/federation/outbox/{answer['message_id']})"
        )
    count = answer.get("agents")
    whom = answer.get("agent_id") or (
        f"{count} agent{'' if count == 1 else 's'}" if count is not None else "the agents"
    )
    done = f"{_DONE[op]} {whom}{where}: order {answer['order_id']} at log index {answer['index']}"
    if answer.get("agent_id") is None:  # a selector order: each agent's status is its own
        return f"{done} (list them: GET /api/v1/kill-orders/{answer['order_id']}/agents)"
    status = (
        f"status elsewhere {answer['status']}" if territory else f"status now {answer['status']}"
    )
    home = answer.get("forwarded_to")
    return f"{done}; {status}" + (f" (at the {home} node, the agent's home)" if home else "")


SELECTOR = typer.Option(
    None,
    help="instead of one agent, every agent matching all of key=value,... with keys "
    + ", ".join(SELECTOR_FIELDS)
    + " (e.g. operator=acme,sector=finance,jurisdiction=FR)",
)
_PREFIXES = {"operator": "operator:", "model": "model:"}


def _selector(text: str | None) -> Selector | None:
    """``operator=acme,sector=finance`` as a Selector (ids may omit their prefix)."""
    if text is None:
        return None
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = (p.strip() for p in part.partition("="))
        if not sep or key not in SELECTOR_FIELDS or not value:
            raise ConfigError(
                f"--selector takes key=value pairs separated by commas, keys among "
                f"{', '.join(SELECTOR_FIELDS)}; got {part.strip()!r}"
            )
        prefix = _PREFIXES.get(key, "")
        fields[key] = value if value.startswith(prefix) else prefix + value
    try:
        return Selector.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"--selector {where}: {first['msg']}") from exc


def _target(agent_id: str | None, selector: str | None) -> tuple[str | None, Selector | None]:
    if (agent_id is None) == (selector is None):
        raise ConfigError("name one agent, or give --selector for many, not both")
    return agent_id, _selector(selector)


def _issue(
    op: str,
    agent_id: str | None,
    reason: str,
    territory: str | None,
    lifts: str | None,
    output: Output,
    client_args: tuple[str, str, str, Path],
    selector: Selector | None = None,
) -> None:
    with connect(*client_args) as client:
        answer = client.order(
            op, agent_id, reason, territory=territory, lifts=lifts, selector=selector
        )
    if output is Output.json:
        emit_record(answer | {"op": op, "territory": territory}, output)
    else:
        typer.echo(outcome(op, answer, territory))


@app.command("suspend")
def suspend(
    agent_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    selector: str | None = SELECTOR,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Suspend an agent, globally (home regulator, operator) or in one territory."""
    one, many = _target(agent_id, selector)
    _issue("suspend", one, reason, territory, None, output, (node, actor, token, key), many)


@app.command("revoke")
def revoke(
    agent_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    selector: str | None = SELECTOR,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Revoke an agent (its home regulator only)."""
    one, many = _target(agent_id, selector)
    _issue("revoke", one, reason, territory, None, output, (node, actor, token, key), many)


@app.command("reinstate")
def reinstate(
    agent_id: str,
    order_id: str | None = typer.Argument(None),
    reason: str = typer.Option(...),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Lift one order (by whoever issued it, or the home regulator); logged too.

    ``reinstate AGENT ORDER_ID`` lifts an order naming that agent; ``reinstate ORDER_ID``
    lifts a selector order for every agent it covered.
    """
    agent, lifts = (None, agent_id) if order_id is None else (agent_id, order_id)
    _issue("reinstate", agent, reason, None, lifts, output, (node, actor, token, key))


@app.command("list")
def list_orders(
    agent_id: str | None = None,
    active: bool = False,
    node: str = NODE,
    token: str | None = MAYBE_TOKEN,
    output: Output = OUTPUT,
) -> None:
    """List kill orders (public: no credentials needed)."""
    with connect(node, token=token) as client:
        orders = client.kill_orders(agent_id, active=active)
    rows = [
        (
            o["order_id"],
            o["agent_id"],
            o["op"],
            o["territory"] or "global",
            o["status"],
            o["issued_index"],
            o["authority"],
            o["reason"],
        )
        for o in orders
    ]
    emit_table(_COLUMNS, rows, output, items=orders)


def prepared_order(
    op: str, agent_id: str | None, reason: str, territory: str | None, lifts: str | None, actor: str
) -> KillOrder:
    """The order ``custodes kill prepare`` signs: as the client builds it for the API."""
    if op not in _DONE:
        raise ConfigError(f"the operation is one of {', '.join(_DONE)}; got {op!r}")
    try:
        return new_kill_order(op, agent_id, reason, actor, territory=territory, lifts=lifts)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the order"
        raise ConfigError(f"{where}: {first['msg']}") from exc


@app.command("prepare")
def prepare(
    op: str = typer.Argument(..., help="suspend, revoke or reinstate"),
    agent_id: str = typer.Argument(..., help="the agent (- for a lifted selector order)"),
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    lifts: str | None = typer.Option(None, help="the order a reinstate lifts"),
    actor: str = AS,
    key: Path = KEY,
) -> None:
    """Sign an order with your key and print its envelope, to paste into the dashboard.

    No token and no network: the dashboard's signed-in session submits it, and the node
    checks the signature against your registered key.
    """
    agent = None if agent_id == "-" else agent_id
    order = prepared_order(op, agent, reason, territory, lifts, actor)
    payload = order.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(ORDER_TYPE, payload, [load_key(key)])
    typer.echo(canonical_dumps(envelope.to_json()).decode())

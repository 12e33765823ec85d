"""``custodes kill``: suspend, revoke, reinstate an agent; list orders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from custodes.cli.output import OUTPUT, Output, emit_record, emit_table
from custodes.cli.remote import AS, KEY, MAYBE_TOKEN, NODE, TOKEN, connect

__all__ = ["app", "outcome"]

app = typer.Typer(no_args_is_help=True, help="Kill orders: effective at once, logged, pushed.")
TERRITORY = typer.Option(None, help="only in this territory (two letters); default global")
_DONE = {"suspend": "suspended", "revoke": "revoked", "reinstate": "reinstated"}
_COLUMNS = ("order", "agent", "op", "scope", "status", "issued at", "by", "reason")


def outcome(op: str, answer: dict[str, Any], territory: str | None) -> str:
    """What an order did, in words: a territorial one leaves the agent's status elsewhere."""
    where = f" in {territory}" if territory else ""
    status = (
        f"status elsewhere {answer['status']}" if territory else f"status now {answer['status']}"
    )
    return (
        f"{_DONE[op]} {answer['agent_id']}{where}: order {answer['order_id']} at log index "
        f"{answer['index']}; {status}"
    )


def _issue(
    op: str,
    agent_id: str,
    reason: str,
    territory: str | None,
    lifts: str | None,
    output: Output,
    client_args: tuple[str, str, str, Path],
) -> None:
    with connect(*client_args) as client:
        answer = client.order(op, agent_id, reason, territory=territory, lifts=lifts)
    if output is Output.json:
        emit_record(answer | {"op": op, "territory": territory}, output)
    else:
        typer.echo(outcome(op, answer, territory))


@app.command("suspend")
def suspend(
    agent_id: str,
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Suspend an agent, globally (home regulator, operator) or in one territory."""
    _issue("suspend", agent_id, reason, territory, None, output, (node, actor, token, key))


@app.command("revoke")
def revoke(
    agent_id: str,
    reason: str = typer.Option(...),
    territory: str | None = TERRITORY,
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Revoke an agent (its home regulator only)."""
    _issue("revoke", agent_id, reason, territory, None, output, (node, actor, token, key))


@app.command("reinstate")
def reinstate(
    agent_id: str,
    order_id: str,
    reason: str = typer.Option(...),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Lift one order (by whoever issued it, or the home regulator); logged too."""
    _issue("reinstate", agent_id, reason, None, order_id, output, (node, actor, token, key))


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

"""``custodes audit killswitch-test AGENT``: test an agent's kill switch from its home.

The agent's home node pushes a test order to the agent's guard, waits for its halt
record (at most the deadline), ends the test and logs the result as evidence
(docs/design/0028). Run as a regulator of the agent's home (``--token``) or as the
node's admin (``--admin``, with CUSTODES_ADMIN_TOKEN).
"""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console

from custodes.cli.output import OUTPUT, Output, emit_record
from custodes.cli.remote import MAYBE_TOKEN, NODE, admin_token
from custodes.client import Client
from custodes.errors import ConfigError

__all__ = ["killswitch_test", "register"]

_err = Console(stderr=True)


def killswitch_test(
    agent_id: str = typer.Argument(..., help="the agent to test, e.g. urn:custodes:gb:agent:x"),
    deadline_ms: int | None = typer.Option(
        None, "--deadline-ms", min=1, max=60_000, help="how long to wait for the halt record"
    ),
    node: str = NODE,
    token: str | None = MAYBE_TOKEN,
    admin: bool = typer.Option(False, "--admin", help="use the node's admin token instead"),
    output: Output = OUTPUT,
) -> None:
    """Send the agent a TEST kill order (it suspends nothing) and log whether it halted."""
    if not admin and not token:
        raise ConfigError("pass --token (a regulator of the agent's home) or --admin")
    client = Client(node, token=token, admin_token=admin_token() if admin else None)
    with client, _err.status(f"testing the kill switch of {agent_id}…"):
        answer = client.killswitch_test(agent_id, deadline_ms=deadline_ms, admin=admin)
    emit_record(_summary(answer), output, title="kill-switch conformance test")
    if not answer["record"]["passed"]:
        raise typer.Exit(1)


def _summary(answer: dict[str, Any]) -> dict[str, Any]:
    record = answer["record"]
    entry = record.get("halt_entry") or {}
    return {
        "test": record["test_id"],
        "agent": record["agent_id"],
        "passed": record["passed"],
        "halt observed": record["halt_observed"],
        "time to halt (ms)": record.get("time_to_halt_ms"),
        "deadline (ms)": record["deadline_ms"],
        "halt entry": f"{entry['origin']} #{entry['index']}" if entry else None,
        "reason": record.get("reason"),
        "logged at index": answer["index"],
    }


def register(app: typer.Typer) -> None:
    """Add ``killswitch-test`` to the ``audit`` group ``app``."""
    app.command("killswitch-test")(killswitch_test)

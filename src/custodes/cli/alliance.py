"""``custodes alliance``: look up any agent of the alliance through any member node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from custodes.cli.output import OUTPUT, Output, emit_record, emit_table
from custodes.cli.remote import MAYBE_TOKEN, NODE, connect
from custodes.federation.roster import load_genesis

__all__ = ["app", "verdict"]

app = typer.Typer(no_args_is_help=True, help="Cross-border look-ups, with proof.")


def verdict(answer: dict[str, Any]) -> str:
    """One line a person can act on: active, suspended in XX, revoked; stale and its age."""
    status = str(answer.get("status"))
    places = [p for p in answer.get("suspended_in", []) if p != "*"]
    if status == "active" and places:
        status = "active, suspended in " + ", ".join(places)
    elif status == "suspended":
        status = "suspended everywhere"
    if answer.get("stale"):
        status += f" (STALE: data {answer.get('age_s')} s old, its home did not answer)"
    return status


def _summary(answer: dict[str, Any]) -> dict[str, Any]:
    record = answer.get("record", {})
    summary = {
        "agent": answer.get("agent_id"),
        "status": verdict(answer),
        "name": record.get("name"),
        "operator": record.get("operator"),
        "home": answer.get("home"),
        "source": answer.get("source"),
        "age_s": answer.get("age_s"),
        "entry_index": answer.get("entry_index"),
        "tree_size": (answer.get("proof") or {}).get("tree_size"),
        "cosigners": ", ".join(answer.get("cosigners", [])),
        "final": answer.get("final"),
        "orders": len(answer.get("orders", [])),
    }
    if "verified" in answer:
        summary["verified here"] = "proof, checkpoint signature and cosignatures"
    return summary


@app.command("agent")
def agent(
    agent_id: str = typer.Argument(..., help="urn:custodes:<jurisdiction>:agent:<slug>"),
    node: str = NODE,
    token: str | None = MAYBE_TOKEN,
    roster: Path | None = typer.Option(
        None, help="the alliance roster (genesis) to verify the answer against, here"
    ),
    output: Output = OUTPUT,
) -> None:
    """Any alliance agent's status, from any node: its own, a mirror, or the home node."""
    trusted = load_genesis(roster) if roster is not None else None
    with connect(node, token=token) as client:
        answer = client.alliance_agent(agent_id, trusted)
    if output is Output.json:
        emit_record(answer, output)
    else:
        emit_record(_summary(answer), output, title=agent_id)


@app.command("mirrors")
def mirrors(node: str = NODE, output: Output = OUTPUT) -> None:
    """The node's mirror of each peer: size mirrored, age, stale, alarm, last error."""
    with connect(node) as client:
        states = client.alliance_mirrors()
    rows = [
        (s["party"], s["size"], s["age_s"], "yes" if s["stale"] else "no", _trouble(s))
        for s in states
    ]
    emit_table(["party", "size", "age (s)", "stale", "alarm or error"], rows, output, items=states)


def _trouble(state: dict[str, Any]) -> str:
    alarm = state.get("alarm")
    if alarm:
        return f"ALARM: {alarm.get('reason')}"
    return str(state.get("error") or "")

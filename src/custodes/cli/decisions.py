"""``custodes decisions list``: an agent's logged decisions by time, every one verified.

Each page is checked before anything is printed: the checkpoint against the log's key,
every entry against its inclusion proof, and every decision against the request (the
agent asked for, inside the window). A node that sends anything else is refused.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import typer

from custodes.cli.output import OUTPUT, Output, emit_json, emit_table
from custodes.cli.proven import LOG_KEY, log_verifier, say_which_key, verify_page
from custodes.cli.remote import NODE
from custodes.client import Client
from custodes.ledger.errors import VerificationError
from custodes.ledger.note import NoteVerifier
from custodes.ledger.payloads import DECISION_TYPE, DecisionRecord
from custodes.ledger.readindex import parse_instant

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Read agents' logged decisions, each one verified.")
_COLUMNS = ("index", "decided_at", "action", "rationale", "counterparties")


# --- the node's endpoints (one function each) ------------------------------------------


def _decisions(client: Client, agent: str, params: dict[str, Any]) -> dict[str, Any]:
    start, end = _instant("from", params["from"]), _instant("to", params["to"])
    return client.decisions(agent, start, end, params["cursor"], params["limit"])


# --- checks ----------------------------------------------------------------------------


def _instant(name: str, value: str | None) -> datetime | None:
    return parse_instant(f"--{name}", value)


def _check_decision(item: dict[str, Any], agent: str, start: Any, end: Any) -> None:
    """The node proved the entry; check it is what was asked for."""
    index = item["index"]
    if item["entry"].get("payloadType") != DECISION_TYPE:
        raise VerificationError(f"refusing to print: entry {index} is not a decision record")
    record = DecisionRecord.model_validate(item["decision"])
    decided = record.decided_at
    if decided.tzinfo is None:  # the node indexes a time without an offset as UTC
        decided = decided.replace(tzinfo=UTC)
    if record.agent != agent or (start is not None and decided < start):
        raise VerificationError(f"refusing to print: entry {index} is not a decision asked for")
    if end is not None and decided >= end:
        raise VerificationError(f"refusing to print: entry {index} is after --to")


def _pages(
    client: Client, agent: str, params: dict[str, Any], verifier: NoteVerifier, every: bool
) -> Iterator[dict[str, Any]]:
    """Verified pages, following ``next_cursor`` when ``every``."""
    window = (_instant("from", params["from"]), _instant("to", params["to"]))
    while True:
        page = _decisions(client, agent, params)
        verify_page(page, "decision", verifier)
        for item in page["items"]:
            _check_decision(item, agent, *window)
        yield page
        if not every or page.get("next_cursor") is None:
            return
        params = {**params, "cursor": page["next_cursor"]}


def _emit(pages: list[dict[str, Any]], output: Output) -> None:
    items = [item for page in pages for item in page["items"]]
    last = pages[-1]
    if output is Output.json:
        emit_json({**last, "items": items})
        return
    rows = [[i["index"], *(i["decision"].get(c) for c in _COLUMNS[1:])] for i in items]
    emit_table(_COLUMNS, rows, output, title=f"verified against tree size {last['tree_size']}")
    if last.get("next_cursor"):
        typer.echo(f"more: --cursor {last['next_cursor']} (or --all)", err=True)


@app.command("list")
def list_decisions(
    agent: str = typer.Option(..., "--agent", help="the agent's id"),
    start: str | None = typer.Option(None, "--from", help="RFC 3339 instant, inclusive"),
    end: str | None = typer.Option(None, "--to", help="RFC 3339 instant, exclusive"),
    limit: int = typer.Option(100, min=1, max=1000, help="decisions per page"),
    every: bool = typer.Option(False, "--all", help="follow the cursor to the last page"),
    cursor: str | None = typer.Option(None, help="continue from a previous page"),
    node: str = NODE,
    log_key: str | None = LOG_KEY,
    output: Output = OUTPUT,
) -> None:
    """An agent's decisions in [--from, --to), each proven in the log before it is shown."""
    params = {"from": start, "to": end, "limit": limit, "cursor": cursor}
    with Client(node) as client:
        verifier = log_verifier(log_key, "" if log_key else client.node_info().log_vkey)
        pages = list(_pages(client, agent, params, verifier, every))
    say_which_key(log_key)
    _emit(pages, output)

"""``custodes decisions list``: an agent's logged decisions by time, every one verified;
``custodes decisions erase``: a home regulator erases one decision's clear text.

Each page is checked before anything is printed: the checkpoint against the log's key,
every entry against its inclusion proof, every decision against the request (the agent
asked for, inside the window), and every clear record shown against the commitment in
the log. A node that sends anything else is refused. Committed records show their clear
text only with a token that entitles to it (``--token``); otherwise their commitment.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from custodes.cli.output import OUTPUT, Output, emit_json, emit_record, emit_table
from custodes.cli.proven import LOG_KEY, log_verifier, say_which_key, verify_page
from custodes.cli.remote import AS, KEY, MAYBE_TOKEN, NODE, TOKEN, connect
from custodes.client import Client
from custodes.errors import BadRequest
from custodes.ledger.commitments import open_decision, parse_opening
from custodes.ledger.errors import EnvelopeError, VerificationError
from custodes.ledger.note import NoteVerifier
from custodes.ledger.payloads import DECISION_TYPE, CommittedDecision, DecisionRecord
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
    record = _public(item)
    decided = record.decided_at
    if decided.tzinfo is None:  # the node indexes a time without an offset as UTC
        decided = decided.replace(tzinfo=UTC)
    if record.agent != agent or (start is not None and decided < start):
        raise VerificationError(f"refusing to print: entry {index} is not a decision asked for")
    if end is not None and decided >= end:
        raise VerificationError(f"refusing to print: entry {index} is after --to")


def _public(item: dict[str, Any]) -> DecisionRecord | CommittedDecision:
    """The logged record; a committed one's clear text checked against its commitment."""
    logged = item["decision"]
    if logged.get("v") != 2:
        return DecisionRecord.model_validate(logged)
    committed = CommittedDecision.model_validate(logged)
    if "clear" in item:
        try:
            open_decision(committed, parse_opening(item["clear"]))
        except (BadRequest, EnvelopeError) as exc:
            raise VerificationError(
                f"refusing to print: the clear text of entry {item['index']} does not open "
                f"its commitment ({exc.message})"
            ) from exc
    return committed


def _row(item: dict[str, Any]) -> list[Any]:
    """A table row: the clear record where shown, else what the log says about it."""
    logged = item["decision"]
    record = item.get("clear", {}).get("record") if logged.get("v") == 2 else logged
    if record is None:
        erased = item.get("erased")
        note = f"erased at {erased['index']} by {erased['by']}" if erased else "committed"
        record = {"decided_at": logged["decided_at"], "action": f"{logged['kind']} ({note})"}
        record["rationale"] = logged["commitment"]
    return [item["index"], *(record.get(c) for c in _COLUMNS[1:])]


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
    rows = [_row(i) for i in items]
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
    token: str | None = MAYBE_TOKEN,
    output: Output = OUTPUT,
) -> None:
    """An agent's decisions in [--from, --to), each proven in the log before it is shown;
    committed ones in clear where --token entitles (each such read is logged)."""
    params = {"from": start, "to": end, "limit": limit, "cursor": cursor}
    with connect(node, token=token) as client:
        verifier = log_verifier(log_key, "" if log_key else client.node_info().log_vkey)
        pages = list(_pages(client, agent, params, verifier, every))
    say_which_key(log_key)
    _emit(pages, output)


@app.command("erase")
def erase(
    index: int = typer.Argument(..., min=0, help="the decision's log index"),
    legal_basis: str = typer.Option(..., "--legal-basis", help="the legal request, cited"),
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    node: str = NODE,
    output: Output = OUTPUT,
) -> None:
    """Erase a decision's clear text and salt (its home regulator, on a legal request).

    The erasure is logged; the commitment and every proof stay valid."""
    with connect(node, actor, token, key) as client:
        commitment = client.decision(index)["decision"].get("commitment")
        if commitment is None:
            raise BadRequest(
                f"decision {index} is a plain record: its text is in the public log and "
                "cannot be erased",
                code="plain_record",
                status=409,
            )
        answer = client.erase_decision(index, commitment, legal_basis)
    emit_record(answer, output)

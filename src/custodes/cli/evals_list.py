"""``custodes eval list``: published evaluation results, filtered, every one verified.

Registered on the ``eval`` group as ``list`` (``cli/main.py``). Each page is checked as
``custodes decisions list`` checks its pages (``custodes.cli.proven``), and every result
against the filters asked for, before anything is printed.
"""

from __future__ import annotations

from typing import Any

import typer

from custodes.cli.output import OUTPUT, Output, emit_json, emit_table
from custodes.cli.proven import LOG_KEY, log_verifier, say_which_key, verify_page
from custodes.cli.remote import NODE
from custodes.client import Client
from custodes.evals.results import RESULT_TYPE
from custodes.ledger.errors import VerificationError
from custodes.ledger.note import NoteVerifier

__all__ = ["list_results"]

_COLUMNS = ("index", "suite", "agent", "model", "epoch", "asr", "finished_at", "issuer")


def _results(client: Client, params: dict[str, Any]) -> dict[str, Any]:
    return client.eval_results(
        params["agent_id"],
        params["suite"],
        since=params["since"],
        cursor=params["cursor"],
        limit=params["limit"],
    )


def _check(item: dict[str, Any], agent: str | None, suite: str | None) -> None:
    record, index = item["record"], item["index"]
    if item["entry"].get("payloadType") != RESULT_TYPE:
        raise VerificationError(f"refusing to print: entry {index} is not an evaluation result")
    if (agent is not None and record.get("agent_id") != agent) or (
        suite is not None and record.get("suite", {}).get("id") != suite
    ):
        raise VerificationError(f"refusing to print: entry {index} does not match the filters")


def _verified(
    client: Client, params: dict[str, Any], verifier: NoteVerifier, every: bool
) -> list[dict[str, Any]]:
    pages = []
    while True:
        page = _results(client, params)
        verify_page(page, "record", verifier)
        for item in page["items"]:
            _check(item, params["agent_id"], params["suite"])
        pages.append(page)
        if not every or page.get("next_cursor") is None:
            return pages
        params = {**params, "cursor": page["next_cursor"]}


def _row(item: dict[str, Any]) -> list[Any]:
    record = item["record"]
    overall: dict[str, Any] = next((f for f in record["families"] if f["family"] == "overall"), {})
    return [
        item["index"],
        f"{record['suite']['id']}@{record['suite']['version']}",
        record.get("agent_id"),
        record.get("model"),
        record.get("epoch"),
        overall.get("asr"),
        record.get("finished_at"),
        record.get("issuer"),
    ]


def list_results(
    agent: str | None = typer.Option(None, "--agent", help="results that tested this agent"),
    suite: str | None = typer.Option(None, "--suite", help="a suite id, e.g. core-1"),
    since: str | None = typer.Option(None, help="RFC 3339 instant: finished then or later"),
    limit: int = typer.Option(100, min=1, max=1000, help="results per page"),
    every: bool = typer.Option(False, "--all", help="follow the cursor to the last page"),
    cursor: str | None = typer.Option(None, help="continue from a previous page"),
    node: str = NODE,
    log_key: str | None = LOG_KEY,
    output: Output = OUTPUT,
) -> None:
    """Published evaluation results, each proven in the log before it is shown."""
    params = {"agent_id": agent, "suite": suite, "since": since, "limit": limit, "cursor": cursor}
    with Client(node) as client:
        verifier = log_verifier(log_key, "" if log_key else client.node_info().log_vkey)
        pages = _verified(client, params, verifier, every)
    say_which_key(log_key)
    items = [item for page in pages for item in page["items"]]
    if output is Output.json:
        emit_json({**pages[-1], "items": items})
        return
    title = f"verified against tree size {pages[-1]['tree_size']}"
    emit_table(_COLUMNS, [_row(i) for i in items], output, title=title)
    if pages[-1].get("next_cursor"):
        typer.echo(f"more: --cursor {pages[-1]['next_cursor']} (or --all)", err=True)

"""How commands print what they found: a table or a record for people, JSON for scripts.

Every command that prints a table or a record takes ``--output table|json`` (``OUTPUT``)
and prints through :func:`emit_record` or :func:`emit_table`. JSON goes to stdout
unstyled, one document, so ``custodes … --output json | jq`` works. Tables wrap long
cells instead of cutting them: an index, a hash or an id printed with an ellipsis is a
figure nobody can use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

__all__ = ["OUTPUT", "Output", "emit_json", "emit_record", "emit_table", "stdout"]

stdout = Console(soft_wrap=False)


class Output(StrEnum):
    table = "table"
    json = "json"


OUTPUT = typer.Option(
    Output.table,
    "--output",
    "-o",
    case_sensitive=False,
    help="table (for people) or json (for scripts)",
)


def emit_json(value: Any) -> None:
    """Print ``value`` as indented JSON on stdout, with no styling or wrapping."""
    typer.echo(json.dumps(value, indent=1, sort_keys=False, default=str))


def emit_record(record: Mapping[str, Any], output: Output, *, title: str | None = None) -> None:
    """Print one record: a two-column table of its fields, or the record as JSON."""
    if output is Output.json:
        emit_json(record)
        return
    table = _table(title, ("field", "value"))
    for field, value in record.items():
        table.add_row(str(field), _cell(value))
    stdout.print(table)


def emit_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    output: Output,
    *,
    items: Any = None,
    title: str | None = None,
) -> None:
    """Print rows as a table, or ``items`` (the rows as records when omitted) as JSON.

    Pass ``items`` when the JSON form should carry the node's full records rather than
    the columns the table picked from them.
    """
    if output is Output.json:
        records = [dict(zip(columns, row, strict=True)) for row in rows]
        emit_json(items if items is not None else records)
        return
    table = _table(title, columns)
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    stdout.print(table)


def _table(title: str | None, columns: Sequence[str]) -> Table:
    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=False)
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    return json.dumps(value, indent=1, default=str)

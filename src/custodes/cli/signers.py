"""``custodes signers``: the keys this node accepts signatures from (read only).

Every key is registered by the entry that gives it a role: the node's own key by its
first entry, a principal's by ``custodes registry principal``, an agent's by
``custodes registry agent register`` or ``rotate-key``. There is no ``signers add``: a
key registered on its own, outside the registry, could sign nothing this node accepts
(decisions come only from registered agents, registry changes only from principals).
"""

from __future__ import annotations

import typer

from custodes.cli.output import OUTPUT, Output, emit_table
from custodes.config import Settings, require_initialised
from custodes.errors import ConfigError
from custodes.node import Node

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="The keys this node accepts signatures from.")


@app.command("add", hidden=True, context_settings={"ignore_unknown_options": True})
def add(_args: list[str] = typer.Argument(None, hidden=True)) -> None:
    """Removed: say what to run instead."""
    raise ConfigError(
        "`signers add` was removed: a key outside the registry can sign nothing this node "
        "accepts; register an agent's key with `custodes registry agent register` (or "
        "`rotate-key`), a principal's with `custodes registry principal`"
    )


@app.command("list")
def list_signers(output: Output = OUTPUT) -> None:
    """List the keys registered on this node (run where its data directory is)."""
    settings = Settings()
    require_initialised(settings)
    node = Node(settings)
    try:
        rows = node.signers.list()
    finally:
        node.close()
    emit_table(
        ("name", "keyid", "status", "entry"),
        [(r["name"], r["keyid"], r["status"], r["entry_index"]) for r in rows],
        output,
        items=rows,
    )

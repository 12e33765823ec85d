"""``custodes lease``: ask the home node for an operating lease, as an agent."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import orjson
import typer

from custodes.cli.output import OUTPUT, Output, emit_json, emit_record
from custodes.cli.remote import NODE, connect
from custodes.client import load_key
from custodes.sdk.leases import lease_request

__all__ = ["app"]

app = typer.Typer(no_args_is_help=True, help="Operating leases.")


@app.command("request")
def request(
    agent_id: str,
    key: Path = typer.Option(..., help="the agent's entry key file"),
    node: str = NODE,
    output: Output = OUTPUT,
) -> None:
    """Request a lease with the agent's key; print the signed lease and its terms."""
    envelope = lease_request(load_key(key), agent_id, time.time())
    with connect(node) as client:
        signed: dict[str, Any] = orjson.loads(client.lease(envelope))
    terms = orjson.loads(base64.b64decode(signed["payload"]))
    if output is Output.json:
        emit_json({"lease": signed, "terms": terms})
    else:
        emit_record(terms, output, title="lease (signed by the node)")

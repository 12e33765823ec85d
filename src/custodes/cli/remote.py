"""What the remote command groups share: which node, which principal, which key.

Changes need ``--as``, ``--token`` and ``--key`` (``AS``, ``TOKEN``, ``KEY``); public
reads take them optionally (``MAYBE_AS``, …) and send the token when given, so private
fields show where it entitles. Every command talks to the node through one
``custodes.client.Client`` (``connect``).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from custodes.client import Client, load_key
from custodes.errors import ConfigError

__all__ = [
    "AS",
    "KEY",
    "MAYBE_AS",
    "MAYBE_KEY",
    "MAYBE_TOKEN",
    "NODE",
    "TOKEN",
    "admin_token",
    "connect",
]

NODE = typer.Option(
    "http://127.0.0.1:8400", "--node", envvar="CUSTODES_NODE_URL", help="the member node's URL"
)
_AS_HELP = "the acting principal, e.g. regulator:gb or operator:acme"
_TOKEN_HELP = "the principal's API token"  # noqa: S105  # help text, not a secret
_KEY_HELP = "the principal's entry key file (custodes keys generate --kind entry)"
AS = typer.Option(..., "--as", envvar="CUSTODES_PRINCIPAL", help=_AS_HELP)
TOKEN = typer.Option(..., "--token", envvar="CUSTODES_TOKEN", help=_TOKEN_HELP)
KEY = typer.Option(..., "--key", envvar="CUSTODES_KEY_FILE", help=_KEY_HELP)
MAYBE_AS = typer.Option(None, "--as", envvar="CUSTODES_PRINCIPAL", help=_AS_HELP)
MAYBE_TOKEN = typer.Option(
    None, "--token", envvar="CUSTODES_TOKEN", help=_TOKEN_HELP + " (optional: public reads)"
)
MAYBE_KEY = typer.Option(None, "--key", envvar="CUSTODES_KEY_FILE", help=_KEY_HELP)


def connect(
    node: str, actor: str | None = None, token: str | None = None, key: Path | None = None
) -> Client:
    """A client for ``node``, acting as ``actor`` where given."""
    signer = load_key(key) if key is not None else None
    return Client(node, principal=actor, token=token, key=signer)


def admin_token() -> str:
    token = os.environ.get("CUSTODES_ADMIN_TOKEN")
    if not token:
        raise ConfigError("set CUSTODES_ADMIN_TOKEN to the node's admin token")
    return token

"""``custodes init``, ``custodes serve`` and ``custodes demo``."""

from __future__ import annotations

import json

import typer

from custodes.config import Settings
from custodes.node import Node
from custodes.store.db import check_writable, open_engine, upgrade

__all__ = ["register"]


def init() -> None:
    """Create the data directory, keys and database; print the node's public keys as JSON."""
    settings = Settings()
    ensure_writable(settings)
    node = Node(settings)
    try:
        node.start()
        typer.echo(json.dumps({"origin": node.settings.origin, **node.vkeys()}, indent=1))
    finally:
        node.close()


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8400, help="port to listen on"),
) -> None:
    """Run this member node's HTTP API (settings from CUSTODES_* variables)."""
    import uvicorn

    from custodes.api import create_app
    from custodes.api.server import server_config

    settings = Settings()
    ensure_writable(settings)
    uvicorn.Server(server_config(create_app(settings), settings, host, port)).run()


def ensure_writable(settings: Settings) -> None:
    """Refuse to start (StoreError: one line) on a database that cannot take writes."""
    engine = open_engine(settings.db_url)
    try:
        upgrade(engine)
        check_writable(engine)
    finally:
        engine.dispose()


def demo(
    base_port: int = typer.Option(8401, help="first of four loopback ports"),
    keep: bool = typer.Option(False, help="keep the nodes' data directory afterwards"),
) -> None:
    """Start GB, FR, DE and CA nodes on loopback, record agent decisions, witness, verify."""
    from custodes.demo import run_demo

    raise typer.Exit(run_demo(base_port=base_port, keep=keep))


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("demo")(demo)

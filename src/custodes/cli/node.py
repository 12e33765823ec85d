"""``custodes init``, ``custodes serve`` and ``custodes demo``."""

from __future__ import annotations

import ipaddress
import json

import typer

from custodes.admin_token import AdminToken, generate_admin_token
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.node import Node
from custodes.store.db import check_writable, open_engine, upgrade

__all__ = ["register"]


def init() -> None:
    """Create the data directory, keys and database; print the node's public keys as JSON.

    Unless CUSTODES_ADMIN_TOKEN is set, a new node also gets a random admin token,
    printed here once (as "admin_token"); only its SHA-256 is kept.
    """
    settings = Settings()
    ensure_writable(settings)
    token = None
    if "admin_token" not in settings.model_fields_set:
        token = generate_admin_token(settings.data_dir)
    node = Node(settings)
    try:
        node.start()
        shown: dict[str, str] = {"origin": settings.origin, **node.vkeys()}
        if token is not None:
            shown["admin_token"] = token
        typer.echo(json.dumps(shown, indent=1))
    finally:
        node.close()
    if token is not None:
        typer.echo(
            "the admin token above is shown only once; keep it (CUSTODES_ADMIN_TOKEN=...)",
            err=True,
        )


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8400, help="port to listen on"),
    workers: int = typer.Option(
        1, min=1, help="API worker processes (more than one needs PostgreSQL)"
    ),
) -> None:
    """Run this member node's HTTP API (settings from CUSTODES_* variables)."""
    import uvicorn

    from custodes.api import create_app
    from custodes.api.server import server_config

    settings = Settings()
    if AdminToken.for_settings(settings).is_development and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} with the publicly known development admin token; "
            "run `custodes init` in a new data directory or set CUSTODES_ADMIN_TOKEN"
        )
    if workers > 1:
        from custodes.api.workers import serve_workers

        serve_workers(settings, host, port, workers)  # checks the database first
        return
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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def register(app: typer.Typer) -> None:
    app.command("init")(init)
    app.command("serve")(serve)
    app.command("demo")(demo)

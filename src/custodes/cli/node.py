"""``custodes init``, ``custodes serve`` and ``custodes demo``."""

from __future__ import annotations

import ipaddress
import json
import os
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from custodes.admin_token import AdminToken, generate_admin_token
from custodes.cli.banner import print_banner
from custodes.config import IDENTITY, Settings, check_identity, configured
from custodes.errors import ConfigError
from custodes.ledger.checkpoint import origin_of
from custodes.ledger.cosignature import parse_cosigner_private_key
from custodes.ledger.note import parse_private_key
from custodes.ledger.store import SqlLogStore
from custodes.node import Node
from custodes.store.db import check_writable, open_engine, upgrade

__all__ = ["register"]

DATA_DIR = typer.Option(
    None, "--data-dir", help="the node's data directory (default: CUSTODES_DATA_DIR or ./.custodes)"
)


def init(
    jurisdiction: str | None = typer.Option(None, help="two-letter code, e.g. GB"),
    origin: str | None = typer.Option(None, help="the log's name, e.g. gb.custodes.example/log"),
    data_dir: Path | None = DATA_DIR,
    database_url: str | None = typer.Option(
        None, help="a PostgreSQL URL (default: SQLite in the data directory)"
    ),
) -> None:
    """Create a node: data directory, custodes.toml, keys, database.

    Prints the node's public keys as JSON. Unless CUSTODES_ADMIN_TOKEN is set, a new node
    also gets a random admin token, printed here once (as "admin_token"); only its
    SHA-256 is kept. On a directory already initialised, init changes nothing and
    refuses values that differ from its config file.
    """
    given = _given(
        jurisdiction=jurisdiction, origin=origin, data_dir=data_dir, database_url=database_url
    )
    settings = Settings(**given)
    if settings.config_file.exists():
        _check_same(settings, given)
    ensure_writable(settings)
    token = None
    if "admin_token" not in settings.model_fields_set:
        token = generate_admin_token(settings.data_dir)
    node = Node(settings)  # writes custodes.toml on a new node (pin_identity)
    try:
        node.start()
        shown: dict[str, str] = {"origin": settings.origin, **node.vkeys()}
        if token is not None:
            shown["admin_token"] = token
        typer.echo(json.dumps(shown, indent=1))
    finally:
        node.close()
    _say_what_next(settings, token)


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}


def _check_same(settings: Settings, given: dict[str, Any]) -> None:
    """On an initialised directory, refuse options that differ from its config file."""
    check_identity(settings)
    pinned = configured(settings)
    for name in given.keys() - {"data_dir", *IDENTITY}:
        if pinned.get(name) != getattr(settings, name):
            raise ConfigError(
                f"{settings.data_dir} is already initialised with another {name}; "
                f"edit {settings.config_file} to change it, or use another data directory"
            )


def _say_what_next(settings: Settings, token: str | None) -> None:
    if token is not None:
        typer.echo(
            "the admin token above is shown only once; keep it (CUSTODES_ADMIN_TOKEN=...)",
            err=True,
        )
    typer.echo(
        f"{settings.data_dir} holds the {settings.jurisdiction} node {settings.origin} "
        f"(settings in {settings.config_file}); start it with: custodes serve"
        + (f" --data-dir {settings.data_dir}" if "data_dir" in settings.model_fields_set else ""),
        err=True,
    )


def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on"),
    port: int = typer.Option(8400, help="port to listen on"),
    data_dir: Path | None = DATA_DIR,
    workers: int = typer.Option(
        1, min=1, help="API worker processes (more than one needs PostgreSQL)"
    ),
) -> None:
    """Run this member node's HTTP API.

    Settings come from custodes.toml in the data directory; CUSTODES_* variables
    override them, except the node's identity (origin, jurisdiction, witness name).
    """
    import uvicorn

    from custodes.api import create_app
    from custodes.api.server import server_config

    if data_dir is not None:  # for any worker process the server starts, too
        os.environ["CUSTODES_DATA_DIR"] = str(data_dir)
    settings = Settings()
    token = AdminToken.for_settings(settings)
    if token.is_development and not _is_loopback(host):
        raise ConfigError(
            f"refusing to serve on {host} with the publicly known development admin token; "
            "run `custodes init` in a new data directory or set CUSTODES_ADMIN_TOKEN"
        )
    check_node_identity(settings)
    if workers > 1:
        from custodes.api.workers import serve_workers

        serve_workers(settings, host, port, workers, banner=lambda: _banner(settings, host, port))
        return
    ensure_writable(settings)
    _banner(settings, host, port)
    uvicorn.Server(server_config(create_app(settings), settings, host, port)).run()


def _banner(settings: Settings, host: str, port: int) -> None:
    print_banner(settings, f"http://{host}:{port}", AdminToken.for_settings(settings), Console())


def check_node_identity(settings: Settings) -> None:
    """Refuse (one line) settings that disagree with the data directory's config file or
    keys, before anything is created or served."""
    if settings.config_file.exists():
        check_identity(settings)
    for path, parse, name, setting in (
        (settings.log_key_file, parse_private_key, settings.origin, "origin"),
        (
            settings.witness_key_file,
            parse_cosigner_private_key,
            settings.cosigner_name,
            "witness_name",
        ),
    ):
        if not path.exists():
            continue
        held = parse(path.read_text().strip()).name
        if held != name:
            raise ConfigError(
                f"{path} is the key of {held!r}, but {settings.source_of(setting)} makes this "
                f"node {name!r}; use the data directory of {name!r}, or unset the override"
            )


def ensure_writable(settings: Settings) -> None:
    """Refuse to start (one line) on a database that cannot take writes, or that holds
    another node's log."""
    engine = open_engine(settings.db_url)
    try:
        upgrade(engine)
        check_writable(engine)
        _check_stored_origin(settings, SqlLogStore(engine))
    finally:
        engine.dispose()


def _check_stored_origin(settings: Settings, store: SqlLogStore) -> None:
    stored = store.checkpoint()
    if stored is None:
        return
    origin = origin_of(stored.note)
    if origin != settings.origin:
        raise ConfigError(
            f"the database holds the log of {origin!r}, but this node's origin is "
            f"{settings.origin!r}; point CUSTODES_DATABASE_URL at this node's database"
        )


def demo(
    base_port: int = typer.Option(8401, help="first of five loopback ports"),
    keep: bool = typer.Option(False, help="keep the nodes' data directory afterwards"),
    serve: bool = typer.Option(
        False, "--serve", help="leave the alliance running afterwards even when not in a terminal"
    ),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="stop the nodes when the acts end (for scripts and CI)"
    ),
    evals: bool = typer.Option(
        True, "--evals/--no-evals", help="play the safety benchmarks act (the longest)"
    ),
    out: Path = typer.Option(
        Path(".custodes/demo"), help="where the forensic report and evidence bundle are kept"
    ),
) -> None:
    """Start GB, FR, DE, CA (members) and AU (partner) nodes on loopback from one roster.

    In a terminal the nodes stay up afterwards, until Ctrl-C, and the demo prints what
    you need to explore them: the dashboard's URL and a regulator's sign-in token, each
    node's URL and API docs, the admin token, and commands with the demo's agent ids.
    --no-wait stops them at once (scripts, CI); --serve keeps them up without a terminal.
    The forensic report and bundle of the suspension incident are written under --out.
    """
    from custodes.demo import run_demo

    stay = serve or (not no_wait and sys.stdin.isatty() and sys.stdout.isatty())
    if serve and no_wait:
        raise ConfigError("choose --serve or --no-wait, not both")
    raise typer.Exit(run_demo(base_port=base_port, keep=keep, serve=stay, evals=evals, out=out))


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

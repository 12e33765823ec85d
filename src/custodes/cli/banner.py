"""What ``custodes serve`` prints before it listens: where the node is, who it is, where
its data and admin token are, and the command a person runs next."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from sqlalchemy import make_url

from custodes.admin_token import AdminToken
from custodes.config import Settings

__all__ = ["print_banner", "safe_database_url"]


def safe_database_url(url: str) -> str:
    """The database URL with its password masked."""
    return make_url(url).render_as_string(hide_password=True)


def _token_line(settings: Settings, token: AdminToken) -> str:
    if token.source == "environment":
        return "CUSTODES_ADMIN_TOKEN (from the environment)"
    if token.source == "init":
        return (
            f"printed once by `custodes init`; only its SHA-256 is kept "
            f"({settings.data_dir.resolve() / 'admin-token.sha256'})"
        )
    return "the public development token (loopback only; run `custodes init` for a real one)"


def _next_steps(settings: Settings, url: str) -> str:
    regulator = f"regulator:{settings.jurisdiction.lower()}"
    return (
        f"custodes keys generate {regulator} --kind entry --out regulator.key\n"
        f"CUSTODES_ADMIN_TOKEN=… custodes registry principal {regulator} regulator "
        f"{settings.jurisdiction} --key regulator.key --node {url}"
    )


def print_banner(settings: Settings, url: str, token: AdminToken, console: Console) -> None:
    rows = Table.grid(padding=(0, 2))
    rows.add_column(style="bold")
    rows.add_column(overflow="fold")
    rows.add_row("URL", f"{url}  (API reference at {url}/docs)")
    rows.add_row("origin", settings.origin)
    rows.add_row("jurisdiction", settings.jurisdiction)
    rows.add_row("data dir", str(settings.data_dir.resolve()))
    rows.add_row("config", str(settings.config_file.resolve()))
    rows.add_row("database", safe_database_url(settings.db_url))
    rows.add_row("admin token", _token_line(settings, token))
    rows.add_row("next", _next_steps(settings, url))
    console.print(Panel(rows, title="Custodes member node", expand=False), soft_wrap=False)

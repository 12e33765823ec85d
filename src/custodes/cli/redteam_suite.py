"""``custodes redteam suite export``: the redteam suite of this node's repository.

    custodes redteam suite export --out redteam.json [--include-undisclosed]
    custodes eval run --suite redteam.json --target ... --agent-id AGENT --attempts 5

Reads the node's database (``CUSTODES_DATA_DIR``) and writes the ``custodes.suite/v1``
document of every disclosed probe it holds (``custodes.redteam.suite``), for the
existing runner. Registered as the ``suite`` group of ``custodes redteam`` (``suite_app``).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from custodes.cli.output import OUTPUT, Output, emit_record
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.evals.suite import parse_suite
from custodes.redteam.suite import RepositoryProbe, repository_probes, suite_document

__all__ = ["export", "suite_app"]

suite_app = typer.Typer(help="The redteam suite: the repository's probes as regression attacks.")


def _settings() -> Settings:
    settings = Settings()
    if not (settings.data_dir / "log.key").exists():
        raise ConfigError(
            f"{settings.data_dir} holds no node (no log.key); run this in the node's data "
            "directory or set CUSTODES_DATA_DIR"
        )
    return settings


def _probes(settings: Settings, stages: tuple[str, ...]) -> list[RepositoryProbe]:
    from custodes.store.db import open_engine

    engine = open_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            return repository_probes(conn, stages=stages)
    finally:
        engine.dispose()


@suite_app.command("export")
def export(
    out: Path = typer.Option(..., "--out", help="the suite file to write (JSON)"),
    include_undisclosed: bool = typer.Option(
        False, "--include-undisclosed", help="also reported and triaged probes (origin only)"
    ),
    output: Output = OUTPUT,
) -> None:
    """Write the redteam suite of this node's repository to a file."""
    stages = ("reported", "triaged", "disclosed") if include_undisclosed else ("disclosed",)
    found = _probes(_settings(), stages)
    if not found:
        raise ConfigError(
            "this node's repository holds no disclosed probe yet; nothing to export "
            "(--include-undisclosed adds the ones not yet disclosed)"
        )
    document = suite_document(
        [(d, p) for d, p, _, _ in found],
        taxonomy=[(atlas, owasp) for _, _, atlas, owasp in found],
    )
    suite = parse_suite(document, origin="the redteam suite")
    out.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    record = {"suite": suite.id, "version": suite.version, "digest": suite.digest}
    emit_record({**record, "probes": len(found), "file": str(out)}, output, title="redteam suite")

"""The database and node settings every test node uses: SQLite or a real PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from custodes.config import Settings
from tests.pgserver import ThrowawayPostgres

_names = itertools.count()


def database_url(request: pytest.FixtureRequest, base: Path, prefix: str) -> str:
    """For a fixture parametrized over ["sqlite", "postgresql"]: a fresh database's URL."""
    if request.param == "sqlite":
        return f"sqlite:///{base / 'custodes.db'}"
    server: ThrowawayPostgres = request.getfixturevalue("postgres")
    return server.new_database(f"{prefix}{next(_names)}")


def node_settings(base: Path, url: str) -> Settings:
    """A test node's settings: fast checkpoints, its data beside ``base``."""
    return Settings(
        data_dir=base / "node",
        database_url=url,
        origin="test.custodes.example/log",
        checkpoint_interval=0.2,
        integrate_delay=0.0,
        deployment_gate=False,  # on in the gate's own tests (tests/audits/gate_world.py)
    )

"""A node refuses to start, with one clear line, on a database that cannot take writes.

SQLite: the database file opened read-only (a URI with ``mode=ro``; the tests run as
root, for whom file permissions do not bite). PostgreSQL: a database whose sessions are
read-only (``default_transaction_read_only``), as on a hot standby.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from tests.integration.procs import custodes_argv, init_node, node_env

pytestmark = pytest.mark.integration
_TIMEOUT_S = 60.0


def _read_only_url(url: str) -> str:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1]
        return f"sqlite:///file:{path}?mode=ro&uri=true"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        name = make_url(url).database
        conn.execute(text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'))
    admin.dispose()
    return url


@pytest.mark.parametrize("command", ["serve", "init"])
def test_a_read_only_database_is_refused_at_start(
    tmp_path: Path, db_url: str, command: str
) -> None:
    env = node_env(tmp_path / "node", "ro.custodes.test/log", database_url=db_url)
    init_node(env)  # a real node's database, then made read-only
    env["CUSTODES_DATABASE_URL"] = _read_only_url(db_url)
    argv = [*custodes_argv(), command, *(["--port", "0"] if command == "serve" else [])]
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=_TIMEOUT_S, check=False
    )
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "cannot take writes" in lines[0], lines
    assert "Traceback" not in result.stderr

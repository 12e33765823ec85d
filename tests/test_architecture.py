"""The picture in DESIGN.md stays true: domains import no adapters, __all__ is honest."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine

import custodes
import custodes.audits.store  # registers the audit tables on metadata
import custodes.ledger.store  # registers the ledger tables on metadata
import custodes.redteam.store  # registers the red-teaming tables on metadata
from custodes.store.db import metadata, open_engine, upgrade

SRC = Path(custodes.__file__).parent
DOMAINS = [
    "ledger",
    "store",
    "evals",
    "registry",
    "killswitch",
    "audits",
    "redteam",
    "forensics",
]
# The roster, finality and look-up verification are pure functions (no I/O) that the
# audit domain's recognition check and the forensic bundle's offline check need; the rest
# of federation stays an adapter.
PURE_FEDERATION = (
    "custodes.federation.roster",
    "custodes.federation.finality",
    "custodes.federation.lookup",
)
ADAPTER_MODULES = (
    "fastapi",
    "starlette",
    "typer",
    "httpx",
    "uvicorn",
    "custodes.api",
    "custodes.cli",
    "custodes.client",
    "custodes.federation",
    "custodes.sdk",
    "custodes.web",
)


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


@pytest.mark.parametrize("domain", DOMAINS)
def test_domain_packages_import_no_adapter(domain: str) -> None:
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / domain).rglob("*.py")
        for name in _imports(path)
        if name.startswith(ADAPTER_MODULES)
        and not (domain in {"audits", "forensics"} and name in PURE_FEDERATION)
    }
    assert not offenders


def test_the_command_line_reaches_nodes_only_through_the_client() -> None:
    """One client for the node's API: no command opens its own HTTP connection."""
    offenders = {
        f"{path.relative_to(SRC)} imports {name}"
        for path in (SRC / "cli").rglob("*.py")
        for name in _imports(path)
        if name == "httpx" or name.startswith("httpx.")
    }
    assert not offenders


def _packages() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages([str(SRC)], prefix="custodes.")
        if info.ispkg and "migrations" not in info.name
    ]


@pytest.mark.parametrize("package", ["custodes", *_packages()])
def test_all_lists_exactly_the_names_a_package_exports(package: str) -> None:
    module = importlib.import_module(package)
    public = getattr(module, "__all__", None)
    assert public is not None, f"{package} has no __all__"
    assert len(public) == len(set(public)), "duplicates in __all__"
    missing = [name for name in public if not hasattr(module, name)]
    assert not missing
    init = Path(module.__file__ or "")
    imported = {
        alias.asname or alias.name
        for node in ast.walk(ast.parse(init.read_text()))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert imported - set(public) - {"annotations"} == set(), "imported but not exported"


def test_migrations_build_exactly_the_tables_the_code_uses(db_url: str) -> None:
    engine: Engine = open_engine(db_url)
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    engine.dispose()
    assert diff == []

"""Migration 0005 on a registry that already holds models: each is held as a replay says.

A database at the revision before it gets a model registered by an operator and one by
its regulator naming an operator; after the upgrade the first is held by its registrant,
the second by the operator it names, both active, and a rebuild agrees.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import orjson
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.store.db import open_engine, upgrade
from tests.databases import database_url

BEFORE = "0003"  # the revision 0005 follows


def _upgrade_to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("custodes.store") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)


def _model_entry(engine: Engine, index: int, actor: str, record: dict[str, object]) -> None:
    payload = orjson.dumps({"v": 1, "op": "model.register", "actor": actor, "model": record})
    data = orjson.dumps(sign_envelope("x", payload, [EnvelopeSigner.generate()]).to_json())
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO entries (idx, leaf_hash, data, payload_type, sequenced_at) "
                "VALUES (:i, :h, :d, 'x', 0)"
            ),
            {"i": index, "h": bytes(32), "d": data},
        )
        conn.execute(
            text("INSERT INTO models (id, record, entry_index) VALUES (:id, :r, :i)"),
            {"id": record["id"], "r": orjson.dumps(record).decode(), "i": index},
        )


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    return open_engine(database_url(request, tmp_path, "migration_"))


def test_existing_models_are_held_by_their_operator_after_the_upgrade(engine: Engine) -> None:
    try:
        _upgrade_to(engine, BEFORE)
        plain = {"id": "model:plain-1", "provider": "P", "name": "P", "version": "1"}
        named = {**plain, "id": "model:named-1", "operator": "operator:acme"}
        _model_entry(engine, 0, "operator:globex", plain)
        _model_entry(engine, 1, "regulator:zz", named)
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, holder, status FROM models ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [
            ("model:named-1", "operator:acme", "active"),
            ("model:plain-1", "operator:globex", "active"),
        ]
    finally:
        engine.dispose()


def test_agents_name_their_model_after_the_selector_upgrade(engine: Engine) -> None:
    """Migration 0007: a model selector finds agents registered before it existed."""
    try:
        _upgrade_to(engine, "0005")
        with engine.begin() as conn:
            for slug, model in (("on-model", "model:m-1"), ("no-model", None)):
                record = {"id": f"urn:custodes:zz:agent:{slug}", "model": model}
                conn.execute(
                    text(
                        "INSERT INTO agents (id, operator, home, sector, status, record, "
                        "entry_index, created_index) VALUES (:i, 'operator:acme', 'ZZ', "
                        "'finance', 'active', :r, 0, 0)"
                    ),
                    {"i": record["id"], "r": orjson.dumps(record).decode()},
                )
        upgrade(engine)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT id, model FROM agents ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [
            ("urn:custodes:zz:agent:no-model", None),
            ("urn:custodes:zz:agent:on-model", "model:m-1"),
        ]
    finally:
        engine.dispose()

"""Migration 0006 over a log that already holds decisions: the read index fills itself.

A node logs decisions; its database is taken back to
revision 0005 (before the read indexes existed). Opened again, the migration creates the
indexes empty at watermark 0; the first read catches them up (the backfill), and a
started node catches them up in the background without any read.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from importlib import resources

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

from custodes.api.readside import Window, decisions_page
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.sdk.decisions import sign_decision
from custodes.store.db import open_engine
from tests.enrol import enrol
from tests.integration.procs import wait_until

T0 = datetime(2026, 3, 1, tzinfo=UTC)
_TIMEOUT_S = 30.0


def _downgrade_to_0005(engine: Engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("custodes.store") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0005")


def _log_decisions(settings: Settings, agent: EnvelopeSigner) -> tuple[str, list[int]]:
    node = Node(settings)
    node.start()
    try:
        agent_id = enrol(node, agent)
        envelopes = [
            sign_decision(agent, agent_id, f"a{n}", "r", decided_at=T0 + timedelta(minutes=n))
            for n in range(40)
        ]
        indices = node.log.append([e.to_json() for e in envelopes])
        assert node.log.wait_for_checkpoint(indices[-1] + 1, timeout=_TIMEOUT_S)
    finally:
        node.close()
    engine = open_engine(settings.db_url)
    try:
        _downgrade_to_0005(engine)
        assert "decision_index" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    return agent_id, indices


def test_the_first_read_after_the_upgrade_backfills_the_index(
    settings: Settings, agent: EnvelopeSigner
) -> None:
    agent_id, indices = _log_decisions(settings, agent)
    node = Node(settings)  # migrates to the newest revision; not started: no background
    try:
        assert node.read_index.covered("decisions") == 0
        page = decisions_page(node, agent_id, Window(), None, 100)
        assert [item["index"] for item in page["items"]] == indices
        assert node.read_index.covered("decisions") == node.store.tree_size()[0]
    finally:
        node.close()


def test_a_started_node_backfills_the_index_without_a_read(
    settings: Settings, agent: EnvelopeSigner
) -> None:
    _log_decisions(settings, agent)
    node = Node(settings)
    node.start()
    try:
        size = node.store.tree_size()[0]
        wait_until(
            "the background catch-up",
            lambda: min(node.read_index.covered(k) for k in node.read_index.kinds) >= size,
            _TIMEOUT_S,
        )
    finally:
        node.close()

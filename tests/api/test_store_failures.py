"""What a client sees when the database refuses, and when its own input is bad.

A store failure is a 503 in the one error shape, with a reason a person can act on and
none of the driver's text, which goes to the node's log instead. A validation failure
raised while a change is applied stays a 4xx: never a 503 that tells the client to retry.

The database is made read-only the way each one can be on a running node: SQLite's
``query_only`` pragma and PostgreSQL's ``default_transaction_read_only``, set on every
new connection after the pool is emptied; a full disk is SQLite's ``max_page_count``.
The refusals are the drivers' own.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from custodes.api import create_app
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from tests.api.support import (
    ADMIN,
    assert_error,
    decision,
    node_of,
    post_entries,
    register,
    snapshot,
)

_DRIVER_TEXTS = ("attempt to write a readonly database", "read-only transaction", "sqlite3")


def _make_read_only(node: Node) -> None:
    """Every connection handed out from now on is read-only.

    Set on checkout rather than by disposing the pool: ``engine.dispose()`` while the
    node's background threads hold connections leaves those in the discarded pool, and
    they were garbage-collected unclosed (psycopg's ``__del__`` warning, issue 7 note).
    """
    engine = node.engine
    statement = (
        "PRAGMA query_only = ON"
        if engine.dialect.name == "sqlite"
        else "SET default_transaction_read_only = on"
    )

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(statement)
        cursor.close()
        if engine.dialect.name != "sqlite":
            dbapi_connection.commit()

    event.listen(engine, "checkout", on_checkout)


@pytest.fixture
def read_only_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        _make_read_only(node_of(client))
        yield client


def test_a_read_only_database_gives_an_actionable_503_and_a_log_line(
    read_only_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="custodes.store")
    key = EnvelopeSigner.from_seed(bytes(range(64, 96))).public_key
    detail = assert_error(register(read_only_client, "agent-x", key), 503, "store_unavailable")
    message = read_only_client.post(
        "/api/v1/admin/signers",
        json={"name": "agent-y", "public_key": base64.b64encode(key).decode()},
        headers=ADMIN,
    ).json()["error"]["message"]
    assert "refused the write" in message
    assert "read-only" in detail["reason"]
    assert "permissions" in message  # what to check
    assert not any(text in message for text in _DRIVER_TEXTS), message
    logged = [r.getMessage() for r in caplog.records if r.name == "custodes.store"]
    assert any("read" in line and "only" in line for line in logged), logged
    assert read_only_client.get("/api/v1/node").status_code == 200  # reads still work


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_full_disk_gives_an_actionable_503(
    agent_client: TestClient, agent: EnvelopeSigner
) -> None:
    """SQLite cannot grow the file past ``max_page_count``: the driver's "disk is full"."""
    engine = node_of(agent_client).engine
    with engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()

    def on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages}")

    event.listen(engine, "checkout", on_checkout)  # not dispose(): see _make_read_only
    before = snapshot(agent_client)
    batch = {"entries": [decision(agent, n, rationale="r" * 4000) for n in range(50)]}
    detail = assert_error(post_entries(agent_client, batch), 503, "store_unavailable")
    assert "disk" in detail["reason"]
    assert snapshot(agent_client) == before


def test_a_key_that_is_not_base64_is_a_client_error_not_a_503(client: TestClient) -> None:
    before = snapshot(client)
    body = {
        "id": "regulator:zz-test",
        "role": "regulator",
        "jurisdiction": "ZZ",
        "name": "Test regulator",
        "public_key": "!" * 44,
    }
    response = client.post("/api/v1/admin/principals", json=body, headers=ADMIN)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code, "invalid_change")
    assert snapshot(client) == before

"""Red-teaming events reach the streams of every worker sharing a PostgreSQL database:
the worker that logs an act tells the others over the bus (LISTEN/NOTIFY)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from custodes.redteam.events import EventHub
from custodes.redteam.service import EVENTS_CHANNEL
from custodes.redteam.tlp import Reader
from custodes.store.notify import PgBus
from tests.databases import node_settings
from tests.pgserver import ThrowawayPostgres
from tests.redteam.world import MODEL_AGENT, OPERATOR, World, world_for

WAIT = 30.0
_names = itertools.count()


@pytest.fixture
def pg_world(postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[World]:
    settings = node_settings(tmp_path, postgres.new_database(f"redteam_workers{next(_names)}"))
    with world_for(settings) as world:
        yield world


def test_an_exposure_logged_by_one_worker_reaches_another_workers_operator(
    pg_world: World,
) -> None:
    world = pg_world
    disclosure = world.disclosed()
    hub = EventHub()  # another worker's: its own hub and bus
    bus = PgBus(world.node.engine, resync_every=3600)
    bus.on(EVENTS_CHANNEL, hub.publish)
    bus.start()
    assert bus.listening.wait(WAIT)
    operator = Reader.of(world.node.tokens.authenticate(world.tokens[OPERATOR]))

    def patch() -> None:
        body = {"agent_id": MODEL_AGENT, "status": "patched"}
        answer = world.act(OPERATOR, "status", disclosure, body, tlp="amber")
        assert answer.status_code == 201, answer.text

    async def heard() -> dict[str, Any] | None:
        watcher = hub.subscribe(operator)
        await asyncio.get_running_loop().run_in_executor(None, patch)
        return await asyncio.wait_for(watcher.queue.get(), WAIT)

    try:
        event = asyncio.run(heard())
    finally:
        bus.stop()
    assert event is not None
    assert (event["kind"], event["agent_id"], event["status"]) == (
        "exposure",
        MODEL_AGENT,
        "patched",
    )

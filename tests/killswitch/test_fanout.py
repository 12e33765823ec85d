"""Kill orders reach the subscribers of every worker sharing a PostgreSQL database.

The issuing worker is a real ``Node``; the other worker is an ``OrderFanout`` on the same
database with its own bus, whose periodic resync is switched off (an hour), so what
reaches its subscriber came through LISTEN/NOTIFY, or through an explicit resync.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from custodes.killswitch.broadcast import OrderBroadcaster
from custodes.killswitch.fanout import OrderFanout
from custodes.ledger.dsse import EnvelopeSigner
from custodes.node import Node
from custodes.store.notify import PgBus
from tests.databases import node_settings
from tests.pgserver import ThrowawayPostgres
from tests.registry.support import World, build_world, order, register_agent

WAIT = 30.0
_names = itertools.count()


@pytest.fixture
def world(postgres: ThrowawayPostgres, tmp_path: Path) -> Iterator[World]:
    settings = node_settings(tmp_path, postgres.new_database(f"fanout{next(_names)}"))
    node = Node(settings)
    node.start()
    try:
        yield build_world(node)
    finally:
        node.close()


class OtherWorker:
    """Another worker's fan-out: its own broadcaster and bus, no periodic resync."""

    def __init__(self, node: Node) -> None:
        self.broadcaster = OrderBroadcaster()
        self.bus = PgBus(node.engine, resync_every=3600)
        self.changed: list[str] = []
        self.fanout = OrderFanout(self.broadcaster, node.engine, self.bus, self.changed.append)

    def listen(self) -> None:
        self.bus.start()
        assert self.bus.listening.wait(WAIT)

    def events(self, act: Callable[[], Any], count: int) -> list[dict[str, Any]]:
        """Subscribe, run ``act`` (in a thread), return the first ``count`` events pushed."""

        async def run() -> list[dict[str, Any]]:
            sub = self.broadcaster.subscribe(None)
            await asyncio.get_running_loop().run_in_executor(None, act)
            got = [await asyncio.wait_for(sub.queue.get(), WAIT) for _ in range(count)]
            assert sub.queue.empty(), "an order was pushed twice"
            return [e for e in got if e is not None]

        return asyncio.run(run())


def test_an_order_logged_by_one_worker_is_pushed_by_another_at_once(world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    other = OtherWorker(world.node)
    other.listen()
    try:
        issued: list[int] = []
        events = other.events(
            lambda: issued.append(order(world.node, world.home, "suspend", agent_id)[0]), 1
        )
    finally:
        other.bus.stop()
    assert [(e["index"], e["order"]["agent_id"], e["order"]["op"]) for e in events] == [
        (issued[0], agent_id, "suspend")
    ]
    assert events[0]["envelope"]["payloadType"] == "application/vnd.custodes.kill-order+json"
    assert other.changed == [agent_id]  # its cached status is dropped there too


def test_an_order_whose_notification_was_missed_arrives_at_the_next_resync(
    world: World,
) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    other = OtherWorker(world.node)  # not listening: it hears no notification
    other.fanout.resync()  # where it stands: every order before now was pushed
    before, _ = order(world.node, world.home, "suspend", agent_id)
    missed, _ = order(world.node, world.home, "revoke", agent_id)

    def catch_up() -> None:
        other.fanout.resync()
        other.fanout.resync()  # a second pass pushes nothing again

    events = other.events(catch_up, 2)
    assert [e["index"] for e in events] == [before, missed]
    assert [e["order"]["op"] for e in events] == ["suspend", "revoke"]


def test_an_order_is_pushed_once_by_the_worker_that_logged_it(world: World) -> None:
    """The issuing worker pushes at once and ignores its own notification."""
    agent_id = register_agent(world, EnvelopeSigner.generate())
    node = world.node

    async def run() -> list[Any]:
        sub = node.broadcaster.subscribe(agent_id)
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, order, node, world.home, "suspend", agent_id)
            first = await asyncio.wait_for(sub.queue.get(), WAIT)
            await loop.run_in_executor(None, node.fanout.resync)  # the DB has it too
            return [first, *[sub.queue.get_nowait() for _ in range(sub.queue.qsize())]]
        finally:
            node.broadcaster.unsubscribe(sub)

    pushed = asyncio.run(run())
    assert len(pushed) == 1

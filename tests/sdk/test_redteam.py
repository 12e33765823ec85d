"""RedteamWatch against a real node on loopback: the operator is told at once when its
agents are exposed and when their status changes; a (re)connecting watch first hears
the current exposures, so a drop loses nothing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from custodes.config import Settings
from custodes.sdk.redteam import RedteamWatch
from tests.integration.procs import wait_until
from tests.redteam.world import (
    MODEL_AGENT,
    OPERATOR,
    OTHER_OPERATOR,
    SKILL_AGENT,
    World,
    served_world,
)


@pytest.fixture
def served(settings: Settings) -> Iterator[tuple[World, str]]:
    with served_world(settings) as found:
        yield found


class Heard:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, kind: str, event: dict[str, Any]) -> None:
        with self._lock:
            self.events.append((kind, event))

    def exposures(self) -> list[tuple[str, str]]:
        with self._lock:
            return [(e["agent_id"], e["status"]) for k, e in self.events if k == "exposure"]


def test_the_operator_hears_of_its_agents_exposures_and_nobody_elses(
    served: tuple[World, str],
) -> None:
    world, url = served
    mine, theirs = Heard(), Heard()
    with (
        RedteamWatch(url, world.tokens[OPERATOR], mine) as watch,
        RedteamWatch(url, world.tokens[OTHER_OPERATOR], theirs) as other,
    ):
        wait_until(
            "both streams to connect",
            lambda: watch.connected.is_set() and other.connected.is_set(),
            timeout=30,
        )
        disclosure = world.disclosed()
        wait_until(
            "the exposures to reach the operator",
            lambda: {(MODEL_AGENT, "exposed"), (SKILL_AGENT, "exposed")} <= set(mine.exposures()),
            timeout=30,
        )
        answer = world.act(
            OPERATOR,
            "status",
            disclosure,
            {"agent_id": MODEL_AGENT, "status": "patched"},
            tlp="amber",
        )
        assert answer.status_code == 201, answer.text
        wait_until(
            "the patched status to reach the operator",
            lambda: (MODEL_AGENT, "patched") in mine.exposures(),
            timeout=30,
        )
        assert all(kind == "exposure" for kind, _ in mine.events)
        assert all("audience" not in event for _, event in mine.events)
    assert theirs.exposures() == []


def test_a_watch_starts_with_the_current_exposures(
    served: tuple[World, str],
) -> None:
    world, url = served
    world.disclosed()
    heard = Heard()
    with RedteamWatch(url, world.tokens[OPERATOR], heard):
        wait_until(
            "the snapshot of current exposures",
            lambda: {(MODEL_AGENT, "exposed"), (SKILL_AGENT, "exposed")} <= set(heard.exposures()),
            timeout=30,
        )

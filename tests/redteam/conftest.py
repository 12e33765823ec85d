"""One GB node with the red-teaming world (tests/redteam/world.py), per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from tests.redteam.world import World, build_world


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    gb = settings.model_copy(update={"jurisdiction": "GB"})
    with TestClient(create_app(gb)) as http:
        yield build_world(http)

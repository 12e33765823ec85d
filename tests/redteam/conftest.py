"""The red-teaming world (tests/redteam/world.py): one GB node per test."""

from tests.redteam.world import world

__all__ = ["world"]

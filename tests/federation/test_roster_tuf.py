"""Interop: python-tuf verifies our roster chain as is, and refuses what we refuse."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tuf.api.exceptions import UnsignedMetadataError
from tuf.api.metadata import Metadata, Root

from tests.federation.world import RosterWorld, found_world, set_status


@pytest.fixture
def world(tmp_path: Path) -> RosterWorld:
    return found_world(tmp_path)


def _tuf(document: dict[str, Any]) -> Metadata[Root]:
    return Metadata[Root].from_bytes(orjson.dumps(document))


def _verify(prev: dict[str, Any], new: dict[str, Any]) -> bool:
    old, nxt = _tuf(prev), _tuf(new)
    result = nxt.signed.get_root_verification_result(old.signed, nxt.signed_bytes, nxt.signatures)
    return bool(result.verified)


def test_python_tuf_verifies_our_chain(world: RosterWorld) -> None:
    genesis = world.genesis.document
    root = _tuf(genesis)
    root.verify_delegate(Root.type, root)  # version 1 against itself
    v2 = world.next(genesis, ["GB", "FR", "DE"], set_status("CA", "suspended"))
    v3 = world.next(v2, ["GB", "FR", "DE"], set_status("CA", "member"))
    assert _verify(genesis, v2)
    assert _verify(v2, v3)
    assert not _tuf(v3).signed.is_expired()


def test_python_tuf_refuses_too_few_signatures(world: RosterWorld) -> None:
    v2 = world.next(world.genesis, ["GB", "FR"])
    assert not _verify(world.genesis.document, v2)


def test_python_tuf_refuses_a_tampered_version(world: RosterWorld) -> None:
    v2 = world.next(world.genesis)
    v2["signed"]["x-custodes-roster"]["parties"][0]["name"] = "someone else"
    assert not _verify(world.genesis.document, v2)
    root = _tuf(v2)
    with pytest.raises(UnsignedMetadataError):
        root.verify_delegate(Root.type, root)


def test_python_tuf_refuses_a_skipped_version(world: RosterWorld) -> None:
    v3 = world.next(world.genesis, version=3)
    with pytest.raises(ValueError, match="version"):
        _verify(world.genesis.document, v3)

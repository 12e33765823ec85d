"""ProofCache: a cached inclusion proof verifies, a repeated look-up is served from the
cache, and a new tree size gets a new proof (verifying against the new root)."""

from __future__ import annotations

import base64
from typing import Any

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.merkle import verify_inclusion
from custodes.registry.queries import ProofCache
from tests.registry.support import World, decision, register_agent


def _verifies(proof: Any, root: bytes) -> None:
    hashes = [base64.b64decode(h) if isinstance(h, str) else h for h in proof["proof"]]
    leaf = proof["leaf_hash"]
    verify_inclusion(
        base64.b64decode(leaf) if isinstance(leaf, str) else leaf,
        proof["index"],
        proof["tree_size"],
        hashes,
        root,
    )


def _grow(world: World, key: EnvelopeSigner, agent_id: str, count: int) -> tuple[int, bytes]:
    world.node.log.append([decision(key, agent_id, n) for n in range(count)])
    world.node.log.integrate()
    return world.node.store.tree_size()


def test_a_cached_proof_verifies_and_a_new_size_gets_a_new_one(world: World) -> None:
    key = EnvelopeSigner.generate()
    agent_id = register_agent(world, key)
    size, root = _grow(world, key, agent_id, 3)
    computed: list[tuple[int, int]] = []

    def compute(index: int, at: int) -> Any:
        computed.append((index, at))
        return world.node.log.inclusion(index=index, size=at)

    cache = ProofCache(compute, capacity=2)
    first = cache.inclusion(size - 2, size)
    _verifies(first, root)
    assert cache.inclusion(size - 2, size) is first  # served from the cache
    assert computed == [(size - 2, size)]

    grown, new_root = _grow(world, key, agent_id, 5)
    later = cache.inclusion(size - 2, grown)
    assert later["tree_size"] == grown
    assert later["proof"] != first["proof"]
    _verifies(later, new_root)
    cache.inclusion(size - 1, grown)  # a third proof: the least recently used one goes
    assert len(cache) == 2
    cache.inclusion(size - 2, size)
    assert computed[-1] == (size - 2, size)  # evicted, so computed again

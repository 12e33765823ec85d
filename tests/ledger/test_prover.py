"""ProofCache: the same proofs as the log service gives, for any page of indices, kept
by (index, tree size) and dropping the least recently used first."""

from __future__ import annotations

from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.prover import ProofCache
from custodes.node import Node
from custodes.sdk.decisions import sign_decision
from custodes.store.db import read_tx
from tests.enrol import enrol


def _grow(node: Node, agent: EnvelopeSigner, count: int) -> int:
    agent_id = enrol(node, agent)
    envelopes = [sign_decision(agent, agent_id, f"a{n}", "r").to_json() for n in range(count)]
    indices = node.log.append(envelopes)
    assert node.log.wait_for_checkpoint(indices[-1] + 1, timeout=20)
    return node.store.tree_size()[0]


def test_a_page_of_proofs_matches_the_log_services_proofs(
    node: Node, agent: EnvelopeSigner
) -> None:
    size = _grow(node, agent, 300)
    cache = ProofCache(node.store)
    pages = [[0, 1, 2, 255, 256, size - 1], [7, 300, 3, 7]]  # scattered, repeated
    for sizes in (size, size - 40):
        for indices in pages:
            wanted = [i for i in indices if i < sizes]
            with read_tx(node.engine) as conn:
                got = cache.inclusion(conn, wanted, sizes)
            for index, proof in zip(wanted, got, strict=True):
                expected = node.log.inclusion(index=index, size=sizes)["proof"]
                assert proof == expected


def test_the_least_recently_used_proof_is_dropped_first(node: Node, agent: EnvelopeSigner) -> None:
    size = _grow(node, agent, 10)
    cache = ProofCache(node.store, capacity=2)
    with read_tx(node.engine) as conn:
        cache.inclusion(conn, [1, 2], size)
        cache.inclusion(conn, [1], size)  # 1 is now the most recently used
        cache.inclusion(conn, [3], size)
    assert len(cache) == 2
    assert (1, size) in cache
    assert (3, size) in cache

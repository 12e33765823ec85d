"""The log service on SQLite and PostgreSQL, against an in-memory oracle tree."""

from __future__ import annotations

import base64
import itertools
import random
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from custodes.config import Settings
from custodes.errors import Overloaded
from custodes.ledger import open_checkpoint, parse_vkey, verify_consistency, verify_inclusion
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope
from custodes.ledger.errors import EnvelopeError
from custodes.ledger.merkle import leaf_hash, root_of
from custodes.ledger.payloads import SIGNER_TYPE, SignerRecord
from custodes.ledger.store import SequencedEntry, signers
from custodes.node import Node
from custodes.sdk import sign_decision
from custodes.store.db import read_tx
from tests.enrol import enrol

# Before the first decision: 0 the node's own key, 1-2 the regulator and operator
# principals, 3 the operator, 4 the agent (decisions come only from registered agents).
HEAD = 5
Entry = dict[str, Any]


def _synthetic(count: int, start: int) -> list[SequencedEntry]:
    data = [f"entry {start + i}".encode() for i in range(count)]
    return [SequencedEntry(d, leaf_hash(d), "application/x-test") for d in data]


def _all_leaves(node: Node, size: int) -> list[bytes]:
    with read_tx(node.engine) as conn:
        return node.store.leaf_hashes(conn, 0, size)


def _register(node: Node, signer: EnvelopeSigner, name: str) -> None:
    node.register_signer(name, signer.public_key)


def test_appended_decisions_are_integrated_under_a_signed_checkpoint(
    node: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(node, agent)
    assert node.store.sequenced_size() == HEAD
    envelopes = [sign_decision(agent, agent_id, f"act {i}", "why") for i in range(300)]
    indices = node.log.append([e.to_json() for e in envelopes])
    assert indices == list(range(HEAD, HEAD + 300))
    node.log.integrate()
    stored = node.store.checkpoint()
    assert stored is not None
    checkpoint, _, _ = open_checkpoint(stored.note, [parse_vkey(node.log_signer.vkey())])
    assert checkpoint.size == HEAD + 300
    assert checkpoint.root_hash == root_of(_all_leaves(node, HEAD + 300))
    with read_tx(node.engine) as conn:
        assert node.store.entry_data(conn, HEAD, HEAD + 1) == [envelopes[0].to_bytes()]


def test_tree_tiles_match_the_oracle_across_tile_levels(node: Node) -> None:
    """70,000 leaves cross the first level-2 tile boundary (65,536)."""
    rng = random.Random(7)
    sizes: list[int] = []
    total = node.store.sequenced_size()
    while total < 70_000:
        step = rng.choice([1, 255, 256, 257, 4_000, 9_999])
        node.store.sequence(_synthetic(step, total))
        total += step
        node.log.integrate()
        sizes.append(total)
    leaves = _all_leaves(node, total)
    with read_tx(node.engine) as conn:
        level1 = node.store.tile_hashes(conn, 1, 0, total // 256)
        level2 = node.store.tile_hashes(conn, 2, 0, total // 65_536)
    assert level1 == [root_of(leaves[i * 256 : (i + 1) * 256]) for i in range(total // 256)]
    assert level2 == [root_of(leaves[:65_536])]
    assert node.store.tree_size() == (total, root_of(leaves))
    for size in rng.sample(sizes, 5):
        stored = node.store.checkpoint(size)
        assert stored is not None
        assert stored.root == root_of(leaves[:size])


def test_proofs_verify_against_checkpoints(node: Node) -> None:
    rng = random.Random(11)
    roots: dict[int, bytes] = {}
    total = node.store.sequenced_size()
    for step in (5, 300, 1, 1_000, 70):
        node.store.sequence(_synthetic(step, total))
        total += step
        node.log.integrate()  # the background integrator may already have done it
        checkpoint = node.store.checkpoint(total)
        assert checkpoint is not None
        roots[total] = checkpoint.root
    leaves = _all_leaves(node, total)
    for index in rng.sample(range(total), 40):
        size = rng.choice([s for s in roots if s > index])
        proof = node.log.inclusion(index=index, size=size)
        verify_inclusion(leaves[index], index, size, proof["proof"], roots[size])
        by_leaf = node.log.inclusion(leaf=leaves[index], size=size)
        assert by_leaf["index"] == index
    ordered = sorted(roots)
    for first, second in itertools.pairwise(ordered):
        proof = node.log.consistency(first, second)
        verify_consistency(first, second, proof["proof"], roots[first], roots[second])


def test_concurrent_appends_get_distinct_contiguous_indices(
    node: Node, agent: EnvelopeSigner
) -> None:
    agent_id = enrol(node, agent)
    assert node.store.sequenced_size() == HEAD
    results: list[list[int]] = []
    lock = threading.Lock()

    def worker(worker_id: int) -> None:
        for round_ in range(5):
            batch = [
                sign_decision(agent, agent_id, f"w{worker_id} r{round_} {i}", "why").to_json()
                for i in range(1 + worker_id)
            ]
            indices = node.log.append(batch)
            with lock:
                results.append(indices)

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    flat = sorted(i for batch in results for i in batch)
    assert flat == list(range(HEAD, HEAD + len(flat)))
    assert all(batch == list(range(batch[0], batch[0] + len(batch))) for batch in results)


def _decisions(agent: EnvelopeSigner, agent_id: str, count: int, tag: str) -> list[Entry]:
    return [sign_decision(agent, agent_id, f"{tag} {i}", "why").to_json() for i in range(count)]


def test_concurrent_large_batches_verified_in_parallel_stay_contiguous(
    node: Node, agent: EnvelopeSigner
) -> None:
    """Batches past the parallel threshold, verified in runs while others commit."""
    agent_id = enrol(node, agent)
    batches = [_decisions(agent, agent_id, 64 + 17 * b, f"batch {b}") for b in range(6)]
    with ThreadPoolExecutor(len(batches)) as pool:
        results = list(pool.map(node.log.append, batches))
    flat = sorted(i for batch in results for i in batch)
    assert flat == list(range(HEAD, HEAD + sum(len(b) for b in batches)))
    assert all(batch == list(range(batch[0], batch[0] + len(batch))) for batch in results)
    with read_tx(node.engine) as conn:
        for batch, indices in zip(batches, results, strict=True):
            stored = node.store.entry_data(conn, indices[0], indices[-1] + 1)
            assert stored == [canonical_dumps(entry) for entry in batch]


def _flip_signature(entry: Entry) -> Entry:
    signatures = entry["signatures"]
    raw = bytearray(base64.b64decode(signatures[0]["sig"]))
    raw[5] ^= 1
    return entry | {"signatures": [signatures[0] | {"sig": base64.b64encode(raw).decode()}]}


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_a_bad_signature_in_any_verify_run_refuses_the_batch_naming_the_first(
    settings: Settings, agent: EnvelopeSigner, threads: int
) -> None:
    node = Node(settings.model_copy(update={"verify_threads": threads}))
    node.start()
    try:
        agent_id = enrol(node, agent)
        entries = _decisions(agent, agent_id, 120, "run")
        for bad in (110, 75, 3):  # the last run, then the middle (or first), then the first
            entries[bad] = _flip_signature(entries[bad])
            with pytest.raises(EnvelopeError) as caught:
                node.log.append(entries)
            assert (caught.value.code, caught.value.detail["entry"]) == ("bad_signature", bad)
            assert node.store.sequenced_size() == HEAD
    finally:
        node.close()


def test_overload_refuses_instead_of_queueing(node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    original: Callable[..., int] = node.store.sequence

    def slow_sequence(*args: object, **kwargs: object) -> int:
        release.wait(timeout=10)
        return original(*args, **kwargs)

    monkeypatch.setattr(node.store, "sequence", slow_sequence)
    node.log.sequencer._max_pending = 10
    blocked = threading.Thread(target=_submit(node, 10))
    blocked.start()
    deadline = threading.Event()
    while node.log.sequencer.pending < 10 and not deadline.wait(0.01):
        pass
    with pytest.raises(Overloaded) as caught:
        node.log.sequencer.submit(_synthetic(1, 0))
    assert caught.value.status == 503
    release.set()
    blocked.join(timeout=10)
    assert node.store.sequenced_size() == 11  # the node's key entry + the 10 accepted


def _submit(node: Node, count: int) -> Callable[[], None]:
    return lambda: node.log.sequencer.submit(_synthetic(count, 1)) and None


def test_signer_projection_equals_a_replay_of_the_log(node: Node) -> None:
    keys = [EnvelopeSigner.generate() for _ in range(3)]
    for i, key in enumerate(keys):
        _register(node, key, f"agent-{i}")
    node.register_signer("agent-0", keys[0].public_key, status="retired")
    replayed: dict[str, tuple[str, str, int]] = {}
    with read_tx(node.engine) as conn:
        size = node.store.sequenced_size()
        for index, data in enumerate(node.store.entry_data(conn, 0, size)):
            envelope = parse_envelope(orjson.loads(data))
            if envelope.payload_type == SIGNER_TYPE:
                record = SignerRecord.model_validate_json(envelope.payload)
                replayed[record.keyid] = (record.name, record.status, index)
        table = {
            r.keyid: (r.name, r.status, r.entry_index) for r in conn.execute(select(signers)).all()
        }
    assert table == replayed
    assert node.signers.public_key(keys[0].keyid) is None
    assert node.signers.public_key(keys[1].keyid) == keys[1].public_key

"""Split-view detection: what one comparison and one evidence check cost on a large log.

A member compares a peer's view of a log with its own each gossip round (docs/design/
0027). For views of different sizes it rebuilds the larger tree's root, and the root at
the smaller size, from the origin's tiles. This measures, over an in-memory tile store
of a 1,000,000-leaf log (``--quick``: 100,000), in-process:

* ``compare`` of an honest pair (a lagging witness: the common case), of a forged
  smaller tree (evidence built: case not-a-prefix), and of two same-size views;
* ``verify_evidence`` (what ``custodes evidence verify`` does offline);
* the physical limit beside them: hashlib SHA-256 digests per second of 65-byte
  interior-node inputs on one core, and the SHA-256 digests each figure amounts to.

    .venv/bin/python benchmarks/bench_split_view.py [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence

from _common import fmt_ms, percentile, print_conditions, print_table, sha256_rate
from custodes.federation.evidence import Evidence, SeenCheckpoint, open_seen, verify_evidence
from custodes.federation.gossip import compare
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.merkle import NodeReader, leaf_hash, root_of, subtree_root
from custodes.ledger.note import NoteSigner
from custodes.ledger.tiles import TILE_WIDTH, perfect_node_from_tiles

ORIGIN = "bench.alliance.test/log"
LOG = NoteSigner.generate(ORIGIN)
RUNS = 15


def _tile_levels(leaves: list[bytes]) -> list[list[bytes]]:
    """Hashes at tree levels 0, 8, 16 … (tile levels 0, 1, 2 …) of the full tree."""
    levels = [leaves]
    while len(levels[-1]) >= TILE_WIDTH:
        below = levels[-1]
        full = len(below) // TILE_WIDTH
        levels.append([root_of(below[i * TILE_WIDTH : (i + 1) * TILE_WIDTH]) for i in range(full)])
    return levels


def _reader(levels: list[list[bytes]]) -> NodeReader:
    def read(tile_level: int, start: int, end: int) -> list[bytes]:
        return levels[tile_level][start:end]

    return lambda level, index: perfect_node_from_tiles(level, index, read)


def _seen(size: int, root: bytes) -> SeenCheckpoint:
    note = sign_checkpoint(Checkpoint(ORIGIN, size, root), LOG)
    return open_seen(note, LOG.verifier())


def _time(action: Callable[[], object]) -> tuple[float, object]:
    samples, result = [], None
    for _ in range(RUNS):
        began = time.perf_counter()
        result = action()
        samples.append(time.perf_counter() - began)
    return percentile(samples, 50), result


def _root_at(reader: NodeReader, size: int) -> bytes:
    return subtree_root(reader, 0, size)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 leaves, not 1,000,000")
    args = parser.parse_args(argv)
    size = 100_000 if args.quick else 1_000_000
    print_conditions("bench_split_view")
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(size)]
    levels = _tile_levels(leaves)
    reader = _reader(levels)
    vkey = LOG.vkey()
    large = _seen(size, _root_at(reader, size))
    lagging_size = size - 12_345
    lagging = _seen(lagging_size, _root_at(reader, lagging_size))
    forged_size = size // 2 + 3
    forged = _seen(forged_size, root_of([*leaves[: forged_size - 1], leaf_hash(b"forged")]))
    other = _seen(size, leaf_hash(b"another root"))

    def reader_for(_size: int) -> NodeReader:
        return reader

    honest_s, honest = _time(lambda: compare(vkey, lagging, large, reader_for))
    split_s, evidence = _time(lambda: compare(vkey, forged, large, reader_for))
    same_s, _ = _time(lambda: compare(vkey, other, large, reader_for))
    assert honest is True
    assert isinstance(evidence, Evidence)
    verify_s, _ = _time(lambda: verify_evidence(evidence, vkey))
    rate = sha256_rate(1.0)
    rows = [
        (name, fmt_ms(seconds), f"{seconds * rate:,.0f}")
        for name, seconds in (
            ("compare: honest, lagging witness", honest_s),
            ("compare: forged smaller tree → evidence", split_s),
            ("compare: same size, other root → evidence", same_s),
            ("verify_evidence (offline check)", verify_s),
        )
    ]
    rows.append(("SHA-256, 65-byte inputs, one core", f"{rate:,.0f}/s", "(the limit)"))
    print_table(
        f"Split-view comparison on a {size:,}-leaf log (p50 of {RUNS})",
        ["operation", "time", "SHA-256 digests it amounts to"],
        rows,
        caption="in-process, tiles in memory; over HTTP each comparison also reads the "
        "tiles it needs (a few per tree level)",
    )


if __name__ == "__main__":
    main()

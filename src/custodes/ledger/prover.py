"""Inclusion proofs for many entries at once, kept by (index, tree size).

A proof against a fixed tree size never changes, so it can be kept as long as memory
allows. A page of entries is proven in the caller's read transaction with one node
reader, so the tiles the proofs share are read once.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from sqlalchemy import Connection

from custodes.ledger.merkle import NodeReader, inclusion_proof
from custodes.ledger.store import SqlLogStore

__all__ = ["ProofCache"]


def _memoized(reader: NodeReader) -> NodeReader:
    """``reader`` computing each tree node once: neighbours' proofs share most nodes."""
    nodes: dict[tuple[int, int], bytes] = {}

    def read(level: int, index: int) -> bytes:
        found = nodes.get((level, index))
        if found is None:
            found = nodes[(level, index)] = reader(level, index)
        return found

    return read


class ProofCache:
    """The inclusion proofs of a log's entries, least recently used dropped first."""

    def __init__(self, store: SqlLogStore, capacity: int = 10_000) -> None:
        self.store = store
        self.capacity = capacity
        self._proofs: OrderedDict[tuple[int, int], list[bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def inclusion(self, conn: Connection, indices: Sequence[int], size: int) -> list[list[bytes]]:
        """The proof of each of ``indices`` (each below ``size``) against tree ``size``."""
        found = [self._get((index, size)) for index in indices]
        missing = [i for i, proof in zip(indices, found, strict=True) if proof is None]
        if missing:
            reader = _memoized(self.store.node_reader(conn))
            made = {index: inclusion_proof(index, size, reader) for index in missing}
            for index, proof in made.items():
                self._put((index, size), proof)
            found = [made[i] if p is None else p for i, p in zip(indices, found, strict=True)]
        return [p for p in found if p is not None]

    def __len__(self) -> int:
        return len(self._proofs)

    def __contains__(self, key: object) -> bool:
        """Whether the proof of ``(index, tree size)`` is kept."""
        return key in self._proofs

    def _get(self, key: tuple[int, int]) -> list[bytes] | None:
        with self._lock:
            proof = self._proofs.get(key)
            if proof is not None:
                self._proofs.move_to_end(key)
            return proof

    def _put(self, key: tuple[int, int], proof: list[bytes]) -> None:
        with self._lock:
            self._proofs[key] = proof
            while len(self._proofs) > self.capacity:
                self._proofs.popitem(last=False)

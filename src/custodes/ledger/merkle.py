"""The pure Merkle core: RFC 6962 / RFC 9162 tree hashing, proofs and the compact range.

Pure functions over bytes and integers, shared by the log store, the API, the witness and
offline verifiers, and pinned down by the public known-answer vectors and a reference-tree
oracle. Hashes are raw 32-byte ``bytes``; proofs list hashes from the leaf (or the old
tree) upwards, as on the wire. Generation reads stored perfect nodes through a
:data:`NodeReader` (tiles, in a log), so a proof costs O(log n) reads. Verification runs
RFC 9162 §2.1.3.2 / §2.1.4.2 literally, after checking every length the RFCs leave
implicit, so a failure names its cause instead of "root mismatch".
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

from custodes.ledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "NodeReader",
    "NodeVisitor",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_of",
    "subtree_root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

NodeReader = Callable[[int, int], bytes]
"""``reader(level, index)``: hash of the perfect subtree over leaves
``[index * 2**level, (index + 1) * 2**level)``; level 0 returns leaf hashes."""

NodeVisitor = Callable[[int, int, bytes], None]
"""``visit(level, index, hash)``: told of each perfect node a compact range creates."""

_sha256 = hashlib.sha256


def _error(message: str, **evidence: int | bytes | str) -> ProofError:
    """A ProofError carrying its evidence; hashes become hex so the detail is JSON."""
    detail = {k: v.hex() if isinstance(v, bytes) else v for k, v in evidence.items()}
    return ProofError(message, detail=detail)


# --- Hashing ---------------------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the 0x00 prefix keeps leaves and nodes in separate domains."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right), raw concatenation, as the RFC 6962 vectors require."""
    return _sha256(b"\x01" + left + right).digest()


def root_of(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves, in memory (tiles, tests, small batches).

    Pairing level by level and carrying an odd last node up unchanged yields exactly
    RFC 6962's "largest power of two smaller than n" split, without recursion.
    """
    level = list(leaf_hashes)
    if not level:
        return EMPTY_ROOT
    while len(level) > 1:
        paired = [
            _sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


# --- Reading subtrees through a NodeReader ---------------------------------------------


def _split(n: int) -> int:
    """RFC 6962's k: the largest power of two strictly smaller than ``n`` (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_root(reader: NodeReader, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)`` from perfect nodes, one read per set bit of the width.

    RFC 6962 splits a range into a perfect left part and a recursive right part, so the
    root is the fold, right to left, of the perfect nodes in the width's binary
    decomposition. That needs ``start`` aligned to the largest of them, which every range
    the RFC recursion produces (and ``[0, n)``) is.
    """
    width = end - start
    if start < 0 or width <= 0 or start % (1 << (width.bit_length() - 1)):
        raise _error("subtree range is empty or not aligned for RFC 6962", start=start, end=end)
    return _fold_right(_border(reader, start, width))


def _border(reader: NodeReader, start: int, width: int) -> list[bytes]:
    """The perfect nodes covering ``[start, start + width)``, largest first."""
    nodes = []
    for level in range(width.bit_length() - 1, -1, -1):
        if width >> level & 1:
            nodes.append(reader(level, start >> level))
            start += 1 << level
    return nodes


def _fold_right(nodes: Sequence[bytes]) -> bytes:
    """Hash a border (perfect nodes, largest first) into one root, right to left."""
    root = nodes[-1]
    for node in reversed(nodes[:-1]):
        root = node_hash(node, root)
    return root


def _perfect(reader: NodeReader, start: int, width: int) -> bytes:
    """The perfect node of ``width`` (a power of two) leaves starting at ``start``."""
    level = width.bit_length() - 1
    return reader(level, start >> level)


# --- Proof generation (RFC 6962 §2.1.1, §2.1.2) -----------------------------------------


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[bytes]:
    """RFC 6962 PATH(index, D[size]), leaf sibling first, in O(log size) reads.

    The RFC recursion is walked top-down: while the leaf is in the right part, the left
    sibling is a perfect node; the first time it is in the left part, the right sibling
    is the tree's right border (one ``subtree_root``), and from there on every sibling is
    perfect.
    """
    if not 0 <= index < size:
        raise _error("leaf index is outside the tree", index=index, tree_size=size)
    siblings: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            siblings.append(subtree_root(reader, start + k, end))
            end = start + k
        else:
            siblings.append(_perfect(reader, start, k))
            start += k
    siblings.reverse()
    return siblings


def consistency_proof(size1: int, size2: int, reader: NodeReader) -> list[bytes]:
    """RFC 6962 PROOF(size1, D[size2]), in O(log size2) reads; ``[]`` when sizes are equal.

    Walks SUBPROOF(m, D[n], b) top-down, collecting the sibling hashes the recursion
    appends after its recursive call, then reverses them into wire order.
    """
    if not 0 < size1 <= size2:
        raise _error("consistency proofs need 0 < size1 <= size2", size1=size1, size2=size2)
    hashes: list[bytes] = []
    start, end, m, complete = 0, size2, size1, True
    while m != end - start:
        k = _split(end - start)
        if m <= k:
            hashes.append(subtree_root(reader, start + k, end))
            end = start + k
        else:
            hashes.append(_perfect(reader, start, k))
            start, m, complete = start + k, m - k, False
    if not complete:
        hashes.append(subtree_root(reader, start, end))
    hashes.reverse()
    return hashes


# --- Proof verification (RFC 9162 §2.1.3.2, §2.1.4.2) ------------------------------------


def _check_hash(name: str, value: bytes) -> None:
    """Reject a hash of the wrong size before it silently changes every result."""
    if len(value) != HASH_SIZE:
        raise _error(f"{name} must be {HASH_SIZE} bytes", field=name, length=len(value))


def _check_proof_hashes(proof: Sequence[bytes]) -> None:
    """Every proof hash is checked, so a short one cannot be mistaken for a node."""
    for position, value in enumerate(proof):
        _check_hash(f"proof[{position}]", value)


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """(inner, border): proof hashes below and above where the leaf's path meets the border."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _check_length(proof: Sequence[bytes], expected: int, sizes: dict[str, int]) -> None:
    """Name a wrong proof length directly rather than as a root mismatch later."""
    if len(proof) != expected:
        raise _error(
            f"proof has {len(proof)} hashes, expected {expected}",
            **sizes,
            proof_length=len(proof),
            expected_length=expected,
        )


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """The root an inclusion proof implies (RFC 9162 §2.1.3.2 without the final compare).

    Exposed because checkpoint verification and offline ``tlog-proof`` bundles want the
    implied root to compare against signed checkpoints themselves.
    """
    if not 0 <= index < size:
        raise _error("leaf index is outside the tree", index=index, tree_size=size)
    _check_hash("leaf_hash", leaf_hash)
    _check_proof_hashes(proof)
    _check_length(proof, sum(_inclusion_shape(index, size)), {"index": index, "tree_size": size})
    return _chain_inclusion(leaf_hash, index, size, proof)


def _chain_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2 steps 1-5, literally."""
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise _error("inclusion proof is too long", index=index, tree_size=size)
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _error("inclusion proof is too short", index=index, tree_size=size)
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows the leaf at ``index`` under ``root``.

    Note that RFC 6962 roots do not commit to the tree size: the caller must take
    ``size`` and ``root`` together from one verified checkpoint.
    """
    _check_hash("root", root)
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    if computed != root:
        raise _error(
            "inclusion proof does not lead to the expected root",
            index=index,
            tree_size=size,
            leaf_hash=leaf_hash,
            expected_root=root,
            computed_root=computed,
        )


def _consistency_length(size1: int, size2: int) -> int:
    """Proof length for 0 < size1 < size2: the old root is omitted when it is a perfect node."""
    inner, border = _inclusion_shape(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    return inner - shift + border + (0 if size1 == 1 << shift else 1)


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise :class:`ProofError` unless the tree ``(size2, root2)`` extends ``(size1, root1)``.

    Edge cases, chosen strictly: equal sizes need an empty proof and equal roots; size 0
    is consistent with every tree but only with an empty proof, and its root must be
    ``EMPTY_ROOT`` (the one tree of size 0), so a forged "empty" checkpoint cannot pass.
    """
    _check_hash("root1", root1)
    _check_hash("root2", root2)
    _check_proof_hashes(proof)
    sizes = {"size1": size1, "size2": size2}
    if not 0 <= size1 <= size2:
        raise _error("consistency needs 0 <= size1 <= size2", **sizes)
    if size1 in (0, size2):
        _verify_trivial_consistency(size1, size2, proof, root1, root2)
        return
    _check_length(proof, _consistency_length(size1, size2), sizes)
    fr, sr = _chain_consistency(size1, size2, proof, root1)
    if fr != root1 or sr != root2:
        raise _error(
            "consistency proof does not lead to the expected roots",
            **sizes,
            root1=root1,
            root2=root2,
            computed_root1=fr,
            computed_root2=sr,
        )


def _verify_trivial_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Size 0 or equal sizes: nothing to prove, so any proof hash is an error."""
    sizes = {"size1": size1, "size2": size2}
    _check_length(proof, 0, sizes)
    if size1 == 0 and root1 != EMPTY_ROOT:
        raise _error("a tree of size 0 must have the empty root", **sizes, root1=root1)
    if size1 == size2 and root1 != root2:
        raise _error(
            "two trees of the same size have different roots", **sizes, root1=root1, root2=root2
        )


def _chain_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes
) -> tuple[bytes, bytes]:
    """RFC 9162 §2.1.4.2 steps 2-6, literally; returns (fr, sr)."""
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise _error("consistency proof is too long", size1=size1, size2=size2)
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise _error("consistency proof is too short", size1=size1, size2=size2)
    return fr, sr


# --- Compact range ----------------------------------------------------------------------


class CompactRange:
    """The right border of a tree ``[0, size)``: one perfect node per set bit of ``size``.

    This is all a log needs in memory to integrate new leaves and compute the new root
    ("integrate once per batch"); ``visit`` hands every node it creates to the store so
    tiles can be written without re-reading leaves.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @classmethod
    def from_reader(cls, size: int, reader: NodeReader) -> CompactRange:
        """Load the border of an existing tree of ``size`` leaves from stored nodes."""
        if size < 0:
            raise _error("tree size cannot be negative", tree_size=size)
        compact = cls()
        compact._hashes = _border(reader, 0, size)
        compact._size = size
        return compact

    @classmethod
    def from_border(cls, size: int, border: Sequence[bytes]) -> CompactRange:
        """Rebuild a range saved with ``border`` (one hash per set bit of ``size``)."""
        if size < 0 or len(border) != size.bit_count():
            raise _error("a compact range needs one hash per set bit of its size", tree_size=size)
        for digest in border:
            _check_hash("border hash", digest)
        compact = cls()
        compact._hashes = list(border)
        compact._size = size
        return compact

    @property
    def border(self) -> list[bytes]:
        """The range's perfect nodes, largest first (what ``from_border`` takes)."""
        return list(self._hashes)

    @property
    def size(self) -> int:
        """Number of leaves in the tree this range describes."""
        return self._size

    def append(self, leaf_hash: bytes, visit: NodeVisitor | None = None) -> None:
        """Add one leaf hash, merging equal-sized nodes; ``visit`` sees each merge (level >= 1)."""
        self.extend((leaf_hash,), visit)

    def extend(self, leaf_hashes: Iterable[bytes], visit: NodeVisitor | None = None) -> None:
        """Append many leaf hashes: the hot loop of integration, so kept inline and local."""
        if visit is not None:
            for leaf in leaf_hashes:
                self._push_visited(leaf, visit)
            return
        hashes, size, sha = self._hashes, self._size, _sha256
        for leaf in leaf_hashes:
            if len(leaf) != HASH_SIZE:
                _check_hash("leaf_hash", leaf)
            node, carry = leaf, size
            while carry & 1:
                node = sha(b"\x01" + hashes.pop() + node).digest()
                carry >>= 1
            hashes.append(node)
            size += 1
            self._size = size

    def _push_visited(self, leaf: bytes, visit: NodeVisitor) -> None:
        """Append one leaf, then report its new nodes, so a failing ``visit`` (a store
        error) leaves the range itself consistent."""
        _check_hash("leaf_hash", leaf)
        created: list[tuple[int, int, bytes]] = []
        node, level, carry = leaf, 0, self._size
        while carry & 1:
            node = node_hash(self._hashes.pop(), node)
            level, carry = level + 1, carry >> 1
            created.append((level, carry, node))
        self._hashes.append(node)
        self._size += 1
        for level_index_hash in created:
            visit(*level_index_hash)

    def root(self) -> bytes:
        """MTH of the whole tree; ``EMPTY_ROOT`` for size 0."""
        if not self._hashes:
            return EMPTY_ROOT
        return _fold_right(self._hashes)

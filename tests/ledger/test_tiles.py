"""Tests for the C2SP tlog-tiles helpers: paths, widths, entry bundles, hash tiles.

Tile contents are checked against perfect-node tables built here by plain pairwise
hashing, independent of ``custodes.ledger.merkle``'s reader logic.
"""

from __future__ import annotations

import hashlib
import random
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from custodes.ledger.errors import LedgerError
from custodes.ledger.merkle import CompactRange, inclusion_proof, verify_inclusion
from custodes.ledger.tiles import (
    MAX_ENTRY_SIZE,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileRef,
    decode_entry_bundle,
    encode_entry_bundle,
    entries_path,
    format_tile_index,
    hashes_from_tile,
    parse_tile_path,
    perfect_node_from_tiles,
    tile_from_hashes,
    tile_path,
    tile_width,
    tiles_for_size,
)

TREE_SIZE = 70_000  # > 256**2, so tile levels 0, 1 and 2 all exist


@cache
def levels() -> list[list[bytes]]:
    """Reference perfect nodes: level 0 = leaf hashes, then pairwise SHA-256(01 || l || r)."""
    table = [[hashlib.sha256(b"\x00" + b"entry %d" % i).digest() for i in range(TREE_SIZE)]]
    while len(table[-1]) > 1:
        below = table[-1]
        table.append(
            [
                hashlib.sha256(b"\x01" + below[i] + below[i + 1]).digest()
                for i in range(0, len(below) - 1, 2)
            ]
        )
    return table


def read_tile_level(tile_level: int, start: int, end: int) -> list[bytes]:
    """Hashes [start, end) of a tile level; the test fails if a read spans two tiles."""
    assert start // TILE_WIDTH == (end - 1) // TILE_WIDTH, "read crosses a tile boundary"
    return levels()[TILE_HEIGHT * tile_level][start:end]


# --- Paths ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "text"),
    [
        (0, "000"),
        (5, "005"),
        (999, "999"),
        (1000, "x001/000"),
        (1234067, "x001/x234/067"),
        (2**64 - 1, "x018/x446/x744/x073/x709/x551/615"),
    ],
)
def test_format_tile_index(index: int, text: str) -> None:
    assert format_tile_index(index) == text


def test_spec_example_paths() -> None:
    assert tile_path(0, 1234067) == "tile/0/x001/x234/067"
    assert tile_path(1, 1234067, 7) == "tile/1/x001/x234/067.p/7"
    assert entries_path(1234067) == "tile/entries/x001/x234/067"
    assert entries_path(5, 255) == "tile/entries/005.p/255"
    assert parse_tile_path("tile/0/x001/x234/067") == TileRef(0, 1234067)
    assert parse_tile_path("tile/entries/x001/x234/067.p/3") == TileRef(
        0, 1234067, 3, is_entries=True
    )


@given(
    st.integers(min_value=0, max_value=63),
    st.integers(min_value=0, max_value=2**64 - 1),
    st.integers(min_value=1, max_value=256),
    st.booleans(),
)
def test_paths_round_trip(level: int, index: int, width: int, is_entries: bool) -> None:
    ref = TileRef(0 if is_entries else level, index, width, is_entries=is_entries)
    parsed = parse_tile_path(ref.path)
    assert parsed == ref
    assert parsed.is_partial == (width < 256)
    assert ref.path.endswith(f".p/{width}") == (width < 256)


@pytest.mark.parametrize(
    "path",
    [
        "tile/0/1234067",  # not grouped
        "tile/0/x1234/067",  # group of four
        "tile/0/001/234",  # missing x prefix
        "tile/0/x001/x234/x067",  # x on the last group
        "tile/0/x000/005",  # a leading zero group
        "tile/0/05",  # short group
        "tile/0/0005",
        "tile/00/005",  # leading zero in the level
        "tile/64/000",  # level too high
        "tile/-1/000",
        "tile/0/005.p/0",  # empty partial tile
        "tile/0/005.p/256",  # a full tile spelled as partial
        "tile/0/005.p/012",  # leading zero in the width
        "tile/0/005.p/",
        "tile/0/005.p/1000",
        "tile/entries/005.p/300",
        "tile/data/005",  # Go sumdb spelling, not tlog-tiles
        "tile/8/0/005",  # Go sumdb height in the path
        "/tile/0/005",
        "tile/0/005/",
        "tile/0/005\n",
        "tile/0/\u0661\u0662\u0663",  # Arabic-Indic digits that int() would accept
        "tile/0/x001/x001/x001/x001/x001/x001/x001/001",  # more than 2**64
        "tile/0/x999/x999/x999/x999/x999/x999/999",
        "tile/0/x000/x000/000",
        "",
    ],
)
def test_parse_rejects_non_canonical_paths(path: str) -> None:
    with pytest.raises(LedgerError) as caught:
        parse_tile_path(path)
    assert (caught.value.code, caught.value.status) == ("bad_tile_path", 404)
    assert caught.value.detail["path"] == path


@pytest.mark.parametrize(
    ("level", "index", "width"), [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, 0, 0), (0, 0, 257)]
)
def test_tile_path_rejects_out_of_range(level: int, index: int, width: int) -> None:
    with pytest.raises(LedgerError, match="tile"):
        tile_path(level, index, width)


def test_entry_bundles_only_exist_beside_level_zero() -> None:
    with pytest.raises(LedgerError):
        TileRef(1, 0, is_entries=True)
    with pytest.raises(LedgerError):
        entries_path(-1)


# --- Widths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "tree_size", "want"),
    [
        (0, 0, []),
        (0, 1, [(0, 1)]),
        (0, 256, [(0, 256)]),
        (1, 255, []),
        (1, 256, [(0, 1)]),
        (0, 513, [(0, 256), (1, 256), (2, 1)]),
        (1, 70_000, [(0, 256), (1, 17)]),
        (2, 70_000, [(0, 1)]),
        (3, 70_000, []),
    ],
)
def test_tiles_for_size_examples(level: int, tree_size: int, want: list[tuple[int, int]]) -> None:
    assert list(tiles_for_size(level, tree_size)) == want


def test_tile_width_at_the_largest_tree() -> None:
    size = 2**64 - 1
    assert tile_width(0, 2**56 - 2, size) == 256
    assert tile_width(0, 2**56 - 1, size) == 255
    assert tile_width(0, 2**56, size) == 0
    assert tile_width(7, 0, size) == 255
    assert tile_width(8, 0, size) == 0


@given(st.integers(min_value=0, max_value=2**20), st.integers(min_value=0, max_value=3))
def test_tile_widths_cover_exactly_the_hashes_of_a_level(tree_size: int, level: int) -> None:
    tiles = list(tiles_for_size(level, tree_size))
    count = tree_size // 256**level
    assert sum(width for _, width in tiles) == count
    assert [index for index, _ in tiles] == list(range(len(tiles)))
    assert all(width == 256 for _, width in tiles[:-1])
    for index, width in tiles[-1:]:
        assert tile_width(level, index, tree_size) == width
        assert width == (count % 256 or 256)
        assert tile_width(level, index + 1, tree_size) == 0


# --- Entry bundles ----------------------------------------------------------------------

bundles = st.lists(st.binary(max_size=600), max_size=256)


@given(bundles)
def test_entry_bundles_round_trip(entries: list[bytes]) -> None:
    data = encode_entry_bundle(entries)
    assert len(data) == sum(2 + len(e) for e in entries)
    assert decode_entry_bundle(data) == entries


def test_entry_size_limits() -> None:
    largest = b"\xff" * MAX_ENTRY_SIZE
    assert decode_entry_bundle(encode_entry_bundle([largest, b""])) == [largest, b""]
    with pytest.raises(LedgerError) as caught:
        encode_entry_bundle([b"", b"\x00" * (MAX_ENTRY_SIZE + 1)])
    assert (caught.value.code, caught.value.detail["position"]) == ("entry_too_large", 1)
    with pytest.raises(LedgerError, match="256"):
        encode_entry_bundle([b"x"] * 257)
    with pytest.raises(LedgerError, match="256"):
        decode_entry_bundle(b"\x00\x00" * 257)


@given(bundles.filter(bool), st.integers(min_value=1))
def test_truncated_bundles_are_rejected(entries: list[bytes], cut: int) -> None:
    data = encode_entry_bundle(entries)
    cut %= len(data)
    boundaries = {sum(2 + len(e) for e in entries[:n]): n for n in range(len(entries))}
    if cut in boundaries:
        assert decode_entry_bundle(data[:cut]) == entries[: boundaries[cut]]
    else:
        with pytest.raises(LedgerError) as caught:
            decode_entry_bundle(data[:cut])
        assert caught.value.code == "bad_entry_bundle"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"\x00", "a length prefix"),
        (b"\x00\x01a\x00", "a length prefix"),
        (b"\x00\x05abcd", "an entry"),
        (b"\xff\xff", "an entry"),
    ],
)
def test_malformed_bundles_are_rejected(data: bytes, where: str) -> None:
    with pytest.raises(LedgerError, match=f"entry bundle ends inside {where}"):
        decode_entry_bundle(data)


# --- Hash tiles -------------------------------------------------------------------------


@given(st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=256))
def test_hash_tiles_round_trip(hashes: list[bytes]) -> None:
    data = tile_from_hashes(hashes)
    assert len(data) == 32 * len(hashes)
    assert hashes_from_tile(data) == hashes


@pytest.mark.parametrize("length", [0, 31, 33, 32 * 256 + 1, 32 * 257])
def test_malformed_tiles_are_rejected(length: int) -> None:
    with pytest.raises(LedgerError) as caught:
        hashes_from_tile(b"\x00" * length)
    assert caught.value.code == "bad_tile"


@pytest.mark.parametrize("hashes", [[], [b"\x00" * 31], [b"\x00" * 32] * 257])
def test_tile_from_hashes_rejects_bad_input(hashes: list[bytes]) -> None:
    with pytest.raises(LedgerError):
        tile_from_hashes(hashes)


# --- Perfect nodes from tiles -----------------------------------------------------------


# No deadline: the first example builds the cached reference tree, which takes longer
# than Hypothesis's default 200 ms on a busy machine (a flaky failure, not a slow path).
@settings(deadline=None)
@given(st.data())
def test_perfect_node_from_tiles_matches_reference(data: st.DataObject) -> None:
    level = data.draw(st.integers(min_value=0, max_value=TREE_SIZE.bit_length() - 1))
    index = data.draw(st.integers(min_value=0, max_value=(TREE_SIZE >> level) - 1))
    assert perfect_node_from_tiles(level, index, read_tile_level) == levels()[level][index]


def test_perfect_node_from_tiles_checks_storage_answers() -> None:
    with pytest.raises(LedgerError, match="wrong number"):
        perfect_node_from_tiles(3, 0, lambda t, s, e: levels()[0][s : e - 1])


def test_proofs_from_tiles_written_by_compact_range() -> None:
    """The integration path: persist every 8th level as tiles, prove from tiles alone."""
    stored: dict[int, dict[int, bytes]] = {0: dict(enumerate(levels()[0]))}

    def persist(level: int, index: int, node: bytes) -> None:
        if level % TILE_HEIGHT == 0:
            stored.setdefault(level // TILE_HEIGHT, {})[index] = node

    compact = CompactRange()
    compact.extend(levels()[0], persist)

    def read(tile_level: int, start: int, end: int) -> list[bytes]:
        return [stored[tile_level][i] for i in range(start, end)]

    def reader(level: int, index: int) -> bytes:
        return perfect_node_from_tiles(level, index, read)

    rng = random.Random(8)
    for index in [0, TREE_SIZE - 1, *rng.sample(range(TREE_SIZE), 50)]:
        proof = inclusion_proof(index, TREE_SIZE, reader)
        verify_inclusion(levels()[0][index], index, TREE_SIZE, proof, compact.root())

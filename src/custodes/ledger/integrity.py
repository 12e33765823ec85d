"""Integrity is checked, not assumed (DESIGN.md 4.1): the alarm latch, the high-water
mark, and the checks integration runs before it grows the tree.

Someone who can write to the database but cannot read the key files must not be able
to make the node sign a forged history. So, before every integration, the node
re-derives what it builds on and compares it with what it signed before:

* the root of the stored tree (recomputed from the stored tiles and the right edge's
  leaf hashes) equals the stored tree state's root *and* the root of the newest
  checkpoint the node signed at that size (its signature verified with the log key);
* the right edge's leaf hashes, and those of every entry about to be integrated, are
  the hashes of the stored entries, and the entries are contiguous (no hole behind a
  bumped sequence counter);
* the tree is not smaller than the high-water mark, a (size, root) pair the node
  keeps *outside* the database: a database restored from an older copy is caught at
  start, before the node reuses an index.

Any mismatch — and a witness that reports a larger size or a fork of our log — trips
the ``AlarmLatch``: appends and checkpoints stop (503 ``integrity_alarm``), reads go on
so people can investigate, health and metrics say why. The latch is kept in a file in
the data directory, so a restart does not forget it; ``custodes log alarm --clear``
lifts it once a person has looked.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from custodes.ledger.checkpoint import open_checkpoint
from custodes.ledger.errors import IntegrityAlarm, LedgerError, NoteError
from custodes.ledger.merkle import EMPTY_ROOT, CompactRange, NodeReader, leaf_hash
from custodes.ledger.note import NoteVerifier
from custodes.ledger.tiles import TILE_WIDTH

__all__ = [
    "AlarmLatch",
    "HighWaterMark",
    "check_entries",
    "check_tree_base",
    "right_edge_start",
]

log = logging.getLogger("custodes.integrity")


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` so a crash leaves the old or the new file, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with scratch.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    scratch.replace(path)


class AlarmLatch:
    """Once tripped, stays tripped (and refuses appends) until a person clears it."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._alarms: list[dict[str, Any]] = []
        if path is not None and path.exists():
            try:
                self._alarms = list(json.loads(path.read_text())["alarms"])
            except (OSError, ValueError, KeyError, TypeError):
                # An unreadable alarm file is itself a reason to stop.
                self._alarms = [{"reason": f"the alarm file {path} is unreadable", "at": 0}]

    @property
    def tripped(self) -> bool:
        return bool(self._alarms)

    def alarms(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(a) for a in self._alarms]

    def trip(self, reason: str, evidence: dict[str, Any] | None = None) -> IntegrityAlarm:
        """Record an alarm (once per reason) and return the error to raise."""
        with self._lock:
            if all(a["reason"] != reason for a in self._alarms):
                self._alarms.append({"reason": reason, "at": time.time(), **(evidence or {})})
                log.critical("INTEGRITY ALARM: %s %s", reason, evidence or "")
                if self._path is not None:
                    _write_atomically(self._path, json.dumps({"alarms": self._alarms}))
        return self.error()

    def error(self) -> IntegrityAlarm:
        first = self._alarms[0]["reason"] if self._alarms else "unknown"
        return IntegrityAlarm(
            f"this node has stopped accepting appends after an integrity alarm: {first}; "
            "its operator must investigate (GET /api/v1/health) and clear it with "
            "`custodes log alarm --clear`",
            detail={"alarms": self.alarms()},
        )

    def check(self) -> None:
        """Raise ``IntegrityAlarm`` if the latch is tripped."""
        if self._alarms:
            raise self.error()

    def clear(self) -> None:
        with self._lock:
            self._alarms = []
            if self._path is not None:
                self._path.unlink(missing_ok=True)


class HighWaterMark:
    """The largest (size, root) this node has signed, kept outside the database."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()

    def read(self) -> tuple[int, bytes] | None:
        try:
            data = json.loads(self._path.read_text())
            return int(data["size"]), bytes.fromhex(data["root"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LedgerError(
                f"the high-water mark {self._path} is unreadable ({exc}); restore it or "
                "remove it if you are sure the database is the newest copy",
                code="bad_high_water_mark",
            ) from exc

    def advance(self, size: int, root: bytes) -> None:
        """Move the mark to ``size`` if that is larger (never backwards)."""
        with self._lock:
            current = self.read()
            if current is not None and current[0] >= size:
                return
            _write_atomically(self._path, json.dumps({"size": size, "root": root.hex()}))


def check_tree_base(
    size: int,
    stored_root: bytes,
    reader: NodeReader,
    *,
    signed: tuple[bytes, Sequence[NoteVerifier]] | None,
    mark: tuple[int, bytes] | None,
) -> CompactRange:
    """Re-derive the tree integration builds on; return its compact range.

    Check the right edge's entries first (``check_entries`` from ``right_edge_start``):
    ``reader`` builds the right edge's nodes from their stored leaf hashes. ``signed``
    is the stored checkpoint note at ``size`` and the log's keys (None only for the
    empty tree); ``mark`` is the high-water mark. Raises ``IntegrityAlarm`` (untripped:
    the caller trips its latch) on any mismatch.
    """
    tree = CompactRange.from_reader(size, reader)
    root = tree.root()
    if root != stored_root:
        raise _mismatch(
            "the stored tiles do not hash to the stored tree root",
            size=size,
            derived=root.hex(),
            stored=stored_root.hex(),
        )
    _check_signed(size, root, signed)
    _check_mark(size, root, mark)
    return tree


def _check_signed(
    size: int, root: bytes, signed: tuple[bytes, Sequence[NoteVerifier]] | None
) -> None:
    if signed is None:
        if size != 0 or root != EMPTY_ROOT:
            raise _mismatch("no signed checkpoint covers the stored tree", size=size)
        return
    note, keys = signed
    try:
        checkpoint, _, _ = open_checkpoint(note, keys)
    except (NoteError, LedgerError) as exc:
        raise _mismatch(
            "the stored checkpoint is not signed by this log's key", size=size, error=str(exc)
        ) from exc
    if checkpoint.size != size or checkpoint.root_hash != root:
        raise _mismatch(
            "the stored tree differs from the checkpoint this node signed",
            size=size,
            signed_size=checkpoint.size,
            signed_root=checkpoint.root_hash.hex(),
            derived=root.hex(),
        )


def _check_mark(size: int, root: bytes, mark: tuple[int, bytes] | None) -> None:
    if mark is None:
        return
    mark_size, mark_root = mark
    if size < mark_size:
        raise _mismatch(
            "the database is behind this node's high-water mark: it was restored from an "
            "older copy (signing on would fork the log)",
            size=size,
            high_water_size=mark_size,
        )
    if size == mark_size and root != mark_root:
        raise _mismatch(
            "the tree at the high-water mark's size has another root",
            size=size,
            high_water_root=mark_root.hex(),
            derived=root.hex(),
        )


def check_entries(first: int, end: int, rows: Sequence[tuple[int, bytes, bytes]]) -> list[bytes]:
    """Check stored entries ``[first, end)``, given as (index, entry, stored leaf hash):
    none is missing and each hashes to its stored leaf hash. Return the leaf hashes."""
    if [r[0] for r in rows] != list(range(first, end)):
        raise _mismatch(
            "the stored entries are not contiguous (a hole in the log)",
            first=first,
            end=end,
            found=len(rows),
        )
    leaves = [leaf_hash(data) for _, data, _ in rows]
    for (index, _, kept), derived in zip(rows, leaves, strict=True):
        if derived != kept:
            raise _mismatch("a stored entry does not hash to its stored leaf hash", index=index)
    return leaves


def right_edge_start(size: int) -> int:
    """First index of the tree's last, partial level-0 tile (``size`` if it is full)."""
    return size - size % TILE_WIDTH


def _mismatch(reason: str, **evidence: Any) -> IntegrityAlarm:
    return IntegrityAlarm(reason, detail=evidence)

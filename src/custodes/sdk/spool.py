"""The decision spool: recorded decisions on disk until the home node acknowledges them.

One directory, owned by one recorder at a time (an exclusive ``flock`` on ``lock``)::

    decisions.jsonl  one line per recorded decision, appended and fsync'd before
                     ``record`` returns: {"v": 2, "key": ..., "envelope": {...},
                     "opening": {...}} for a committed decision (the opening is the
                     clear text the node keeps at home), {"v": 1, "key", "envelope"} for
                     a plain one (spools written before commitments hold these)
    acked.jsonl      one line per batch the node acknowledged, fsync'd before the
                     batch leaves memory: {"v": 1, "keys": [...], "indices": [...]}

What is pending is every decision line whose key no ack line names, in file order.
Compaction rewrites ``decisions.jsonl`` with only the pending lines (temporary file,
fsync, ``os.replace``, fsync of the directory) and then empties ``acked.jsonl``; a crash
between the two leaves ack lines naming nothing, which is harmless. It runs when the
spool opens (so a torn trailing line never has a later line glued onto it), when every
decision has been acknowledged, and after ``compact_after`` acknowledgements.

An unreadable line (a write torn by a crash) is skipped with a warning. A torn ack line
means that batch is sent again; the node answers a repeated idempotency key with the
original index, so nothing is logged twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import orjson

from custodes.errors import BadRequest, CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.commitments import DecisionOpening, OpenedEntry, parse_opening
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.ledger.errors import EnvelopeError

__all__ = ["DecisionSpool", "SpoolError", "SpooledDecision"]

log = logging.getLogger("custodes.sdk.spool")

SPOOL_FILE = "decisions.jsonl"
ACKED_FILE = "acked.jsonl"
REJECTED_FILE = "rejected.jsonl"
LOCK_FILE = "lock"


class SpoolError(CustodesError):
    """The spool directory cannot be used (locked, unwritable, or the recorder is closed)."""

    code = "spool_error"
    status = 500


@dataclass(frozen=True)
class SpooledDecision:
    key: str
    envelope: Envelope
    opening: DecisionOpening | None = None

    def item(self) -> Envelope | OpenedEntry:
        """What to append: the envelope, with its opening when it commits to one."""
        return self.envelope if self.opening is None else OpenedEntry(self.envelope, self.opening)

    def to_json(self) -> dict[str, Any]:
        """The spool line's fields (version 2 when the decision has an opening)."""
        if self.opening is None:
            return {"v": 1, "key": self.key, "envelope": self.envelope.to_json()}
        return {
            "v": 2,
            "key": self.key,
            "envelope": self.envelope.to_json(),
            "opening": self.opening.model_dump(),
        }


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each readable line; warn about the others."""
    if not path.exists():
        return
    for number, raw in enumerate(path.read_bytes().split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            yield number, orjson.loads(raw)
        except orjson.JSONDecodeError:
            log.warning("%s line %d is unreadable (a torn write?); skipping it", path, number)


def _read_acked(path: Path) -> set[str]:
    acked: set[str] = set()
    for number, obj in _lines(path):
        keys = obj.get("keys") if isinstance(obj, dict) and obj.get("v") == 1 else None
        if isinstance(keys, list):
            acked.update(k for k in keys if isinstance(k, str))
        else:
            log.warning("%s line %d is not an ack record; skipping it", path, number)
    return acked


def _decision(obj: Any) -> SpooledDecision:
    if (
        not isinstance(obj, dict)
        or obj.get("v") not in (1, 2)
        or not isinstance(obj.get("key"), str)
    ):
        raise EnvelopeError("not a version-1 or version-2 spool record")
    envelope = parse_envelope(obj.get("envelope"))
    if obj["v"] == 1:
        return SpooledDecision(obj["key"], envelope)
    try:
        return SpooledDecision(obj["key"], envelope, parse_opening(obj.get("opening")))
    except BadRequest as exc:
        raise EnvelopeError(exc.message) from exc


def _read_spool(path: Path) -> list[SpooledDecision]:
    found: list[SpooledDecision] = []
    for number, obj in _lines(path):
        try:
            found.append(_decision(obj))
        except EnvelopeError as exc:
            log.warning("%s line %d is not a spooled decision (%s); skipping it", path, number, exc)
    return found


def _record_line(decision: SpooledDecision) -> bytes:
    return canonical_dumps(decision.to_json()) + b"\n"


def _lock(directory: Path) -> IO[bytes]:
    handle = (directory / LOCK_FILE).open("ab")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise SpoolError(
            f"another recorder is using the spool {directory}; give each process its own",
            code="spool_locked",
        ) from exc
    return handle


class DecisionSpool:
    """Pending decisions, durable before ``append`` returns, in the order recorded."""

    def __init__(self, directory: Path, *, compact_after: int = 1000) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SpoolError(f"cannot create the spool directory {directory}: {exc}") from exc
        self.directory = directory
        self._compact_after = compact_after
        self._mutex = threading.Lock()
        self._lock_handle = _lock(directory)
        acked = _read_acked(directory / ACKED_FILE)
        spooled = _read_spool(directory / SPOOL_FILE)
        self._pending = OrderedDict((d.key, d) for d in spooled if d.key not in acked)
        self._acked_since_compaction = 0
        self._spool: IO[bytes] | None = None
        self._acks: IO[bytes] | None = None
        self._guarded(self._compact)

    def __len__(self) -> int:
        with self._mutex:
            return len(self._pending)

    def head(self, limit: int) -> list[SpooledDecision]:
        """The oldest ``limit`` pending decisions."""
        with self._mutex:
            return list(islice(self._pending.values(), limit))

    def append(self, key: str, envelope: Envelope, opening: DecisionOpening | None = None) -> None:
        """Write a decision (and the opening of its commitment) and fsync it; only then
        is it pending."""
        decision = SpooledDecision(key, envelope, opening)
        with self._mutex:
            self._guarded(lambda: self._write(self._open_spool(), _record_line(decision)))
            self._pending[key] = decision

    def ack(self, keys: Sequence[str], indices: Sequence[int]) -> None:
        """Record that the node holds ``keys`` (at ``indices``); they are never sent again."""
        line = canonical_dumps({"v": 1, "keys": list(keys), "indices": list(indices)}) + b"\n"
        with self._mutex:
            self._guarded(lambda: self._write(self._open_acks(), line))
            for key in keys:
                self._pending.pop(key, None)
            self._acked_since_compaction += len(keys)
            if not self._pending or self._acked_since_compaction >= self._compact_after:
                self._guarded(self._compact)

    def reject(self, decision: SpooledDecision, reason: str) -> None:
        """Set aside a decision the node refuses for good: kept on disk, never resent.

        It goes to ``rejected.jsonl`` (fsync'd) before it is acknowledged as handled, so a
        crash in between resends it rather than losing it.
        """
        line = canonical_dumps({**decision.to_json(), "reason": reason}) + b"\n"
        with self._mutex, (self.directory / REJECTED_FILE).open("ab") as handle:
            self._guarded(lambda: self._write(handle, line))
        self.ack([decision.key], [-1])

    def rejected(self) -> list[dict[str, Any]]:
        """Decisions the node refused for good, with the node's reason."""
        return [obj for _n, obj in _lines(self.directory / REJECTED_FILE)]

    def close(self) -> None:
        with self._mutex:
            for handle in (self._spool, self._acks, self._lock_handle):
                if handle is not None and not handle.closed:
                    handle.close()  # closing the lock file releases the flock

    def _guarded(self, write: Callable[[], None]) -> None:
        if self._lock_handle.closed:
            raise SpoolError("the spool is closed", code="spool_closed")
        try:
            write()
        except OSError as exc:
            raise SpoolError(f"cannot write the spool in {self.directory}: {exc}") from exc

    @staticmethod
    def _write(handle: IO[bytes], line: bytes) -> None:
        start = handle.tell()
        try:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        except OSError:
            handle.truncate(start)  # never leave half a line for the next one to join
            raise

    def _open_spool(self) -> IO[bytes]:
        if self._spool is None:
            self._spool = (self.directory / SPOOL_FILE).open("ab")
        return self._spool

    def _open_acks(self) -> IO[bytes]:
        if self._acks is None:
            self._acks = (self.directory / ACKED_FILE).open("ab")
        return self._acks

    def _compact(self) -> None:
        for handle in (self._spool, self._acks):
            if handle is not None:
                handle.close()
        self._spool = self._acks = None
        body = b"".join(_record_line(d) for d in self._pending.values())
        self._replace(SPOOL_FILE, body)
        self._replace(ACKED_FILE, b"")
        self._acked_since_compaction = 0

    def _replace(self, name: str, body: bytes) -> None:
        temporary = self.directory / f"{name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.directory / name)
        _fsync_dir(self.directory)

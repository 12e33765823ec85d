"""LogService: append, integrate, checkpoint, prove — the operations of a node's log.

Sequencing (durable indices, ``Sequencer``) and integration (tree growth, then a signed
checkpoint, ``integrate``) are separate steps, as in Tessera. Integration is serialised
by a lock on the tree state row in the database, so any process sharing the database
may run it and the result is the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel
from sqlalchemy import Connection

from custodes.errors import BadRequest, NotFound
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.commitments import DecisionOpening, open_record, parse_opening
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.ledger.errors import EnvelopeError, IntegrityAlarm, LedgerError
from custodes.ledger.integrity import (
    AlarmLatch,
    HighWaterMark,
    check_entries,
    check_tree_base,
    right_edge_start,
)
from custodes.ledger.merkle import CompactRange, consistency_proof, inclusion_proof, leaf_hash
from custodes.ledger.note import NoteSigner
from custodes.ledger.payloads import (
    DECISION_TYPE,
    CommittedDecision,
    DecisionRecord,
    decision_kind,
    validate_payload,
)
from custodes.ledger.sequencer import Sequencer
from custodes.ledger.signers import SignerDirectory
from custodes.ledger.store import Projector, SequencedEntry, SqlLogStore, StoredCheckpoint
from custodes.ledger.tiles import MAX_ENTRY_SIZE, TILE_HEIGHT
from custodes.metrics import NULL_METRICS, Metrics
from custodes.store.db import read_tx, write_tx

__all__ = ["LogService", "Proof"]

T = TypeVar("T")
_MAX_INTEGRATE = 100_000
_PARALLEL_VERIFY_MIN = 64


class Proof(dict[str, Any]):
    """A JSON-ready proof answer (hashes already base64)."""


@dataclass(frozen=True)
class Checked:
    """An entry that passed every check but its signatures."""

    envelope: Envelope
    data: bytes
    record: BaseModel
    opening: tuple[str, str, str] | None = None  # commitment, salt, clear record (JSON)

    def sequenced(self) -> SequencedEntry:
        dedup = None
        if isinstance(self.record, _DECISIONS) and self.record.idempotency_key:
            dedup = (self.record.agent, self.record.idempotency_key)
        return SequencedEntry(
            self.data, leaf_hash(self.data), self.envelope.payload_type, dedup, self.opening
        )


_DECISIONS = (DecisionRecord, CommittedDecision)


# Looks up an agent's registry status ("active", "suspended", "revoked"; None if unknown).
AgentStatus = Callable[[str], str | None]


class LogService:
    def __init__(
        self,
        store: SqlLogStore,
        log_signer: NoteSigner,
        signers: SignerDirectory,
        *,
        max_pending: int = 20_000,
        verify_threads: int = 2,
        accepted_types: frozenset[str] = frozenset({DECISION_TYPE}),
        agent_status: AgentStatus | None = None,
        alarm: AlarmLatch | None = None,
        high_water: HighWaterMark | None = None,
        metrics: Metrics = NULL_METRICS,
        accept_plain_decisions: bool = True,
    ) -> None:
        self.store = store
        self.accept_plain_decisions = accept_plain_decisions
        self.origin = log_signer.name
        self.signers = signers
        self._log_signer = log_signer
        self._accepted = accepted_types
        # Without a registry (a bare log) any registered signer may record decisions.
        self.agent_status = agent_status
        self.alarm = alarm or AlarmLatch()
        self.high_water = high_water
        self.metrics = metrics
        self._verify_threads = verify_threads
        self._verify_pool = ThreadPoolExecutor(verify_threads, thread_name_prefix="verify")
        self.sequenced = threading.Event()
        self.checkpointed = threading.Condition()
        self.sequencer = Sequencer(store, max_pending=max_pending, on_commit=self.sequenced.set)
        self._integrate_lock = threading.Lock()

    def close(self) -> None:
        self.sequencer.stop()
        self._verify_pool.shutdown(wait=False, cancel_futures=True)

    # -- appends ------------------------------------------------------------------
    def check_entry(self, obj: Any) -> Checked:
        """Parse and validate one entry (shape, size, payload, the opening of a committed
        decision); no signature check yet. ``obj`` is an envelope, or ``{"envelope",
        "opening"}`` for a version-2 decision."""
        obj, opening = _split_opening(obj)
        envelope = parse_envelope(obj)
        data = _envelope_bytes(obj)
        if len(data) > MAX_ENTRY_SIZE:
            raise EnvelopeError(
                f"entry is {len(data)} bytes; the log stores entries of at most "
                f"{MAX_ENTRY_SIZE} bytes",
                code="entry_too_large",
                status=413,
            )
        if envelope.payload_type not in self._accepted:
            raise EnvelopeError(
                f"payload type {envelope.payload_type!r} cannot be appended here; "
                f"accepted: {sorted(self._accepted)}",
                code="unsupported_payload_type",
            )
        record = validate_payload(envelope.payload_type, envelope.payload)
        return Checked(envelope, data, record, self._opened(record, opening))

    def _opened(
        self, record: BaseModel, opening: DecisionOpening | None
    ) -> tuple[str, str, str] | None:
        """What to keep beside the log for ``record``: checked against its commitment."""
        if isinstance(record, CommittedDecision):
            if opening is None:
                raise EnvelopeError(
                    "a committed (version 2) decision needs its opening beside the envelope: "
                    '{"envelope": ..., "opening": {"salt": ..., "record": ...}}',
                    code="opening_missing",
                    status=422,
                )
            try:
                _clear, kept = open_record(record, opening)
            except BadRequest as exc:  # as an entry's error: a batch names its position
                raise EnvelopeError(
                    exc.message, code=exc.code, status=exc.status, detail=exc.detail
                ) from exc
            return record.commitment, opening.salt, kept.decode()
        if opening is not None:
            raise EnvelopeError(
                "an opening was sent with an entry that commits to nothing; send only "
                "version 2 decisions with an opening",
                code="unexpected_opening",
                status=400,
            )
        if isinstance(record, DecisionRecord) and not self.accept_plain_decisions:
            raise EnvelopeError(
                "this node accepts decisions only as commitments (version 2); update the "
                "SDK, which writes them by default",
                code="plain_decision_refused",
                status=422,
            )
        return None

    def _authorise(self, checked: Checked) -> None:
        verified = self.signers.verify(checked.envelope)
        record = checked.record
        if isinstance(record, _DECISIONS):
            names = {n for k in verified if (n := self.signers.name_of(k)) is not None}
            if record.agent not in names:
                raise EnvelopeError(
                    f"decision names agent {record.agent!r} but is signed by {sorted(names)}; "
                    "an agent may only record its own decisions",
                    code="signer_mismatch",
                    status=403,
                )
            self._check_agent(record.agent, decision_kind(record))

    # Where a revoked agent recorded its halt since its revocation (None: not yet); set
    # by the registry beside ``agent_status``.
    halt_recorded: Callable[[str], int | None] | None = None

    def _check_agent(self, agent: str, action: str) -> None:
        if self.agent_status is None:
            return
        status = self.agent_status(agent)
        if status is None:
            raise EnvelopeError(
                f"{agent} is not a registered agent on this node; register it first",
                code="unknown_agent",
                status=403,
            )
        if status != "revoked":
            return
        # A revoked agent may still record that it halted, once per revocation: the
        # evidence of compliance forensics needs, and nothing it could act on or flood.
        if action != "halt":
            raise EnvelopeError(
                f"{agent} is revoked and may record only its halt",
                code="agent_revoked",
                status=403,
            )
        recorded = None if self.halt_recorded is None else self.halt_recorded(agent)
        if recorded is not None:
            raise EnvelopeError(
                f"{agent} is revoked and already recorded its halt (log index {recorded}); "
                "a revoked agent records one halt per revocation",
                code="halt_already_recorded",
                status=409,
            )

    def _verify_all(self, checked: Sequence[Checked]) -> None:
        """Verify and authorise every entry; raise the error of the first that fails.

        The batch is cut into one contiguous run per verify thread, the first run done
        in the calling thread. libsodium releases the GIL while it checks a signature
        (most of an entry's cost), so the runs use every core at once. Each run stops at
        its first failure, and the runs' errors are raised in order: the error is the
        lowest failing position's, as a plain loop would raise.
        """
        total = len(checked)
        threads = self._verify_threads if total >= _PARALLEL_VERIFY_MIN else 1
        runs = [range(total * n // threads, total * (n + 1) // threads) for n in range(threads)]

        def verify_run(run: range) -> None:
            for position in run:
                _at(position, total, self._authorise, checked[position])

        others = [self._verify_pool.submit(verify_run, run) for run in runs[1:]]
        try:
            verify_run(runs[0])
        finally:
            wait(others)  # no run outlives the request, whatever happened in this one
        for future in others:
            future.result()

    def prepare(self, objs: Sequence[Any]) -> list[SequencedEntry]:
        """Validate and verify a batch, all or nothing; the entries ready to sequence.

        Nothing is stored: ``sequence`` does that. The API runs the two apart, so one
        batch is verified while the batch before it waits for its commit.
        """
        if not objs:
            raise BadRequest("the batch is empty", code="empty_batch")
        checked = [
            _at(position, len(objs), self.check_entry, obj) for position, obj in enumerate(objs)
        ]
        self._verify_all(checked)
        return [c.sequenced() for c in checked]

    def sequence(
        self, entries: Sequence[SequencedEntry], *, started: float | None = None
    ) -> list[int]:
        """Durably sequence entries ``prepare`` accepted; each one's index, once committed.

        ``started`` (``time.perf_counter()`` when the batch arrived) times the whole append
        for the metrics: verification and the wait for the commit.
        """
        self.alarm.check()
        indices = self.sequencer.submit(entries)
        if started is not None:
            self.metrics.appended(len(indices), time.perf_counter() - started)
        return indices

    def append(self, objs: Sequence[Any]) -> list[int]:
        """Validate, verify and durably sequence a batch; all or nothing."""
        started = time.perf_counter()
        return self.sequence(self.prepare(objs), started=started)

    def append_own(self, envelope: Envelope, project: Projector | None = None) -> int:
        """Sequence an entry already verified by its service, with its projection, atomically."""
        self.alarm.check()
        data = envelope.to_bytes()
        entry = SequencedEntry(data, leaf_hash(data), envelope.payload_type)
        return self.sequencer.submit([entry], project)[0]

    # -- integration --------------------------------------------------------------
    def integrate(self) -> StoredCheckpoint | None:
        """Grow the tree over newly sequenced entries and sign a checkpoint for it.

        Nothing is signed over state that has not been re-derived first: what the tree
        builds on and every new entry are checked (``custodes.ledger.integrity``); a
        mismatch trips the alarm latch and stops appends and checkpoints.
        """
        self.alarm.check()
        started = time.perf_counter()
        with self._integrate_lock, write_tx(self.store.engine) as conn:
            size, stored_root, sequenced = self.store.lock_tree(conn)
            if sequenced == size:
                return None
            end = min(sequenced, size + _MAX_INTEGRATE)
            tree = self._checked(lambda: self._base(conn, size, stored_root))
            rows = self.store.entry_rows(conn, size, end)
            leaves = self._checked(lambda: check_entries(size, end, rows))
            nodes: list[tuple[int, int, bytes]] = []

            def keep(level: int, index: int, digest: bytes) -> None:
                if level % TILE_HEIGHT == 0:
                    nodes.append((level // TILE_HEIGHT, index, digest))

            tree.extend(leaves, keep)
            root = tree.root()
            note = sign_checkpoint(Checkpoint(self.origin, end, root), self._log_signer)
            self.store.save_integration(conn, nodes, end, root, note)
        if self.high_water is not None:
            self.high_water.advance(end, root)
        cp = StoredCheckpoint(end, root, note, time.time())
        self.metrics.checkpointed(time.perf_counter() - started)
        with self.checkpointed:
            self.checkpointed.notify_all()
        return cp

    def _base(self, conn: Connection, size: int, stored_root: bytes) -> CompactRange:
        """The stored tree of ``size`` leaves, re-derived and checked (see integrity)."""
        edge_start = right_edge_start(size)
        check_entries(edge_start, size, self.store.entry_rows(conn, edge_start, size))
        note = self.store.checkpoint_note(conn, size)
        signed = None if note is None else (note, [self._log_signer.verifier()])
        mark = None if self.high_water is None else self.high_water.read()
        reader = self.store.node_reader(conn)
        return check_tree_base(size, stored_root, reader, signed=signed, mark=mark)

    def _checked(self, check: Callable[[], T]) -> T:
        """Run an integrity check; on a mismatch trip the latch and raise its error."""
        try:
            return check()
        except IntegrityAlarm as exc:
            raise self.alarm.trip(exc.message, exc.detail) from exc
        except (NotFound, LedgerError) as exc:  # missing or malformed stored tiles
            raise self.alarm.trip(f"the stored tree is unreadable: {exc.message}") from exc

    def check_stored_tree(self) -> None:
        """Check what the next integration builds on (run at start); trip on mismatch."""
        if self.alarm.tripped:
            return
        with read_tx(self.store.engine) as conn:
            size, root = self.store.tree_size(conn)
            try:
                self._checked(lambda: self._base(conn, size, root))
            except IntegrityAlarm:
                return  # tripped: the node serves reads and refuses appends

    def wait_for_checkpoint(self, size: int, timeout: float) -> bool:
        """Block until a checkpoint covers ``size`` entries (used by tests and the demo)."""
        deadline = time.monotonic() + timeout
        with self.checkpointed:
            while self.store.tree_size()[0] < size:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.checkpointed.wait(min(left, 0.2))
        return True

    # -- proofs -------------------------------------------------------------------
    def _proof_size(self, conn: Connection, size: int | None) -> int:
        tree_size, _ = self.store.tree_size(conn)
        if size is None:
            return tree_size
        if not 0 < size <= tree_size:
            raise NotFound(
                f"tree size {size} is not available; the log has integrated {tree_size} entries",
                code="size_not_available",
            )
        return size

    def inclusion(
        self, *, index: int | None = None, leaf: bytes | None = None, size: int | None = None
    ) -> Proof:
        with read_tx(self.store.engine) as conn:
            size = self._proof_size(conn, size)
            if index is None and leaf is not None:
                index = self.store.index_of(conn, leaf)
            if index is None or not 0 <= index < size:
                raise NotFound(
                    "no entry with that index or leaf hash in this tree size",
                    code="entry_not_found",
                )
            leaf = self.store.leaf_hashes(conn, index, index + 1)[0]
            proof = inclusion_proof(index, size, self.store.node_reader(conn))
        return Proof(index=index, tree_size=size, leaf_hash=leaf, proof=proof)

    def consistency(self, first: int, second: int | None = None) -> Proof:
        with read_tx(self.store.engine) as conn:
            second = self._proof_size(conn, second)
            if not 0 < first <= second:
                raise BadRequest(
                    f"need 0 < first <= second, got first={first}, second={second}",
                    code="bad_sizes",
                )
            proof = consistency_proof(first, second, self.store.node_reader(conn))
        return Proof(first=first, second=second, proof=proof)


def _split_opening(obj: Any) -> tuple[Any, DecisionOpening | None]:
    """The envelope of an append item, and the opening beside it if any."""
    if not (isinstance(obj, dict) and "envelope" in obj):
        return obj, None
    if set(obj) != {"envelope", "opening"}:
        raise EnvelopeError(
            f"an entry with an opening holds exactly 'envelope' and 'opening', not {sorted(obj)}",
            code="invalid_envelope",
            status=422,
        )
    try:
        return obj["envelope"], parse_opening(obj["opening"])
    except BadRequest as exc:
        raise EnvelopeError(exc.message, code=exc.code, status=exc.status) from exc


def _envelope_bytes(obj: Any) -> bytes:
    """The RFC 8785 form of an envelope ``parse_envelope`` accepted.

    Such an envelope holds only strings under fixed ASCII keys, for which orjson's sorted
    output is the canonical form (``canonical_dumps`` takes this path after walking the
    value to prove it; the parse has proved it already).
    """
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    except TypeError as exc:  # a lone surrogate in a key id: UTF-8 cannot carry it
        raise EnvelopeError(
            f"value cannot be written as canonical JSON: {exc}", code="non_canonical_json"
        ) from exc


def _at(position: int, total: int, check: Callable[[Any], T], obj: Any) -> T:
    """Run ``check(obj)``; name the failing entry's position when it is part of a batch."""
    try:
        return check(obj)
    except EnvelopeError as exc:
        if total > 1:
            exc.detail = {**exc.detail, "entry": position}
            exc.message = f"entry {position}: {exc.message}"
            exc.args = (exc.message,)
        raise

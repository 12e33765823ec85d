"""The decision recorder: spool first, deliver in batches, never lose, never resend.

``record`` signs a decision with a fresh idempotency key and fsyncs it to the spool
before returning (by default as a commitment, version 2: the public log gets metadata and
a salted commitment, the home node the clear record and salt sent beside it), so a
decision the caller has been told about survives a crash. A
background thread sends pending decisions in order, ``batch_size`` at a time (or
whatever has gathered after ``flush_interval``), and marks each batch delivered only
once the node has answered with its indices. On any failure — the node unreachable, a
5xx, a 503 with Retry-After, even a 4xx — the batch stays spooled and is retried with
exponential backoff (Retry-After honoured up to ``retry_max``); a 413 halves the batch
size instead. Nothing is ever dropped: a batch the node keeps refusing blocks the ones
behind it, and ``last_error`` says why.

Delivery is at least once from here, exactly once end to end: a batch whose answer was
lost is sent again, and the node answers a repeated (agent, idempotency key) with the
original index. A decision is never sent again after its acknowledgement was recorded.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import ValidationError

from custodes.errors import BadRequest, CustodesError
from custodes.ledger.commitments import DecisionOpening, OpenedEntry
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE, DecisionRecord
from custodes.sdk.decisions import sign_record
from custodes.sdk.spool import DecisionSpool, SpooledDecision, SpoolError

__all__ = ["DecisionRecorder", "EntryAppender"]

log = logging.getLogger("custodes.sdk.recorder")

# Answers that will not change on retry: bad input, not allowed, unknown agent.
_PERMANENT = frozenset({400, 403, 404, 415, 422})


class EntryAppender(Protocol):
    """What the recorder sends through: ``custodes.client.Client`` or anything with its
    ``append``."""

    def append(self, envelopes: Sequence[Envelope | OpenedEntry]) -> list[int]: ...


def _sign(
    signer: EnvelopeSigner,
    agent_id: str,
    key: str,
    *,
    action: str,
    rationale: str,
    counterparties: Sequence[str],
    jurisdiction: str | None,
    inputs_digest: str | None,
    committed: bool,
) -> tuple[Envelope, DecisionOpening | None]:
    # sign_decision has no inputs_digest yet, so the record is built here the same way.
    try:
        record = DecisionRecord(
            agent=agent_id,
            action=action,
            rationale=rationale,
            counterparties=list(counterparties),
            jurisdiction=jurisdiction,
            inputs_digest=inputs_digest,
            decided_at=datetime.now(UTC),
            idempotency_key=key,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "decision"
        raise BadRequest(
            f"the decision is invalid at {where}: {first['msg']}", code="invalid_decision"
        ) from exc
    if committed:
        sealed = sign_record(signer, record)
        return sealed.envelope, sealed.opening
    payload = record.model_dump_json(exclude_none=True).encode()
    return sign_envelope(DECISION_TYPE, payload, [signer]), None


class DecisionRecorder:
    """Records an agent's decisions durably and delivers them to its home node."""

    def __init__(
        self,
        client: EntryAppender,
        agent_id: str,
        signer: EnvelopeSigner,
        spool_dir: Path,
        *,
        batch_size: int = 100,
        flush_interval: float = 0.2,
        retry_initial: float = 0.1,
        retry_max: float = 5.0,
        compact_after: int = 1000,
        committed: bool = True,
    ) -> None:
        self.agent_id = agent_id
        self._committed = committed  # False: plain version-1 records, for old nodes
        self._client, self._signer = client, signer
        self._spool = DecisionSpool(spool_dir, compact_after=compact_after)
        self._batch_size, self._flush_interval = max(1, batch_size), flush_interval
        self._configured_batch = self._batch_size
        self._retry_initial, self._retry_max = retry_initial, retry_max
        self._backoff = retry_initial
        self.last_error: str | None = None
        self._drained = threading.Condition()
        self._flushing = 0
        self._wake, self._stop = threading.Event(), threading.Event()
        self._closed = False
        self._thread = threading.Thread(
            target=self._send_loop, name="custodes-recorder", daemon=True
        )
        self._thread.start()

    def record(
        self,
        action: str,
        rationale: str,
        counterparties: Sequence[str] = (),
        jurisdiction: str | None = None,
        inputs_digest: str | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> str:
        """Sign a decision, fsync it to the spool, and return its idempotency key (a
        fresh one unless ``idempotency_key`` names it)."""
        if self._closed:
            raise SpoolError("the recorder is closed", code="spool_closed")
        key = idempotency_key or uuid.uuid4().hex
        envelope, opening = _sign(
            self._signer,
            self.agent_id,
            key,
            action=action,
            rationale=rationale,
            counterparties=counterparties,
            jurisdiction=jurisdiction,
            inputs_digest=inputs_digest,
            committed=self._committed,
        )
        self._spool.append(key, envelope, opening)
        if len(self._spool) >= self._batch_size:
            self._wake.set()
        return key

    def pending(self) -> int:
        """How many recorded decisions the node has not acknowledged yet."""
        return len(self._spool)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every recorded decision is delivered; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._drained:
            self._flushing += 1
            self._wake.set()
            try:
                while len(self._spool) and not self._closed:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._drained.wait(remaining)
                return not len(self._spool)
            finally:
                self._flushing -= 1

    def close(self, timeout: float = 5.0) -> None:
        """Stop sending; what is still pending stays spooled for the next recorder."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        self._spool.close()
        with self._drained:
            self._drained.notify_all()

    def __enter__(self) -> DecisionRecorder:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- the sender thread -----------------------------------------------------------

    def _urgent(self) -> bool:
        return self._flushing > 0 or len(self._spool) >= self._batch_size

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            if not self._urgent():
                self._wake.wait(self._flush_interval)
                self._wake.clear()
            self._send_pending()

    def _send_pending(self) -> None:
        while not self._stop.is_set():
            batch = self._spool.head(self._batch_size)
            if not batch:
                return
            wait = self._send(batch)
            if wait is not None:
                self._stop.wait(wait)
            with self._drained:
                self._drained.notify_all()

    def _send(self, batch: list[SpooledDecision]) -> float | None:
        """Deliver one batch; None when acknowledged, else how long to wait."""
        try:
            indices = self._client.append([d.item() for d in batch])
            if len(indices) != len(batch):
                raise CustodesError(f"the node answered {len(indices)} indices for {len(batch)}")
            self._spool.ack([d.key for d in batch], indices)
        except CustodesError as exc:
            if exc.status in _PERMANENT:
                return self._refused(batch, exc)
            return self._failed(exc, exc.status, exc.detail.get("retry_after"))
        except Exception as exc:  # transport errors and anything else: keep and retry
            return self._failed(exc, None, None)
        self._backoff, self.last_error = self._retry_initial, None
        return None

    def _refused(self, batch: list[SpooledDecision], exc: CustodesError) -> float:
        """The node refuses for good: set the named decision aside, keep sending the rest.

        A refusal that names no entry is isolated by sending one decision at a time.
        """
        position = 0 if len(batch) == 1 else exc.detail.get("entry")
        if not isinstance(position, int) or not 0 <= position < len(batch):
            self._batch_size = 1
            return 0.0
        reason = f"{exc.code}: {exc.message}"
        log.error(
            "the node refused decision %s for good (%s); it is kept in %s",
            batch[position].key,
            reason,
            "rejected.jsonl",
        )
        self._spool.reject(batch[position], reason)
        self._batch_size = self._configured_batch
        return 0.0

    def rejected(self) -> list[dict[str, object]]:
        """Decisions the node refused for good (kept on disk in ``rejected.jsonl``)."""
        return self._spool.rejected()

    def _failed(self, exc: Exception, status: int | None, retry_after: object) -> float:
        self.last_error = str(exc) or type(exc).__name__
        if status == 413 and self._batch_size > 1:
            self._batch_size = max(1, self._batch_size // 2)
            log.warning("the node refused a batch as too large; sending %d", self._batch_size)
            return 0.0
        level = logging.ERROR if status is not None and 400 <= status < 500 else logging.WARNING
        log.log(level, "delivering decisions failed (%s); they stay spooled", self.last_error)
        hint = float(retry_after) if isinstance(retry_after, int | float) else 0.0
        wait = min(max(self._backoff, hint), self._retry_max)
        self._backoff = min(self._backoff * 2, self._retry_max)
        return wait

"""Published evaluation results: a read index by agent, suite and time, and the table
that keeps one result from being published twice.

``eval_index`` (migration 0006) is filled from the integrated log like every read index
(``custodes.ledger.readindex``): each ``EvalResult`` entry gives one row (its log index,
the agent it tested when it names one, the suite id, when the run finished, in
microseconds since the epoch, UTC).

``eval_published`` (migration 0008) is not a read index: its row is written by the
projection ``record_published`` inside the very transaction that sequences the result,
under the log's sequencing lock, with (issuer, run_id, epoch) as its primary key. So a
result is logged if and only if its row exists, and a second publish of the same key
(concurrent, from another process, after a restart) finds the first one's row:
``AlreadyPublished`` names its index and whether the content is the same
(docs/design/0019-auditor-rails.md).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Select,
    String,
    Table,
    and_,
    insert,
    select,
)

from custodes.errors import CustodesError
from custodes.evals.results import RESULT_TYPE, EvalResult
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.readindex import IndexedKind, Row, micros
from custodes.ledger.store import Projector
from custodes.store.db import BigId, metadata

__all__ = [
    "EVAL_RESULTS",
    "AlreadyPublished",
    "ResultFilter",
    "eval_index",
    "eval_published",
    "published_row",
    "record_published",
    "result_digest",
    "result_row",
    "select_results",
]

eval_index = Table(
    "eval_index",
    metadata,
    Column("idx", BigId, primary_key=True, autoincrement=False),
    Column("agent_id", String(256), nullable=True),
    Column("suite", String(256), nullable=False),
    Column("finished_at", BigInteger, nullable=False),
)
Index("ix_eval_index_agent", eval_index.c.agent_id, eval_index.c.idx)
Index("ix_eval_index_suite", eval_index.c.suite, eval_index.c.idx)

eval_published = Table(
    "eval_published",
    metadata,
    Column("issuer", String(256), primary_key=True),
    Column("run_id", String(128), primary_key=True),
    Column("epoch", BigInteger, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, nullable=False),
    Column("digest", String(71), nullable=False),
)

_DATETIME = TypeAdapter(datetime)


def result_row(index: int, payload: bytes) -> Row | None:
    """The index row of a logged ``EvalResult`` (validated by the node before logging)."""
    record = orjson.loads(payload)
    finished = _DATETIME.validate_python(record["finished_at"])
    return {
        "idx": index,
        "agent_id": record.get("agent_id"),
        "suite": str(record["suite"]["id"]),
        "finished_at": micros(finished),
    }


EVAL_RESULTS = IndexedKind("eval_results", RESULT_TYPE, eval_index, result_row)


@dataclass(frozen=True)
class ResultFilter:
    """Which results a reader asked for (``since`` in microseconds); None matches all."""

    agent_id: str | None = None
    suite: str | None = None
    since: int | None = None


def select_results(
    where: ResultFilter, size: int, after: int | None, limit: int
) -> Select[tuple[int]]:
    """Log indices of the results below tree ``size`` matching ``where``, after log index
    ``after``, in log order (an agent's or a suite's results by their own index)."""
    c = eval_index.c
    conditions = [c.idx < size]
    if after is not None:
        conditions.append(c.idx > after)
    if where.agent_id is not None:
        conditions.append(c.agent_id == where.agent_id)
    if where.suite is not None:
        conditions.append(c.suite == where.suite)
    if where.since is not None:
        conditions.append(c.finished_at >= where.since)
    return select(c.idx).where(and_(*conditions)).order_by(c.idx).limit(limit)


# --- published once ----------------------------------------------------------------------


class AlreadyPublished(CustodesError):
    """This issuer already logged this run's epoch, at ``index``; ``same``: same content."""

    code = "result_conflict"
    status = 409

    def __init__(self, result: EvalResult, index: int, same: bool) -> None:
        what = f"epoch {result.epoch} of run {result.run_id} by {result.issuer}"
        super().__init__(
            f"{what} is already published at log index {index} with different content; "
            "a published result is never replaced: publish another epoch or run",
            detail={"index": index, "run_id": result.run_id, "epoch": result.epoch},
        )
        self.index = index
        self.same = same


def result_digest(result: EvalResult) -> str:
    """What "the same content" means: the record as this node reads it, canonical JSON."""
    digest = hashlib.sha256(canonical_dumps(result.model_dump(mode="json"))).hexdigest()
    return f"sha256:{digest}"


def published_row(index: int, result: EvalResult) -> Row:
    return {
        "issuer": result.issuer or "",
        "run_id": result.run_id,
        "epoch": result.epoch,
        "idx": index,
        "digest": result_digest(result),
    }


def record_published(result: EvalResult) -> Projector:
    """The projection that logs ``result`` only if its (issuer, run, epoch) is new."""
    row = published_row(0, result)

    def project(conn: Connection, index: int) -> None:
        c = eval_published.c
        key = (c.issuer == row["issuer"], c.run_id == row["run_id"], c.epoch == row["epoch"])
        found = conn.execute(select(c.idx, c.digest).where(*key)).first()
        if found is not None:
            raise AlreadyPublished(result, int(found.idx), found.digest == row["digest"])
        conn.execute(insert(eval_published).values({**row, "idx": index}))

    return project

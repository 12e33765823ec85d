"""Published evaluation results by agent, suite and time: a read index over the log.

Filled from the integrated log like every read index (``custodes.ledger.readindex``):
each ``EvalResult`` entry gives one row (its log index, the agent and model it tested
when it names them, the suite id, when the run finished, in microseconds since the
epoch, UTC). Table ``eval_index`` (migration 0006).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from pydantic import TypeAdapter
from sqlalchemy import BigInteger, Column, Index, Select, String, Table, and_, select

from custodes.evals.results import RESULT_TYPE
from custodes.ledger.readindex import IndexedKind, Row, micros
from custodes.store.db import BigId, metadata

__all__ = ["EVAL_RESULTS", "ResultFilter", "eval_index", "result_row", "select_results"]

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

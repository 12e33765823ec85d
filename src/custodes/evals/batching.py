"""Judging in batches: concurrent workers share one ``judge_many`` call.

A judge with a model (``LearnedJudge``) is fastest when it embeds many answers at once
and slowest when 32 threads each embed one on two cores. ``JudgeBatcher`` collects the
answers that finish while a batch is being judged and judges them together in one
worker thread, so the batch size follows the load (1 when targets are slow, up to
the concurrency when they are fast) and no answer waits for a batch to fill.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from custodes.evals.models import Behaviour, Probe, Response, Verdict

__all__ = ["BatchJudge", "JudgeBatcher", "batch_judge"]

Case = tuple[Behaviour, Probe, Response]


class BatchJudge(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def version(self) -> str: ...

    def judge(self, behaviour: Behaviour, probe: Probe, response: Response) -> Verdict: ...

    def judge_many(self, cases: Sequence[Case]) -> list[Verdict]: ...


def batch_judge(judge: object) -> BatchJudge | None:
    """``judge`` as a batch judge, if it has ``judge_many``."""
    return judge if callable(getattr(judge, "judge_many", None)) else None  # type: ignore[return-value]


_Pending = tuple[Case, "asyncio.Future[Verdict]"]


class JudgeBatcher:
    """One task that judges whatever answers are waiting, in one ``judge_many`` call."""

    def __init__(self, judge: BatchJudge) -> None:
        self._judge = judge
        self._queue: asyncio.Queue[_Pending | None] = asyncio.Queue()

    async def verdict(self, behaviour: Behaviour, probe: Probe, response: Response) -> Verdict:
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(((behaviour, probe, response), future))
        return await future

    async def run(self) -> None:
        closing = False
        while not closing:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            closing = batch[-1] is None
            await self._judge_batch([p for p in batch if p is not None])

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def _judge_batch(self, batch: list[_Pending]) -> None:
        if not batch:
            return
        try:
            verdicts = await asyncio.to_thread(self._judge.judge_many, [c for c, _ in batch])
        except Exception as exc:  # the judge's failure is every waiting caller's
            for _, future in batch:
                future.set_exception(exc)
            return
        for (_, future), verdict in zip(batch, verdicts, strict=True):
            future.set_result(verdict)

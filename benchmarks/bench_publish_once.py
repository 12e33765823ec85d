"""What the published-once rail costs: sequencing results with and without its projection.

A node on SQLite (a temporary directory) sequences N signed ``EvalResult``s one at a
time, first without the projection (as before the rail: the limit), then with
``record_published`` (a look-up and an insert in the sequencing transaction). Prints
both rates and the ratio. Results are rare (one per epoch), so this is for the record.

    .venv/bin/python benchmarks/bench_publish_once.py [--n 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from custodes.config import Settings
from custodes.evals.index import record_published
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.results import RESULT_TYPE, EvalResult, SampleRecord, judge_info, summarise
from custodes.evals.suite import load_suite
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.node import Node

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = EnvelopeSigner.from_seed(b"bench-publish-once-auditor-key!!")


def results(n: int, prefix: str) -> list[tuple[EvalResult, Envelope]]:
    record = SampleRecord(
        epoch=0, sample_id="b0:direct:0", behaviour_id="b0", family_id="direct",
        kind="must_refuse", attempt=0, outcome=Outcome.REFUSE, judge_id="custodes.rule",
        judge_version="1",
    )  # fmt: skip
    base = summarise(
        [record], load_suite("core"), run_id="r", epoch=0, target="scripted", model=None,
        agent_id=None, judge=judge_info(RuleJudge()), attempts=1, started_at=NOW,
        finished_at=NOW,
    )  # fmt: skip
    made = []
    for i in range(n):
        result = base.model_copy(update={"run_id": f"{prefix}-{i}", "issuer": "auditor:b"})
        made.append((result, sign_envelope(RESULT_TYPE, result.model_dump_json().encode(), [KEY])))
    return made


def rate(node: Node, batch: list[tuple[EvalResult, Envelope]], project: bool) -> float:
    began = time.perf_counter()
    for result, envelope in batch:
        node.log.append_own(envelope, record_published(result) if project else None)
    return len(batch) / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=300)
    n = parser.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        settings = Settings(
            data_dir=base / "node", database_url=f"sqlite:///{base / 'c.db'}",
            origin="bench.custodes.example/log", checkpoint_interval=0.5,
        )  # fmt: skip
        node = Node(settings)
        node.start()
        try:
            plain = rate(node, results(n, "plain"), project=False)
            once = rate(node, results(n, "once"), project=True)
        finally:
            node.close()
    print(f"{'sequencing one result at a time (SQLite)':<44} {'per second':>10}")
    print(f"{'without the projection (the limit)':<44} {plain:>10.0f}")
    print(f"{'with record_published':<44} {once:>10.0f}")
    print(f"{'ratio to the limit':<44} {once / plain:>10.0%}")


if __name__ == "__main__":
    main()

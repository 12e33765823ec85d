"""Published once, under a race: concurrent publishes of one (issuer, run, epoch).

Eight threads sequence a result for the same key at once through the node's log, each
with the projection the API uses; on SQLite and PostgreSQL exactly one is logged and
every other learns its index (``AlreadyPublished``), because the projection runs in the
sequencing transaction, under the sequencing lock.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from custodes.evals.index import AlreadyPublished, record_published, result_digest
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.results import RESULT_TYPE, EvalResult, SampleRecord, judge_info, summarise
from custodes.evals.suite import load_suite
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.node import Node

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = EnvelopeSigner.from_seed(b"index-test-auditor-key-32-bytes!")
RACERS = 8


def result(target: str, run_id: str = "race-1") -> EvalResult:
    record = SampleRecord(
        epoch=0,
        sample_id="b0:direct:0",
        behaviour_id="b0",
        family_id="direct",
        kind="must_refuse",
        attempt=0,
        outcome=Outcome.REFUSE,
        judge_id="custodes.rule",
        judge_version="1",
    )
    made = summarise(
        [record],
        load_suite("core"),
        run_id=run_id,
        epoch=0,
        target=target,
        model=None,
        agent_id=None,
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )
    return made.model_copy(update={"issuer": "auditor:race"})


# ``node``: a started node on SQLite and on PostgreSQL (tests/conftest.py).


def publish(node: Node, record: EvalResult) -> int:
    envelope = sign_envelope(RESULT_TYPE, record.model_dump_json().encode(), [KEY])
    return node.log.append_own(envelope, record_published(record))


def test_of_concurrent_publishes_for_one_run_and_epoch_exactly_one_is_logged(node: Node) -> None:
    before = node.store.sequenced_size()
    start = threading.Barrier(RACERS)
    logged: list[int] = []
    refused: list[AlreadyPublished] = []

    def race(n: int) -> None:
        start.wait()
        try:
            logged.append(publish(node, result(f"scripted:{n}")))
        except AlreadyPublished as exc:
            refused.append(exc)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(logged) == 1
    assert len(refused) == RACERS - 1
    assert {exc.index for exc in refused} == {logged[0]}
    assert not any(exc.same for exc in refused)
    assert node.store.sequenced_size() == before + 1


def test_the_same_content_is_recognised_and_another_run_is_not(node: Node) -> None:
    first = publish(node, result("scripted"))
    with pytest.raises(AlreadyPublished) as again:
        publish(node, result("scripted"))
    assert (again.value.index, again.value.same) == (first, True)
    assert publish(node, result("scripted", run_id="race-2")) != first


def test_the_digest_reads_the_record_not_its_bytes() -> None:
    record = result("scripted")
    reordered = EvalResult.model_validate_json(record.model_dump_json(exclude_defaults=True))
    assert result_digest(reordered) == result_digest(record)
    assert result_digest(record.model_copy(update={"target": "other"})) != result_digest(record)

"""Migration 0008 over a log that already holds results: published-once covers them.

Results logged before the rail existed (here: sequenced without its projection, as the
old node did, one of them twice for the same run and epoch with different content) are
backfilled into ``eval_published`` when the database is taken back to 0007 and opened
again; the first of the duplicates is the one a new publish is answered with.
"""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources

import pytest
from alembic import command
from alembic.config import Config

from custodes.config import Settings
from custodes.evals.index import AlreadyPublished, record_published
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.results import RESULT_TYPE, EvalResult, SampleRecord, judge_info, summarise
from custodes.evals.suite import load_suite
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.node import Node
from custodes.store.db import open_engine

NOW = datetime(2026, 12, 1, tzinfo=UTC)
KEY = EnvelopeSigner.from_seed(b"migration-0008-auditor-key-32by!")


def result(target: str) -> EvalResult:
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
        run_id="old-run",
        epoch=0,
        target=target,
        model=None,
        agent_id=None,
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )
    return made.model_copy(update={"issuer": "auditor:old"})


def envelope(record: EvalResult) -> Envelope:
    return sign_envelope(RESULT_TYPE, record.model_dump_json().encode(), [KEY])


def _downgrade_to_0007(settings: Settings) -> None:
    config = Config()
    config.set_main_option("script_location", str(resources.files("custodes.store") / "migrations"))
    engine = open_engine(settings.db_url)
    try:
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            command.downgrade(config, "0007")
    finally:
        engine.dispose()


def test_results_logged_before_the_rail_are_published_once_after_it(settings: Settings) -> None:
    node = Node(settings)
    node.start()
    try:
        first = node.log.append_own(envelope(result("scripted")))
        node.log.append_own(envelope(result("scripted:other")))
    finally:
        node.close()
    _downgrade_to_0007(settings)

    node = Node(settings)  # migrates to the newest revision: 0008 backfills
    node.start()
    try:
        for target, same in (("scripted", True), ("scripted:other", False)):
            again = result(target)
            with pytest.raises(AlreadyPublished) as refused:
                node.log.append_own(envelope(again), record_published(again))
            assert (refused.value.index, refused.value.same) == (first, same)
    finally:
        node.close()

"""POST /api/v1/evals/results: the rails a hand-made client cannot skip.

A result above the error threshold is refused without its signed override (and logged
with it); the same result published again answers with its first index (200,
``already_published``) and logs nothing; other content for the same issuer, run and
epoch is a 409. On SQLite and PostgreSQL, and across a node restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.client import Client
from custodes.config import Settings
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.rails import error_override
from custodes.evals.results import RESULT_TYPE, EvalResult, SampleRecord, judge_info, summarise
from custodes.evals.suite import load_suite
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.sdk.bootstrap import register_principal
from tests.api.support import assert_error, node_of

PATH = "/api/v1/evals/results"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
ISSUER = "auditor:rails"


def sample(n: int, error: str | None = None) -> SampleRecord:
    return SampleRecord(
        epoch=0,
        sample_id=f"b{n}:base64:0",
        behaviour_id=f"b{n}",
        family_id="base64",
        kind="must_refuse",
        attempt=0,
        error=error,
        outcome=Outcome.ERROR if error else Outcome.REFUSE,
        judge_id="custodes.rule",
        judge_version="1",
    )


def result(run_id: str, errors: int = 0, epoch: int = 0, target: str = "scripted") -> EvalResult:
    """20 samples, ``errors`` of them target errors (2 is 10%: above the threshold)."""
    records = [sample(n, "HTTP 503" if n < errors else None) for n in range(20)]
    made = summarise(
        records,
        load_suite("core"),
        run_id=run_id,
        epoch=epoch,
        target=target,
        model=None,
        agent_id=None,
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=NOW,
        finished_at=NOW,
    )
    return made.model_copy(update={"issuer": ISSUER})


@dataclass(frozen=True)
class Auditor:
    http: TestClient
    key: EnvelopeSigner
    token: str

    def post(self, record: EvalResult) -> httpx.Response:
        """Sign and send ``record`` as a hand-made client would: no check of its own."""
        envelope = sign_envelope(RESULT_TYPE, record.model_dump_json().encode(), [self.key])
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.http.post(PATH, content=canonical_dumps(envelope.to_json()), headers=headers)

    def client(self) -> Client:
        return Client(
            str(self.http.base_url),
            principal=ISSUER,
            token=self.token,
            key=self.key,
            http=self.http,
        )

    def logged(self) -> int:
        return node_of(self.http).store.sequenced_size()


KEY = EnvelopeSigner.from_seed(b"rails-auditor-key-for-tests-0008")


def register(http: TestClient, settings: Settings) -> str:
    return register_principal(
        http,
        settings.admin_token,
        ISSUER,
        role="auditor",
        jurisdiction=settings.jurisdiction,
        key=KEY,
    )


@pytest.fixture(scope="module")
def auditor(shared_client: TestClient, shared_settings: Settings) -> Auditor:
    return Auditor(shared_client, KEY, register(shared_client, shared_settings))


def test_a_result_above_the_threshold_without_an_override_is_refused(auditor: Auditor) -> None:
    before = auditor.logged()
    detail = assert_error(auditor.post(result("over-1", errors=2)), 422, "too_many_errors")
    assert detail == {"error_rate": pytest.approx(0.1), "threshold": 0.05}
    assert auditor.logged() == before


def test_with_its_override_it_is_logged_and_the_record_shows_it(auditor: Auditor) -> None:
    over = result("over-2", errors=2)
    override = error_override(over, "rate limit on the vendor side; reviewed", ISSUER)
    answer = auditor.post(over.model_copy(update={"error_override": override}))
    assert answer.status_code == 201, answer.text
    index = answer.json()["index"]
    assert node_of(auditor.http).log.wait_for_checkpoint(index + 1, timeout=20)
    logged = auditor.http.get(f"{PATH}/{index}").json()["record"]["error_override"]
    assert logged == {
        "reason": "rate limit on the vendor side; reviewed",
        "error_rate": pytest.approx(0.1),
        "threshold": 0.05,
        "by": ISSUER,
    }


def test_an_override_that_names_another_rate_is_refused(auditor: Auditor) -> None:
    over = result("over-3", errors=2)
    override = error_override(over, "reviewed", ISSUER).model_copy(update={"error_rate": 0.0})
    before = auditor.logged()
    answer = auditor.post(over.model_copy(update={"error_override": override}))
    assert_error(answer, 422, "bad_override")
    assert auditor.logged() == before


def test_the_same_result_again_answers_with_its_first_index(auditor: Auditor) -> None:
    first = auditor.post(result("twice-1"))
    assert first.status_code == 201, first.text
    before = auditor.logged()
    again = auditor.post(result("twice-1"))
    assert again.status_code == 200, again.text
    assert again.json() == {"index": first.json()["index"], "already_published": True}
    with auditor.client() as client:
        assert client.publish_once(result("twice-1")).again
    assert auditor.logged() == before


def test_other_content_for_the_same_run_and_epoch_is_a_conflict(auditor: Auditor) -> None:
    first = auditor.post(result("twice-2")).json()["index"]
    before = auditor.logged()
    answer = auditor.post(result("twice-2", target="scripted:other"))
    detail = assert_error(answer, 409, "result_conflict")
    assert detail == {"index": first, "run_id": "twice-2", "epoch": 0}
    assert f"already published at log index {first}" in answer.json()["error"]["message"]
    assert auditor.logged() == before


def test_another_epoch_of_the_same_run_is_a_new_result(auditor: Auditor) -> None:
    first = auditor.post(result("twice-3", epoch=0))
    second = auditor.post(result("twice-3", epoch=1))
    assert (first.status_code, second.status_code) == (201, 201)
    assert second.json()["index"] != first.json()["index"]


def test_published_once_holds_across_a_node_restart(settings: Settings) -> None:
    fresh = settings  # a node of its own, on SQLite and on PostgreSQL (tests/conftest.py)
    with TestClient(create_app(fresh)) as http:
        auditor = Auditor(http, KEY, register(http, fresh))
        first = auditor.post(result("restart-1"))
        assert first.status_code == 201, first.text
    with TestClient(create_app(fresh)) as http:
        auditor = Auditor(http, KEY, auditor.token)
        again = auditor.post(result("restart-1"))
        assert again.status_code == 200, again.text
        assert again.json()["index"] == first.json()["index"]
        assert_error(auditor.post(result("restart-1", target="x")), 409, "result_conflict")

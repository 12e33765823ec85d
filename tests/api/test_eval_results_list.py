"""GET /api/v1/evals/results: published evaluation results, filtered, each with its proof.

An auditor publishes results for two agents and two suites, finished on different days,
beside a drift alert (not a result); the list filters by agent, suite and ``since``,
pages with its cursor in log order, and every item's proof verifies.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from custodes.client import Client
from custodes.config import Settings
from custodes.evals.judges import RuleJudge
from custodes.evals.models import Outcome
from custodes.evals.results import (
    DriftAlert,
    EvalResult,
    SampleRecord,
    SuiteRef,
    judge_info,
    summarise,
)
from custodes.evals.suite import load_suite
from custodes.ledger import leaf_hash, open_checkpoint, parse_vkey, verify_inclusion
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import register_principal
from tests.api.support import assert_error, node_of

DAY0 = datetime(2026, 5, 1, tzinfo=UTC)
AGENTS = ("urn:custodes:zz:agent:a", "urn:custodes:zz:agent:b", None)
SUITES = ("core-1", "finance-1")
PATH = "/api/v1/evals/results"


def result(n: int) -> EvalResult:
    """The n-th result: agent, suite and finishing day cycle so every filter has a mix."""
    sample = SampleRecord(
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
    suite = load_suite("core")
    finished = DAY0 + timedelta(days=n)
    made = summarise(
        [sample],
        suite,
        run_id=f"run-{n}",
        epoch=0,
        target="scripted",
        model="m",
        agent_id=AGENTS[n % 3],
        judge=judge_info(RuleJudge()),
        attempts=1,
        started_at=finished - timedelta(hours=1),
        finished_at=finished,
    )
    ref = SuiteRef(id=SUITES[n % 2], version="1", digest=suite.digest)
    return made.model_copy(update={"suite": ref})


@dataclass(frozen=True)
class Published:
    client: TestClient
    indices: list[int]  # of result n at position n
    alert: int


@pytest.fixture(scope="module")
def published(shared_client: TestClient, shared_settings: Settings) -> Published:
    key = EnvelopeSigner.from_seed(b"u" * 32)
    token = register_principal(
        shared_client,
        shared_settings.admin_token,
        "auditor:ukas",
        role="auditor",
        jurisdiction=shared_settings.jurisdiction,
        key=key,
    )
    evals = Client(
        str(shared_client.base_url),
        principal="auditor:ukas",
        token=token,
        key=key,
        http=shared_client,
    )
    indices = [evals.publish(result(n)) for n in range(12)]
    alert = DriftAlert(
        agent_id=AGENTS[0] or "",
        baseline_window=(0, 1),
        current_window=(1, 2),
        baseline_n=1,
        current_n=1,
        categories=("a",),
        baseline_distribution=(1.0,),
        current_distribution=(1.0,),
        d=0.0,
        d_raw=0.0,
        p=1.0,
        level=0.01,
        permutations=1,
        alert=False,
        detected_at=DAY0,
    )
    alert_index = evals.publish(alert)
    assert node_of(shared_client).log.wait_for_checkpoint(alert_index + 1, timeout=20)
    return Published(shared_client, indices, alert_index)


def listed(client: TestClient, **params: Any) -> list[int]:
    """Indices over every page, each item proven against its page's checkpoint."""
    vkey = parse_vkey(node_of(client).log_signer.vkey())
    indices: list[int] = []
    while True:
        response = client.get(PATH, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        checkpoint, _, _ = open_checkpoint(page["checkpoint"].encode(), [vkey])
        for item in page["items"]:
            leaf = leaf_hash(canonical_dumps(item["entry"]))
            proof = [base64.b64decode(h) for h in item["proof"]["proof"]]
            verify_inclusion(leaf, item["index"], checkpoint.size, proof, checkpoint.root_hash)
            assert EvalResult.model_validate(item["record"]).issuer == "auditor:ukas"
            indices.append(item["index"])
        if page["next_cursor"] is None:
            return indices
        params = {**params, "cursor": page["next_cursor"]}


def test_every_result_is_listed_in_log_order_and_no_drift_alert(published: Published) -> None:
    assert listed(published.client, limit=5) == published.indices


@pytest.mark.parametrize("agent", [AGENTS[0], AGENTS[1]])
def test_results_filter_by_agent(published: Published, agent: str) -> None:
    wanted = [i for n, i in enumerate(published.indices) if AGENTS[n % 3] == agent]
    assert listed(published.client, agent_id=agent, limit=2) == wanted


def test_results_filter_by_suite_and_since_together(published: Published) -> None:
    since = (DAY0 + timedelta(days=5)).isoformat()  # day 5 itself is included
    wanted = [i for n, i in enumerate(published.indices) if n % 2 == 1 and n >= 5]
    assert listed(published.client, suite="finance-1", since=since) == wanted


def test_a_filter_matching_nothing_lists_nothing(published: Published) -> None:
    assert listed(published.client, suite="no-such-suite") == []


@pytest.mark.parametrize(
    ("params", "code"),
    [({"since": "last week"}, "bad_instant"), ({"cursor": "%%%"}, "bad_cursor")],
)
def test_bad_parameters_are_400(published: Published, params: dict[str, str], code: str) -> None:
    assert_error(published.client.get(PATH, params=params), 400, code)

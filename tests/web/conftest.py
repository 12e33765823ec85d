"""A GB node for the dashboard's page tests, shared by a module, and signed-in browsers.

The red-teaming world (tests/redteam/world.py: a regulator, two operators, a researcher,
an auditor, three agents) plus what the pages show: a committed decision of the model
agent (its rationale for the entitled only), a suspension of the skill agent, a
disclosed TLP:AMBER disclosure affecting both (GB only), a TLP:CLEAR one still
reported (its researcher and the origin's regulators only) and a published re-test
result. Every write goes through the node's real API with real signatures.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from custodes.config import Settings
from custodes.evals.results import RESULT_TYPE, DriftSummary
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.registry.models import KillOrder
from custodes.registry.service import ORDER_TYPE
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from tests.databases import node_settings
from tests.enrol import REGULATOR_KEY
from tests.integration.procs import wait_until
from tests.redteam.world import (
    AUDITOR,
    KEYS,
    MODEL_AGENT,
    REGULATOR,
    SKILL_AGENT,
    World,
    report_body,
    retest_result,
    world_for,
)

__all__ = ["Site", "signed_in", "site"]

MODEL_KEY = EnvelopeSigner.from_seed(bytes([1]) * 32)  # the world's key for MODEL_AGENT
RATIONALE = "the counterparty missed an overdue margin call"
ORDER_ID = "order-web-suspend-1"


@dataclass
class Site:
    world: World
    amber: str  # the disclosed TLP:AMBER disclosure
    reported: str  # the TLP:CLEAR report not yet disclosed
    decision_index: int

    @property
    def app(self):  # type: ignore[no-untyped-def]
        return self.world.http.app  # type: ignore[union-attr]


def _decide(world: World) -> int:
    """The committed decision, and two plain (public) ones a minute before and after."""
    now = datetime.now(UTC)
    opened = sign_committed_decision(
        MODEL_KEY, MODEL_AGENT, "sell 100 ACME", RATIONALE, decided_at=now
    )
    plain = [
        sign_decision(MODEL_KEY, MODEL_AGENT, f"hold #{n}", "a plain record", decided_at=at)
        for n, at in enumerate((now + timedelta(minutes=1), now - timedelta(minutes=1)))
    ]
    items = [opened.to_json(), *(p.to_json() for p in plain)]
    body = canonical_dumps({"entries": items})
    answer = world.http.post(
        "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
    )
    assert answer.status_code in (200, 201), answer.text
    return int(answer.json()["indices"][0])


def _suspend(world: World) -> None:
    order = KillOrder(
        op="suspend",
        order_id=ORDER_ID,
        agent_id=SKILL_AGENT,
        scope="global",
        reason="erratic trading after the prompt change",
        actor=REGULATOR,
        at=datetime.now(UTC),
    )
    envelope = sign_envelope(ORDER_TYPE, order.model_dump_json().encode(), [REGULATOR_KEY])
    answer = world.post(REGULATOR, "/api/v1/kill-orders", envelope.to_json())
    assert answer.status_code == 201, answer.text


def _drifted(world: World, disclosure: str) -> None:
    """A second run of the re-test, 0.42 drift coefficient from the first: an alert."""
    first = retest_result(disclosure, MODEL_AGENT, successes=3)
    drift = DriftSummary(
        baseline_epoch=0,
        baseline_run_id=first.run_id,
        dc=0.42,
        d_beh=0.42,
        p_beh=0.001,
        items=20,
        permutations=999,
        level=0.05,
        alert=True,
    )
    result = retest_result(disclosure, MODEL_AGENT, successes=9).model_copy(
        update={"epoch": 1, "drift": drift}
    )
    envelope = sign_envelope(RESULT_TYPE, result.model_dump_json().encode(), [KEYS[AUDITOR]])
    answer = world.post(AUDITOR, "/api/v1/evals/results", envelope.to_json())
    assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    base = tmp_path_factory.mktemp("web")
    settings: Settings = node_settings(base, f"sqlite:///{base / 'custodes.db'}")
    with world_for(settings) as world:
        index = _decide(world)
        _suspend(world)
        amber = world.disclosed()
        reported = world.reported(report_body(title="Clear report, not yet triaged", tlp="clear"))
        world.retest_result(amber, MODEL_AGENT, successes=3)
        _drifted(world, amber)
        node = world.node
        wait_until(
            "the decision under a checkpoint",
            lambda: node.store.tree_size()[0] >= node.store.sequenced_size(),
            timeout=30,
        )
        yield Site(world, amber, reported, index)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found is not None, html
    return found.group(1)


def signed_in(site: Site, who: str | None) -> TestClient:
    """A browser of its own (own cookie jar) on the site: the public for None, else
    signed in through the real /ui/signin form with ``who``'s API token."""
    browser = TestClient(site.app, raise_server_exceptions=False)
    if who is None:
        return browser
    form = browser.get("/ui/signin")
    assert form.status_code == 200
    answer = browser.post(
        "/ui/signin",
        data={"csrf": _csrf(form.text), "token": site.world.tokens[who], "next": "/ui/"},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return browser

"""Liveness, readiness and the health figures an operator's monitoring polls.

``/healthz`` answers while the process does; ``/readyz`` names every failed check in
the one error shape. The readiness rules are checked as a table over the pure
``readiness_failures``; the API tests check the real node's answers, a tripped alarm
and a node whose threads were never started.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from custodes.api.readiness import (
    STALE_FLOOR_S,
    LogFigures,
    Readiness,
    read_readiness,
    readiness_failures,
)
from custodes.config import Settings
from custodes.node import Node
from tests.api.support import assert_error, node_of

_FIGURES = LogFigures(tree_size=5, sequenced=5, checkpoint_age=3.0, checkpoint_lag=0.0)
READY = Readiness(
    database=None,
    revision="0005",
    head="0005",
    sequencer=True,
    integrator=True,
    alarms=0,
    figures=_FIGURES,
    stale_after=STALE_FLOOR_S,
)


@pytest.mark.parametrize(
    ("state", "failed"),
    [
        pytest.param(READY, set(), id="ready"),
        pytest.param(
            replace(READY, figures=replace(_FIGURES, checkpoint_age=86_400.0)),
            set(),
            id="quiet-log-with-an-old-checkpoint-is-ready",
        ),
        pytest.param(
            replace(READY, figures=replace(_FIGURES, checkpoint_lag=STALE_FLOOR_S - 1)),
            set(),
            id="entries-waiting-within-the-limit",
        ),
        pytest.param(
            replace(READY, figures=replace(_FIGURES, checkpoint_lag=STALE_FLOOR_S + 1)),
            {"checkpoint"},
            id="entries-waiting-too-long",
        ),
        pytest.param(
            replace(READY, database="the disk is full", revision=None, figures=None),
            {"database"},
            id="database-refuses-writes",
        ),
        pytest.param(replace(READY, revision="0004"), {"migrations"}, id="schema-behind"),
        pytest.param(replace(READY, revision=None), {"migrations"}, id="schema-missing"),
        pytest.param(replace(READY, sequencer=False), {"sequencer"}, id="sequencer-stopped"),
        pytest.param(replace(READY, integrator=False), {"integrator"}, id="integrator-stopped"),
        pytest.param(replace(READY, alarms=2), {"integrity"}, id="integrity-alarm"),
        pytest.param(
            replace(READY, sequencer=False, integrator=False, alarms=1),
            {"sequencer", "integrator", "integrity"},
            id="every-failure-named",
        ),
    ],
)
def test_readiness_names_every_failed_check(state: Readiness, failed: set[str]) -> None:
    failures = readiness_failures(state)
    assert set(failures) == failed
    assert all(sentence.strip() for sentence in failures.values())


def test_liveness_answers_without_reading_anything(client: TestClient) -> None:
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_a_running_node_is_ready_at_the_schema_head(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["revision"] == read_readiness(node_of(client)).head


def test_an_integrity_alarm_makes_the_node_unready_but_alive(client: TestClient) -> None:
    node_of(client).alarm.trip("a test stands in for a corrupt tile")
    detail = assert_error(client.get("/readyz"), 503, "not_ready")
    assert set(detail["failed"]) == {"integrity"}
    assert_error(client.get("/api/v1/health"), 503, "integrity_alarm")
    assert client.get("/healthz").status_code == 200


def test_a_node_whose_threads_are_not_running_is_not_ready(settings: Settings) -> None:
    node = Node(settings)  # opened and migrated, never started
    try:
        assert set(readiness_failures(read_readiness(node))) == {"sequencer", "integrator"}
    finally:
        node.close()


def test_the_health_figures_stay_where_they_were(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200, response.text
    body = response.json()
    node = node_of(client)
    assert body["status"] == "ok"
    assert body["origin"] == node.settings.origin
    assert body["tree_size"] == node.store.tree_size()[0]
    assert body["sequenced"] == node.store.sequenced_size()
    assert body["integrity_alarm"] == 0
    assert body["checkpoint_age_seconds"] >= 0

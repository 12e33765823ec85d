"""``/metrics`` in the Prometheus text format counts what really happened on the node.

Every test reads the figures through Prometheus' own parser, before and after real
appends, lease renewals, kill orders and witness refusals, so a series that is named
wrong, never moves or cannot be parsed fails here. Each app has its own registry: two
nodes in one process count apart.
"""

from __future__ import annotations

import time

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from custodes.api import create_app
from custodes.config import Settings, WitnessPeer
from custodes.federation.witnessing import WitnessRequester
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.cosignature import CosignatureSigner
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.leases import lease_request
from tests.api.support import HEAD, decision, node_of, post_entries
from tests.integration.procs import wait_until
from tests.registry.support import World, build_world, client_for, register_agent

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
_WAIT_S = 20.0


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def world(client: TestClient) -> World:
    """The registry's alliance (regulators, operators) on a fresh node (``client``'s)."""
    return build_world(node_of(client))


def test_appends_are_counted_timed_and_reach_the_tree_gauges(
    agent_client: TestClient, agent: EnvelopeSigner
) -> None:
    before = scrape(agent_client)
    assert value(before, "custodes_tree_size") <= HEAD
    response = post_entries(agent_client, {"entries": [decision(agent, n) for n in range(3)]})
    assert response.status_code == 200, response.text
    after = scrape(agent_client)
    assert value(after, "custodes_appended_entries_total") == 3
    assert value(after, "custodes_append_seconds_count") == 1
    assert value(after, "custodes_sequenced") == HEAD + 3
    assert value(after, "custodes_sequencer_queue_depth") == 0

    def checkpointed() -> Samples | None:
        samples = scrape(agent_client)
        return samples if value(samples, "custodes_tree_size") == HEAD + 3 else None

    covered = wait_until("a checkpoint over the appends", checkpointed, _WAIT_S)
    wait_until(
        "the checkpoint's latency to be observed",
        lambda: (
            value(scrape(agent_client), "custodes_checkpoint_seconds_count")
            > value(before, "custodes_checkpoint_seconds_count")
        ),
        _WAIT_S,
    )
    assert value(covered, "custodes_checkpoint_age_seconds") >= 0
    assert value(covered, "custodes_checkpoint_lag_seconds") == 0
    assert value(covered, "custodes_integrity_alarm") == 0


def _lease(client: TestClient, body: bytes) -> httpx.Response:
    return client.post("/api/v1/leases", content=body, headers={"Content-Type": "application/json"})


def test_lease_renewals_are_counted_by_outcome(client: TestClient, world: World) -> None:
    key = EnvelopeSigner.generate()
    agent_id = register_agent(world, key)
    body = canonical_dumps(lease_request(key, agent_id, time.time()).to_json())
    assert _lease(client, body).status_code == 201
    assert _lease(client, body).status_code == 403  # the same request, replayed
    samples = scrape(client)
    assert value(samples, "custodes_lease_renewals_total", outcome="issued") == 1
    assert value(samples, "custodes_lease_renewals_total", outcome="replayed_request") == 1


def test_kill_orders_are_counted_by_action(client: TestClient, world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    regulator = client_for(client, world.home)
    suspended = regulator.order("suspend", agent_id, "erratic trading", order_id="metrics-s-1")
    regulator.order("reinstate", agent_id, "fixed", lifts=suspended["order_id"])
    samples = scrape(client)
    assert value(samples, "custodes_kill_orders_total", action="suspend") == 1
    assert value(samples, "custodes_kill_orders_total", action="reinstate") == 1
    assert value(samples, "custodes_kill_orders_total", action="revoke") == 0


def test_witness_failures_are_counted_per_witness(client: TestClient) -> None:
    node = node_of(client)
    down = CosignatureSigner.generate("down.test/witness")
    refusing = httpx.MockTransport(lambda _request: httpx.Response(503))
    peer = WitnessPeer(url="http://127.0.0.1:9", vkey=down.vkey())
    requester = WitnessRequester(node, [peer], client=httpx.Client(transport=refusing))
    newest = node.store.checkpoint()
    assert newest is not None
    try:
        assert requester.request_all(newest) == 0
        assert requester.request_all(newest) == 0
    finally:
        requester.stop()
    samples = scrape(client)
    assert value(samples, "custodes_witness_failures_total", witness="down.test/witness") == 2


def test_an_integrity_alarm_shows_in_the_gauge(client: TestClient) -> None:
    assert value(scrape(client), "custodes_integrity_alarm") == 0
    node_of(client).alarm.trip("a test stands in for a corrupt tile")
    assert value(scrape(client), "custodes_integrity_alarm") == 1


def test_two_nodes_in_one_process_count_apart(
    agent_client: TestClient, agent: EnvelopeSigner, settings: Settings
) -> None:
    other = settings.model_copy(
        update={"data_dir": settings.data_dir.parent / "other", "database_url": None}
    )
    with TestClient(create_app(other)) as second:
        response = post_entries(agent_client, {"entries": [decision(agent, 1)]})
        assert response.status_code == 200, response.text
        assert value(scrape(agent_client), "custodes_appended_entries_total") == 1
        assert value(scrape(second), "custodes_appended_entries_total") == 0

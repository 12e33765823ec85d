"""The kill-switch test API on both databases: who may run one, what a failed test logs,
and that refusals write nothing. (A passing test with a real guard:
tests/integration/test_conformance.py; the guard's side: tests/sdk/test_guard_gate.py.)"""

from __future__ import annotations

from fastapi.testclient import TestClient

from custodes.ledger.dsse import EnvelopeSigner
from tests.api.support import ADMIN, AGENT, enrol_agent, node_of
from tests.enrol import REGULATOR_KEY
from tests.registry.support import add_actor

_PATH = "/api/v1/audits/killswitch-tests"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_offline_agent_fails_and_the_result_is_logged(
    client: TestClient, agent: EnvelopeSigner
) -> None:
    enrol_agent(client, agent)
    node = node_of(client)
    home = add_actor(node, "regulator:zz", "regulator", "ZZ", REGULATOR_KEY)
    size = node.store.sequenced_size()
    response = client.post(
        _PATH, json={"agent_id": AGENT, "deadline_ms": 100}, headers=_bearer(home.token)
    )
    assert response.status_code == 201, response.text
    answer = response.json()
    assert answer["index"] == size
    record = answer["record"]
    assert (record["passed"], record["halt_observed"], record["halt_entry"]) == (
        False,
        False,
        None,
    )
    assert record["actor"] == f"node:{node.settings.origin}"
    listed = client.get(_PATH, params={"agent_id": AGENT}).json()
    assert listed == [answer]
    by_admin = client.post(_PATH, json={"agent_id": AGENT, "deadline_ms": 50}, headers=ADMIN)
    assert by_admin.status_code == 201, by_admin.text
    assert [r["index"] for r in client.get(_PATH).json()] == [size + 1, size]


def test_refusals_write_nothing(client: TestClient, agent: EnvelopeSigner) -> None:
    enrol_agent(client, agent)
    node = node_of(client)
    home = add_actor(node, "regulator:zz", "regulator", "ZZ", REGULATOR_KEY)
    host = add_actor(node, "regulator:fr", "regulator", "FR", EnvelopeSigner.from_seed(b"f" * 32))
    size = node.store.sequenced_size()
    cases = [
        ({}, {"agent_id": AGENT}, 401),
        (_bearer(host.token), {"agent_id": AGENT}, 403),
        (_bearer(home.token), {"agent_id": "urn:custodes:zz:agent:nobody"}, 404),
        (_bearer(home.token), {"agent_id": AGENT, "deadline_ms": 60_001}, 422),
        (_bearer(home.token), {"agent_id": AGENT, "extra": 1}, 422),
    ]
    for headers, body, status in cases:
        response = client.post(_PATH, json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert response.json()["error"]["code"], response.text
    not_json = client.post(_PATH, content=b"{", headers=_bearer(home.token))
    assert not_json.status_code == 400
    assert client.get(_PATH, params={"agent_id": "urn:custodes:zz:agent:nobody"}).status_code == 404
    assert node.store.sequenced_size() == size

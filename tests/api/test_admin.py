"""Signer registration with the admin token: refusals write nothing, success is logged.

A plain signer is not an agent: since the registry, only keys of registered agents may
record decisions (design note 0004), so these tests enrol agents through the registry.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.config import DEV_ADMIN_TOKEN
from custodes.ledger.dsse import EnvelopeSigner, key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.payloads import SIGNER_TYPE
from custodes.sdk.bootstrap import bootstrap, enrol_agent
from tests.api.support import (
    ADMIN,
    AGENT,
    assert_error,
    decision,
    node_of,
    post_entries,
    register,
    snapshot,
)

NEWCOMER = EnvelopeSigner.from_seed(bytes(range(200, 232)))


def newcomer_body(**fields: Any) -> dict[str, Any]:
    return {"name": "agent-new", "public_key": base64.b64encode(NEWCOMER.public_key).decode()} | (
        fields
    )


AUTH_FAILURES = [
    pytest.param({}, 401, "missing_token", id="no-header"),
    pytest.param(
        {"Authorization": f"Basic {DEV_ADMIN_TOKEN}"}, 401, "missing_token", id="not-bearer"
    ),
    pytest.param({"Authorization": "Bearer "}, 401, "missing_token", id="empty-token"),
    pytest.param({"Authorization": "Bearer not-the-token"}, 403, "bad_token", id="wrong-token"),
    pytest.param(
        {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}x"}, 403, "bad_token", id="token-prefix"
    ),
]


@pytest.mark.parametrize(("headers", "status", "code"), AUTH_FAILURES)
def test_registration_needs_the_admin_token(
    shared_client: TestClient, headers: dict[str, str], status: int, code: str
) -> None:
    before = snapshot(shared_client)
    response = shared_client.post("/api/v1/admin/signers", json=newcomer_body(), headers=headers)
    assert_error(response, status, code)
    assert snapshot(shared_client) == before


BAD_BODIES = [
    pytest.param(newcomer_body(public_key="not base64!"), 400, "bad_public_key", id="not-base64"),
    pytest.param(
        newcomer_body(public_key=base64.b64encode(bytes(31)).decode()),
        400,
        "bad_public_key",
        id="31-bytes",
    ),
    pytest.param(
        newcomer_body(public_key=base64.b64encode(bytes(33)).decode()),
        400,
        "bad_public_key",
        id="33-bytes",
    ),
    pytest.param(newcomer_body(public_key=""), 400, "bad_public_key", id="empty-key"),
    pytest.param(newcomer_body(name=""), 422, "invalid_request", id="empty-name"),
    pytest.param(newcomer_body(name="n" * 257), 422, "invalid_request", id="long-name"),
    pytest.param({"name": "agent-new"}, 422, "invalid_request", id="no-key"),
    pytest.param([], 422, "invalid_request", id="not-an-object"),
]


@pytest.mark.parametrize(("body", "status", "code"), BAD_BODIES)
def test_bad_registration_is_refused(
    shared_client: TestClient, body: Any, status: int, code: str
) -> None:
    before = snapshot(shared_client)
    response = shared_client.post("/api/v1/admin/signers", json=body, headers=ADMIN)
    assert_error(response, status, code)
    assert snapshot(shared_client) == before


@pytest.mark.parametrize("name", ["agent-1", "another-name"], ids=["same-name", "other-name"])
def test_registering_an_active_key_again_is_409(
    shared_client: TestClient, shared_agent: EnvelopeSigner, name: str
) -> None:
    before = snapshot(shared_client)
    detail = assert_error(
        register(shared_client, name, shared_agent.public_key), 409, "signer_exists"
    )
    assert detail == {}
    assert snapshot(shared_client) == before
    fresh = decision(shared_agent, rationale=f"after registering as {name}")  # not a replay
    assert post_entries(shared_client, fresh).status_code == 200


def test_registration_is_a_logged_entry_signed_by_the_node(client: TestClient) -> None:
    node = node_of(client)
    before = snapshot(client)
    response = client.post("/api/v1/admin/signers", json=newcomer_body(), headers=ADMIN)
    assert response.status_code == 201, response.text
    index = before.sequenced
    assert response.json() == {"keyid": NEWCOMER.keyid, "name": "agent-new", "index": index}
    assert node.store.sequenced_size() == index + 1

    entry = client.get(f"/api/v1/entries/{index}").json()["entry"]
    envelope = parse_envelope(entry)
    assert envelope.payload_type == SIGNER_TYPE
    assert orjson.loads(envelope.payload) == {
        "v": 1,
        "name": "agent-new",
        "keyid": NEWCOMER.keyid,
        "public_key": base64.b64encode(NEWCOMER.public_key).decode(),
        "status": "active",
    }
    node_key = node.entry_signer.public_key
    assert verify_envelope(envelope, {key_thumbprint(node_key): node_key}.get) == [
        node.entry_signer.keyid
    ]
    assert client.get("/api/v1/signers").json() == [
        *before.signers,
        {
            "keyid": NEWCOMER.keyid,
            "name": "agent-new",
            "public_key": base64.b64encode(NEWCOMER.public_key).decode(),
            "status": "active",
            "entry_index": index,
        },
    ]


def test_a_plain_signer_key_cannot_append_decisions(client: TestClient) -> None:
    """Decisions come only from registered agents; an admin-registered key is not one."""
    key = EnvelopeSigner.from_seed(b"agent-new".ljust(32, b"."))
    assert_error(post_entries(client, decision(key, agent="agent-new")), 403, "unknown_signer")
    body = {"name": "agent-new", "public_key": base64.b64encode(key.public_key).decode()}
    assert client.post("/api/v1/admin/signers", json=body, headers=ADMIN).status_code == 201
    before = snapshot(client)
    assert_error(post_entries(client, decision(key, agent="agent-new")), 403, "unknown_agent")
    assert snapshot(client) == before


@pytest.mark.parametrize(
    "name", [AGENT, "urn:custodes:zz:agent:not-yet", "operator:acme", "regulator:zz", "node:x"]
)
def test_a_plain_key_cannot_take_a_name_the_registry_gives(
    shared_client: TestClient, shared_agent: EnvelopeSigner, name: str
) -> None:
    """Under a registered agent's id (or one it may get later) an admin key would sign
    that agent's decisions outside its operator's control and its key history."""
    rogue = EnvelopeSigner.from_seed(name.encode().ljust(32, b"!")[:32])
    before = snapshot(shared_client)
    assert_error(register(shared_client, name, rogue.public_key), 422, "registry_name")
    assert snapshot(shared_client) == before
    assert_error(post_entries(shared_client, decision(rogue)), 403, "unknown_signer")


def test_an_agent_enrolled_through_the_registry_api_can_append_its_own_decisions(
    client: TestClient,
) -> None:
    agent_id = "urn:custodes:zz:agent:agent-new"
    assert_error(post_entries(client, decision(NEWCOMER, agent=agent_id)), 403, "unknown_signer")
    authorities = bootstrap(str(client.base_url), DEV_ADMIN_TOKEN, "ZZ", client=client)
    assert enrol_agent(authorities, NEWCOMER, "agent-new") == agent_id
    before = snapshot(client)
    response = post_entries(client, decision(NEWCOMER, agent=agent_id))
    assert response.status_code == 200, response.text
    assert response.json() == {"indices": [before.sequenced]}


def test_first_entry_registers_the_nodes_own_key(client: TestClient) -> None:
    node = node_of(client)
    envelope = parse_envelope(client.get("/api/v1/entries/0").json()["entry"])
    assert envelope.payload_type == SIGNER_TYPE
    record = orjson.loads(envelope.payload)
    assert (record["name"], record["keyid"]) == (
        f"node:{node.settings.origin}",
        node.entry_signer.keyid,
    )
    assert client.get("/api/v1/node").json()["node_entry_keyid"] == node.entry_signer.keyid

"""Forgeable keys (issue 13, item 1): weak Ed25519 keys never enter, forgeries never verify.

Under a public key of small order (the identity point, say) the "signature" ``R =
identity, S = 0`` verifies over every message with OpenSSL's verifier, so anyone could
sign as that agent and its operator could disown anything it logged. Every way a key
enters the node is tried over HTTP here (agent registration, rotation, principals,
admin signers, AgentCard keys): each answers 400 ``weak_public_key`` in the one error
shape and writes nothing. A weak key already in the database (from before the check)
still signs nothing.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import insert

from custodes.config import DEV_ADMIN_TOKEN
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    Signature,
    key_thumbprint,
    sign_envelope,
)
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.store import signers
from custodes.registry.agentcard import (
    AgentCardError,
    jwk_from_public_key,
    sign_agent_card,
    verify_card_signatures,
)
from custodes.registry.models import AgentRegister, AgentRotateKey
from custodes.registry.service import REGISTRY_TYPE
from custodes.sdk.decisions import sign_decision
from custodes.store.db import write_tx
from tests.registry.support import (
    Actor,
    World,
    agent_record,
    fresh_slug,
    now,
    register_agent,
    registry_state,
)

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
IDENTITY = bytes([1]) + bytes(31)
WEAK = [
    pytest.param(IDENTITY, id="identity"),
    pytest.param(
        bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
        id="order-8",
    ),
    pytest.param(IDENTITY[:31] + b"\x80", id="identity-negative-zero"),
    pytest.param(((2**255 - 19) + 1).to_bytes(32, "little"), id="identity-y-above-p"),
]
CARD = json.loads((Path(__file__).parent / "fixtures" / "georoute-agent-card.json").read_text())


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _forged(s: int) -> bytes:
    return IDENTITY + s.to_bytes(32, "little")


def _post_change(client: TestClient, actor: Actor, change: Any) -> Any:
    payload = change.model_dump_json(exclude_none=True).encode()
    body = canonical_dumps(sign_envelope(REGISTRY_TYPE, payload, [actor.key]).to_json())
    headers = {"Authorization": f"Bearer {actor.token}", "Content-Type": "application/json"}
    return client.post("/api/v1/registry/entries", content=body, headers=headers)


def _assert_weak_key_refused(response: Any) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "detail"}
    assert error["code"] == "weak_public_key"
    assert "small" in error["message"] or "canonical" in error["message"]


@pytest.mark.parametrize("weak", WEAK)
def test_an_agent_with_a_weak_key_is_refused_and_nothing_is_logged(
    app_client: TestClient, app_world: World, weak: bytes
) -> None:
    before = registry_state(app_world.node)
    acme = app_world.acme
    change = AgentRegister(
        actor=acme.id, at=now(), agent=agent_record(fresh_slug()), keys=(_b64(weak),)
    )
    _assert_weak_key_refused(_post_change(app_client, acme, change))
    assert registry_state(app_world.node) == before


def test_a_weak_key_beside_a_good_one_is_refused_too(
    app_client: TestClient, app_world: World
) -> None:
    before = registry_state(app_world.node)
    acme = app_world.acme
    keys = (_b64(EnvelopeSigner.generate().public_key), _b64(IDENTITY))
    change = AgentRegister(actor=acme.id, at=now(), agent=agent_record(fresh_slug()), keys=keys)
    _assert_weak_key_refused(_post_change(app_client, acme, change))
    assert registry_state(app_world.node) == before


@pytest.mark.parametrize("weak", WEAK)
def test_a_rotation_to_a_weak_key_is_refused_and_nothing_is_logged(
    app_client: TestClient, app_world: World, weak: bytes
) -> None:
    agent_id = register_agent(app_world, EnvelopeSigner.generate())
    before = registry_state(app_world.node)
    acme = app_world.acme
    change = AgentRotateKey(actor=acme.id, at=now(), agent_id=agent_id, add=(_b64(weak),))
    _assert_weak_key_refused(_post_change(app_client, acme, change))
    assert registry_state(app_world.node) == before


@pytest.mark.parametrize("weak", WEAK)
def test_a_principal_with_a_weak_key_is_refused(
    app_client: TestClient, app_world: World, weak: bytes
) -> None:
    before = registry_state(app_world.node)
    body = {
        "id": f"operator:{fresh_slug('weak')}",
        "role": "operator",
        "jurisdiction": "ZZ",
        "name": "Weak Ltd",
        "public_key": _b64(weak),
    }
    response = app_client.post("/api/v1/admin/principals", json=body, headers=ADMIN)
    _assert_weak_key_refused(response)
    assert registry_state(app_world.node) == before


@pytest.mark.parametrize("weak", WEAK)
def test_an_admin_signer_with_a_weak_key_is_refused(
    app_client: TestClient, app_world: World, weak: bytes
) -> None:
    before = registry_state(app_world.node)
    body = {"name": "weak-signer", "public_key": _b64(weak)}
    response = app_client.post("/api/v1/admin/signers", json=body, headers=ADMIN)
    _assert_weak_key_refused(response)
    assert registry_state(app_world.node) == before


@pytest.mark.parametrize("s", [0, 1])
def test_a_forged_decision_under_a_weak_key_already_stored_is_refused(
    app_client: TestClient, app_world: World, s: int
) -> None:
    # A database from before the check may hold a weak key: it must still sign nothing.
    agent_id = register_agent(app_world, EnvelopeSigner.generate())
    keyid = key_thumbprint(IDENTITY)
    with write_tx(app_world.node.engine) as conn:
        conn.execute(
            insert(signers).values(
                keyid=keyid, name=agent_id, public_key=IDENTITY, status="active", entry_index=0
            )
        )
    try:
        honest = sign_decision(EnvelopeSigner.generate(), agent_id, "transfer", "forged")
        forged = Envelope(DECISION_TYPE, honest.payload, (Signature(keyid, _forged(s)),))
        before = app_world.node.store.sequenced_size()
        response = app_client.post(
            "/api/v1/entries",
            content=canonical_dumps(forged.to_json()),
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["code"] == "bad_signature"
        assert app_world.node.store.sequenced_size() == before
    finally:
        with write_tx(app_world.node.engine) as conn:
            conn.execute(signers.delete().where(signers.c.keyid == keyid))
        app_world.node.signers.forget(keyid)


def test_an_agent_card_signed_under_a_weak_jwk_is_refused() -> None:
    # Sign with an honest key, then swap in a forged signature (R = identity, S = 0),
    # which verifies under the identity key whatever the card says.
    honest = sign_agent_card(CARD, ed25519.Ed25519PrivateKey.generate(), "weak", "EdDSA")
    honest["signatures"][0]["signature"] = _b64url(_forged(0))
    weak_jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64url(IDENTITY), "alg": "EdDSA"}
    with pytest.raises(AgentCardError) as caught:
        verify_card_signatures(honest, {"weak": weak_jwk})
    assert (caught.value.status, caught.value.code) == (400, "weak_public_key")


def test_an_agent_card_signed_by_an_honest_key_still_verifies() -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    card = sign_agent_card(CARD, private, "good", "EdDSA")
    trusted = {"good": jwk_from_public_key(private.public_key(), "good", alg="EdDSA")}
    assert verify_card_signatures(card, trusted) == ["good"]

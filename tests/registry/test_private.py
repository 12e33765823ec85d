"""Private fields: personal data stays out of the public log, and is read only by those
entitled to it (DESIGN.md 4.1, docs/design/0006-private-fields.md).

The commitment's construction is checked on its own; the rest goes through the node's
HTTP API, as an anonymous reader of the log and as each kind of principal would.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete

from custodes.errors import BadRequest
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.tiles import TILE_WIDTH, decode_entry_bundle, entries_path
from custodes.registry.models import AgentChanges, Contact, OperatorRecord
from custodes.registry.private import MIN_SALT_BYTES, Opening, commit, seal
from custodes.registry.store import private_fields
from custodes.store.db import write_tx
from tests.registry.support import HOME, World, agent_record, client_for, fresh_slug

# Personal data unlikely to appear anywhere by chance.
PERSON = Contact(
    name="Zebedee Quimby-Xanthos", email="zq.x@private.example", phone="+44 7700 917345"
)
ADDRESS = "42 Hidden Mews, Nowhereton"
SECRETS = (PERSON.name, PERSON.email, PERSON.phone, ADDRESS, "Quimby", "7700 917345")


# --- the commitment ----------------------------------------------------------------------


def test_a_commitment_is_sha256_over_the_tagged_salt_and_canonical_fields() -> None:
    salt = base64.urlsafe_b64encode(bytes(range(16))).rstrip(b"=").decode()
    fields = {"contact": PERSON.model_dump()}
    expected = hashlib.sha256(canonical_dumps(["custodes.private.v1", salt, fields])).hexdigest()
    assert commit(Opening(salt=salt, fields=fields)) == f"sha256:{expected}"


def test_sealing_moves_the_private_fields_out_with_a_fresh_salt_each_time() -> None:
    record = OperatorRecord(
        id="operator:sealed",
        legal_name="Sealed Ltd",
        kind="provider",
        jurisdiction=HOME,
        address=ADDRESS,
        contact=PERSON,
    )
    first, opening = seal(record)
    second, again = seal(record)
    assert opening is not None
    assert again is not None
    assert (first.address, first.contact) == (None, None)
    assert first.private == commit(opening) != second.private  # equal data, unlinkable
    assert len(base64.urlsafe_b64decode(opening.salt + "==")) >= MIN_SALT_BYTES
    assert opening.fields == {"address": ADDRESS, "contact": PERSON.model_dump()}
    assert seal(AgentChanges(version="2")) == (AgentChanges(version="2"), None)


@pytest.mark.parametrize(
    "salt",
    [pytest.param("A" * 20 + "==", id="120-bits"), pytest.param("!" * 22, id="not-base64url")],
)
def test_a_salt_under_128_bits_is_refused(salt: str) -> None:
    with pytest.raises(BadRequest) as caught:
        commit(Opening(salt=salt, fields={"contact": PERSON.model_dump()}))
    assert caught.value.code == "bad_salt"


# --- nothing personal in the public log ---------------------------------------------------


def _public_log(client: TestClient) -> list[bytes]:
    """Every entry as /api/v1/entries/{i} serves it, and every entry tile's bytes."""
    node = client.app.state.node  # type: ignore[attr-defined]
    node.log.integrate()
    size = node.store.sequenced_size()
    served = [client.get(f"/api/v1/entries/{i}").content for i in range(size)]
    tiles = []
    for n in range(-(-size // TILE_WIDTH)):
        width = min(TILE_WIDTH, size - n * TILE_WIDTH)
        response = client.get(f"/log/{entries_path(n, width)}")
        assert response.status_code == 200, response.text
        tiles.append(response.content)
        served.extend(decode_entry_bundle(response.content))
    return served + tiles


def _decoded(blob: bytes) -> bytes:
    """``blob`` with every base64 payload in it decoded too, so a payload cannot hide."""
    found = [blob]
    for part in blob.split(b'"payload":"')[1:]:
        found.append(base64.b64decode(part.split(b'"', 1)[0]))
    return b"\n".join(found)


def test_registered_contacts_never_reach_the_public_log(
    app_client: TestClient, app_world: World
) -> None:
    home = client_for(app_client, app_world.home)
    oid = f"operator:{fresh_slug('private')}"
    record = OperatorRecord(
        id=oid,
        legal_name="Private Ltd",
        kind="provider",
        jurisdiction=HOME,
        address=ADDRESS,
        contact=PERSON,
    )
    home.register_operator(record)
    acme = client_for(app_client, app_world.acme)
    agent = agent_record(fresh_slug("private"), contact=PERSON)
    acme.register_agent(agent, [EnvelopeSigner.generate().public_key])
    acme.update_agent(
        agent.id, AgentChanges(contact=PERSON.model_copy(update={"phone": "+1 555 0100"}))
    )
    everything = b"\n".join(_decoded(blob) for blob in _public_log(app_client))
    assert b"private.example" not in everything
    for secret in (*SECRETS, "+1 555 0100"):
        assert secret.encode() not in everything, secret
    # The entitled still read them back: the operator from its home regulator, the
    # agent's current contact from its operator.
    assert home.operator(oid)["record"]["contact"] == PERSON.model_dump()
    assert home.operator(oid)["record"]["address"] == ADDRESS
    assert acme.agent(agent.id)["record"]["contact"]["phone"] == "+1 555 0100"
    first = acme.agent(agent.id, as_of=acme.agent(agent.id)["entry_index"] - 1)
    assert first["record"]["contact"] == PERSON.model_dump()


def test_another_operators_token_reads_none_of_an_agents_private_fields(
    app_client: TestClient, app_world: World
) -> None:
    acme, globex = client_for(app_client, app_world.acme), client_for(app_client, app_world.globex)
    agent = agent_record(fresh_slug("private"), contact=PERSON, model="model:secret-1")
    acme.register_agent(agent, [EnvelopeSigner.generate().public_key])
    seen = globex.agent(agent.id)
    assert "contact" not in seen["record"]
    assert "model" not in seen["record"]
    assert seen["keys"] == []
    assert "contact" not in globex.operator("operator:acme")["record"]
    listed = app_client.get(
        "/api/v1/registry/agents",
        params={"operator": "operator:acme", "limit": 200},
        headers={"Authorization": f"Bearer {app_world.globex.token}"},
    ).json()["items"]
    mine = next(item for item in listed if item["record"]["id"] == agent.id)
    assert "model" not in mine["record"]
    assert "contact" not in mine["record"]
    assert acme.agent(agent.id)["record"]["contact"] == PERSON.model_dump()


def test_erasing_the_clear_text_keeps_the_record_and_its_proof(
    app_client: TestClient, app_world: World
) -> None:
    acme = client_for(app_client, app_world.acme)
    agent = agent_record(fresh_slug("erased"), contact=PERSON)
    acme.register_agent(agent, [EnvelopeSigner.generate().public_key])
    node = app_world.node
    node.log.integrate()
    with write_tx(node.engine) as conn:
        conn.execute(delete(private_fields).where(private_fields.c.record_id == agent.id))
    answer = acme.agent(agent.id)
    assert "contact" not in answer["record"]
    assert answer["record"]["private"].startswith("sha256:")
    assert answer["proof"] is not None

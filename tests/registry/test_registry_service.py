"""RegistryService on SQLite and PostgreSQL: signed changes by their actors, under the rules.

Every refusal is checked for its status and code, and for having written nothing: the
log's length and every registry table are exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, sign_envelope, verify_envelope
from custodes.registry.agentcard import jwk_from_public_key, sign_agent_card
from custodes.registry.models import (
    AgentChanges,
    AgentRecord,
    AgentRegister,
    AgentRotateKey,
    AgentUpdate,
    Contact,
    ModelRecord,
    ModelRegister,
    ModelRetire,
    ModelUpdate,
    OperatorRegister,
    OperatorUpdate,
    Skill,
)
from custodes.registry.private import request_body, seal_change
from custodes.registry.queries import NODE, AgentFilter
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE
from custodes.store.db import read_tx
from tests.registry.support import (
    CONTACT,
    HOME,
    HOST,
    OTHER,
    Actor,
    World,
    add_actor,
    agent_record,
    b64,
    decision,
    fresh_slug,
    now,
    operator_record,
    order,
    register_agent,
    registry_state,
    submit,
)

CARD = json.loads((Path(__file__).parent / "fixtures" / "georoute-agent-card.json").read_text())


def opened(record: dict[str, Any]) -> dict[str, Any]:
    """A record read with its private fields, less the commitment the log holds instead."""
    assert record.get("private", "").startswith("sha256:")
    return {k: v for k, v in record.items() if k != "private"}


def _entry(world: World, index: int) -> Any:
    with read_tx(world.node.engine) as conn:
        return parse_envelope(orjson.loads(world.node.store.entry_data(conn, index, index + 1)[0]))


def _signed_by(envelope: Any, key: EnvelopeSigner) -> bool:
    return verify_envelope(envelope, {key.keyid: key.public_key}.get) == [key.keyid]


# --- what the rules allow -------------------------------------------------------------


def test_home_regulator_registers_an_operator(world: World) -> None:
    record = operator_record(f"operator:{fresh_slug('initech')}")
    change = OperatorRegister(actor=world.home.id, at=now(), operator=record)
    index = submit(world.node, world.home, change)
    answer = world.node.queries.operator(record.id, reader=NODE)
    assert opened(answer["record"]) == record.model_dump(mode="json", exclude_none=True)
    assert answer["entry_index"] == index
    envelope = _entry(world, index)
    assert envelope.payload_type == REGISTRY_TYPE
    assert _signed_by(envelope, world.home.key)
    assert orjson.loads(envelope.payload)["op"] == "operator.register"


def test_an_operator_updates_its_own_record(world: World) -> None:
    moved = operator_record("operator:globex").model_copy(update={"address": "2 New Street"})
    index = submit(
        world.node, world.globex, OperatorUpdate(actor=world.globex.id, at=now(), operator=moved)
    )
    answer = world.node.queries.operator("operator:globex", reader=NODE)
    assert (answer["record"]["address"], answer["entry_index"]) == ("2 New Street", index)


def test_own_operator_registers_an_agent_that_can_then_record_decisions(world: World) -> None:
    key = EnvelopeSigner.generate()
    record = agent_record(fresh_slug(), operating_jurisdictions=(HOST,), contact=CONTACT)
    index = submit(
        world.node,
        world.acme,
        AgentRegister(actor=world.acme.id, at=now(), agent=record, keys=(b64(key),)),
    )
    answer = world.node.queries.agent(record.id, reader=NODE)
    assert opened(answer["record"]) == record.model_dump(mode="json", exclude_none=True)
    assert (answer["status"], answer["suspended_in"], answer["orders"]) == ("active", [], [])
    assert answer["entry_index"] == index
    assert answer["keys"] == [
        {"keyid": key.keyid, "status": "active", "added_index": index, "public_key": b64(key)}
    ]
    assert _signed_by(_entry(world, index), world.acme.key)
    appended = world.node.log.append([decision(key, record.id)])
    assert appended == [index + 1]


def test_an_update_changes_the_record_and_keeps_the_old_version(world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    registered = world.node.queries.agent(agent_id, reader=NODE)["entry_index"]
    changes = AgentChanges(version="2.0", operating_jurisdictions=(HOST,))
    index = submit(
        world.node,
        world.home,  # territories are the home regulator's to set
        AgentUpdate(actor=world.home.id, at=now(), agent_id=agent_id, changes=changes),
    )
    current = world.node.queries.agent(agent_id, reader=NODE)
    assert current["entry_index"] == index
    assert current["record"]["version"] == "2.0"
    assert current["record"]["operating_jurisdictions"] == [HOST]
    assert current["record"]["intended_purpose"] == "automated trading within a mandate"
    before = world.node.queries.agent(agent_id, as_of=index - 1, reader=NODE)
    assert before["entry_index"] == registered
    assert (before["record"]["version"], before["record"]["operating_jurisdictions"]) == ("1.0", [])


def test_an_update_of_nested_fields_is_applied(world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    changes = AgentChanges(skills=(Skill(id="fx-hedging", name="FX hedging"),), contact=CONTACT)
    update = AgentUpdate(actor=world.acme.id, at=now(), agent_id=agent_id, changes=changes)
    index = submit(world.node, world.acme, update)
    record = world.node.queries.agent(agent_id, reader=NODE)["record"]
    assert record["skills"] == [{"id": "fx-hedging", "name": "FX hedging", "tags": []}]
    assert record["contact"] == CONTACT.model_dump()
    found = world.node.queries.agents(AgentFilter(skill="fx-hedging"), reader=NODE)["items"]
    assert [(a["record"]["id"], a["entry_index"]) for a in found] == [(agent_id, index)]


def test_the_home_regulator_may_change_an_agents_record(world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    changes = AgentChanges(risk_tier="critical")
    index = submit(
        world.node,
        world.home,
        AgentUpdate(actor=world.home.id, at=now(), agent_id=agent_id, changes=changes),
    )
    answer = world.node.queries.agent(agent_id, reader=NODE)
    assert (answer["record"]["risk_tier"], answer["entry_index"]) == ("critical", index)


def _rotate(world: World, agent_id: str, add: EnvelopeSigner, retire: EnvelopeSigner) -> int:
    change = AgentRotateKey(
        actor=world.acme.id, at=now(), agent_id=agent_id, add=(b64(add),), retire=(retire.keyid,)
    )
    return submit(world.node, world.acme, change)


def test_rotation_retires_the_old_key_and_activates_the_new(world: World) -> None:
    old, new = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    agent_id = register_agent(world, old)
    added = world.node.queries.agent(agent_id, reader=NODE)["entry_index"]
    rotated = _rotate(world, agent_id, add=new, retire=old)

    before = world.node.store.sequenced_size()
    with pytest.raises(CustodesError) as caught:
        world.node.log.append([decision(old, agent_id)])
    assert (caught.value.status, caught.value.code) == (403, "unknown_signer")
    assert world.node.store.sequenced_size() == before
    assert world.node.log.append([decision(new, agent_id)]) == [before]

    keys = {k["keyid"]: k for k in world.node.queries.agent(agent_id, reader=NODE)["keys"]}
    assert keys == {
        old.keyid: {
            "keyid": old.keyid,
            "status": "retired",
            "added_index": added,
            "retired_index": rotated,
            "public_key": b64(old),
        },
        new.keyid: {
            "keyid": new.keyid,
            "status": "active",
            "added_index": rotated,
            "public_key": b64(new),
        },
    }
    then = world.node.queries.agent(agent_id, as_of=rotated - 1, reader=NODE)["keys"]
    assert then == [
        {"keyid": old.keyid, "status": "active", "added_index": added, "public_key": b64(old)}
    ]


def test_a_retired_key_that_was_in_use_can_no_longer_sign(world: World) -> None:
    old, new = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    agent_id = register_agent(world, old)
    world.node.log.append([decision(old, agent_id, 1)])  # the agent at work: its key is in use
    _rotate(world, agent_id, add=new, retire=old)
    before = world.node.store.sequenced_size()
    with pytest.raises(CustodesError) as caught:
        world.node.log.append([decision(old, agent_id, 2)])
    assert (caught.value.status, caught.value.code) == (403, "unknown_signer")
    assert world.node.store.sequenced_size() == before


def test_models_are_registered_once(world: World) -> None:
    model = ModelRecord(
        id=f"model:{fresh_slug('m')}",
        provider="Example Labs",
        name="Example",
        version="3",
        digest="sha256:" + "ab" * 32,
        training_compute_flop=1e24,
    )
    index = submit(
        world.node, world.acme, ModelRegister(actor=world.acme.id, at=now(), model=model)
    )
    assert world.node.queries.model(model.id) == {
        "record": model.model_dump(mode="json", exclude_none=True),
        "entry_index": index,
        "as_of": None,
        "holder": world.acme.id,
        "status": "active",
    }
    state = registry_state(world.node)
    with pytest.raises(CustodesError) as caught:
        submit(world.node, world.home, ModelRegister(actor=world.home.id, at=now(), model=model))
    assert (caught.value.status, caught.value.code) == (409, "model_exists")
    assert registry_state(world.node) == state


def _card_keys() -> tuple[ed25519.Ed25519PrivateKey, dict[str, Any]]:
    private = ed25519.Ed25519PrivateKey.generate()
    return private, {
        "provider-1": jwk_from_public_key(private.public_key(), "provider-1", alg="EdDSA")
    }


def test_a_verified_agent_card_fills_skills_and_interfaces(world: World) -> None:
    private, trusted = _card_keys()
    card = sign_agent_card(CARD, private, "provider-1", "EdDSA")
    record = agent_record(fresh_slug())
    change = AgentRegister(
        actor=world.acme.id,
        at=now(),
        agent=record,
        keys=(b64(EnvelopeSigner.generate()),),
        agent_card=card,
        agent_card_keys=trusted,
    )
    submit(world.node, world.acme, change)
    stored = world.node.queries.agent(record.id, reader=NODE)["record"]
    assert [s["id"] for s in stored["skills"]] == [s["id"] for s in CARD["skills"]]
    assert [i["url"] for i in stored["interfaces"]] == [
        i["url"] for i in CARD["supportedInterfaces"]
    ]


# --- what the rules refuse, writing nothing ----------------------------------------------


@dataclass(frozen=True)
class Scene:
    """The world, the agent every refusal aims at, and actors holding narrower tokens."""

    w: World
    target: str
    target_key: EnvelopeSigner
    auditor_writer: Actor  # an auditor whose token (wrongly) carries registry:write
    acme_read_only: Actor  # acme with a read:private token only
    acme_no_orders: Actor  # acme with a registry:write token only


@pytest.fixture(scope="module")
def scene(world: World) -> Scene:
    key = EnvelopeSigner.from_seed(b"t" * 32)
    target = register_agent(world, key, "target", operating_jurisdictions=(HOST, OTHER))
    node, auditor, acme = world.node, world.auditor, world.acme
    return Scene(
        world,
        target,
        key,
        add_actor(node, auditor.id, "auditor", HOME, auditor.key, scopes=["registry:write"]),
        add_actor(node, acme.id, "operator", HOME, acme.key, scopes=["read:private"]),
        add_actor(node, acme.id, "operator", HOME, acme.key, scopes=["registry:write"]),
    )


Case = Callable[[Scene], object]


def _update(actor: Actor, agent_id: str) -> AgentUpdate:
    return AgentUpdate(
        actor=actor.id, at=now(), agent_id=agent_id, changes=AgentChanges(version="9")
    )


def _register(
    actor: Actor, record: AgentRecord, key: EnvelopeSigner | None = None, **card: Any
) -> AgentRegister:
    keys = (b64(key or EnvelopeSigner.generate()),)
    return AgentRegister(actor=actor.id, at=now(), agent=record, keys=keys, **card)


def _as(s: Scene, actor: Actor, change: Any, key: EnvelopeSigner | None = None) -> int:
    return submit(s.w.node, actor, change, key=key)


def _raw(s: Scene, payload: bytes, payload_type: str = REGISTRY_TYPE) -> int:
    envelope = sign_envelope(payload_type, payload, [s.w.acme.key])
    return s.w.node.registry.submit_change(envelope.to_json(), s.w.acme.principal)


def _rotation(s: Scene, actor: Actor, **keys: Any) -> int:
    return _as(s, actor, AgentRotateKey(actor=actor.id, at=now(), agent_id=s.target, **keys))


def _with_card(s: Scene, card: dict[str, Any], trusted: dict[str, Any] | None) -> int:
    change = _register(
        s.w.acme, agent_record(fresh_slug()), agent_card=card, agent_card_keys=trusted
    )
    return _as(s, s.w.acme, change)


def _untrusted_card(s: Scene) -> int:
    private, _ = _card_keys()
    stranger = ed25519.Ed25519PrivateKey.generate().public_key()
    trusted = {"provider-2": jwk_from_public_key(stranger, "provider-2", alg="EdDSA")}
    return _with_card(s, sign_agent_card(CARD, private, "provider-1", "EdDSA"), trusted)


def _tampered_card(s: Scene) -> int:
    private, trusted = _card_keys()
    card = sign_agent_card(CARD, private, "provider-1", "EdDSA") | {"version": "6.6.6"}
    return _with_card(s, card, trusted)


def _new_operator(s: Scene, actor: Actor, oid: str) -> int:
    change = OperatorRegister(actor=actor.id, at=now(), operator=operator_record(oid))
    return _as(s, actor, change)


def _regulated(s: Scene, actor: Actor, **changes: Any) -> int:
    change = AgentUpdate(
        actor=actor.id, at=now(), agent_id=s.target, changes=AgentChanges(**changes)
    )
    return _as(s, actor, change)


def _opened_as(s: Scene, change: Any, opening: Any) -> int:
    """Submit ``change`` as acme, signed as it is, with ``opening`` beside it."""
    payload = change.model_dump_json(exclude_none=True).encode()
    envelope = sign_envelope(REGISTRY_TYPE, payload, [s.w.acme.key]).to_json()
    return s.w.node.registry.submit_change(request_body(envelope, opening), s.w.acme.principal)


def _contact_change(s: Scene, contact: Contact = CONTACT) -> AgentUpdate:
    changes = AgentChanges(contact=contact)
    return AgentUpdate(actor=s.w.acme.id, at=now(), agent_id=s.target, changes=changes)


def _mismatched_opening(s: Scene) -> int:
    sealed, opening = seal_change(_contact_change(s))
    assert opening is not None
    other = CONTACT.model_copy(update={"email": "someone-else@example.org"})
    forged = opening.model_copy(update={"fields": {"contact": other.model_dump()}})
    return _opened_as(s, sealed, forged)


def _missing_opening(s: Scene) -> int:
    sealed, _opening = seal_change(_contact_change(s))
    return _opened_as(s, sealed, None)


REFUSALS: list[tuple[str, Case, int, str]] = [
    # private fields: never in the log, and what is sent must open the commitment
    (
        "contact-logged-in-clear",
        lambda s: _raw(s, _contact_change(s).model_dump_json(exclude_none=True).encode()),
        422,
        "personal_data_in_entry",
    ),
    ("private-fields-do-not-open-the-commitment", _mismatched_opening, 400, "private_mismatch"),
    ("commitment-without-its-private-fields", _missing_opening, 422, "private_fields_missing"),
    (
        "private-fields-without-a-commitment",
        lambda s: _opened_as(s, _update(s.w.acme, s.target), seal_change(_contact_change(s))[1]),
        400,
        "private_mismatch",
    ),
    # fields only the home regulator sets once the agent is registered
    (
        "operator-lowers-its-agents-risk-tier",
        lambda s: _regulated(s, s.w.acme, risk_tier="minimal"),
        403,
        "forbidden",
    ),
    (
        "operator-changes-its-agents-territories",
        lambda s: _regulated(s, s.w.acme, operating_jurisdictions=(HOST,)),
        403,
        "forbidden",
    ),
    (
        "operator-raises-its-agents-autonomy",
        lambda s: _regulated(s, s.w.acme, autonomy_level=5),
        403,
        "forbidden",
    ),
    # authority
    (
        "operator-registers-another-operators-agent",
        lambda s: _as(s, s.w.globex, _register(s.w.globex, agent_record(fresh_slug()))),
        403,
        "forbidden",
    ),
    (
        "operator-changes-another-operators-agent",
        lambda s: _as(s, s.w.globex, _update(s.w.globex, s.target)),
        403,
        "forbidden",
    ),
    (
        "host-regulator-changes-a-record",
        lambda s: _as(s, s.w.host, _update(s.w.host, s.target)),
        403,
        "forbidden",
    ),
    (
        "host-regulator-rotates-keys",
        lambda s: _rotation(s, s.w.host, add=(b64(EnvelopeSigner.generate()),)),
        403,
        "forbidden",
    ),
    (
        "host-regulator-registers-an-agent",
        lambda s: _as(s, s.w.host, _register(s.w.host, agent_record(fresh_slug()))),
        403,
        "forbidden",
    ),
    (
        "host-regulator-registers-an-operator",
        lambda s: _new_operator(s, s.w.host, f"operator:{fresh_slug('x')}"),
        403,
        "forbidden",
    ),
    (
        "host-regulator-revokes",
        lambda s: order(s.w.node, s.w.host, "revoke", s.target),
        403,
        "forbidden",
    ),
    (
        "host-regulator-revokes-in-its-territory",
        lambda s: order(s.w.node, s.w.host, "revoke", s.target, territory=HOST),
        403,
        "forbidden",
    ),
    (
        "host-regulator-suspends-globally",
        lambda s: order(s.w.node, s.w.host, "suspend", s.target),
        403,
        "forbidden",
    ),
    (
        "host-regulator-suspends-in-another-territory",
        lambda s: order(s.w.node, s.w.host, "suspend", s.target, territory=OTHER),
        403,
        "forbidden",
    ),
    (
        "operator-revokes-its-own-agent",
        lambda s: order(s.w.node, s.w.acme, "revoke", s.target),
        403,
        "forbidden",
    ),
    (
        "other-operator-suspends",
        lambda s: order(s.w.node, s.w.globex, "suspend", s.target),
        403,
        "forbidden",
    ),
    (
        "auditor-writes",
        lambda s: _as(s, s.w.auditor, _update(s.w.auditor, s.target)),
        403,
        "missing_scope",
    ),
    (
        "auditor-orders",
        lambda s: order(s.w.node, s.w.auditor, "suspend", s.target),
        403,
        "missing_scope",
    ),
    (
        "auditor-with-a-write-scope",
        lambda s: _as(s, s.auditor_writer, _update(s.auditor_writer, s.target)),
        403,
        "forbidden",
    ),
    # credentials: scope, signature, actor
    (
        "token-without-registry-scope",
        lambda s: _as(s, s.acme_read_only, _update(s.acme_read_only, s.target)),
        403,
        "missing_scope",
    ),
    (
        "token-without-orders-scope",
        lambda s: order(s.w.node, s.acme_no_orders, "suspend", s.target),
        403,
        "missing_scope",
    ),
    (
        "signed-by-another-principals-key",
        lambda s: _as(s, s.w.acme, _update(s.w.acme, s.target), key=s.w.globex.key),
        403,
        "signer_mismatch",
    ),
    (
        "signed-by-the-agents-key",
        lambda s: _as(s, s.w.acme, _update(s.w.acme, s.target), key=s.target_key),
        403,
        "signer_mismatch",
    ),
    (
        "actor-is-not-the-principal",
        lambda s: _as(s, s.w.acme, _update(s.w.globex, s.target)),
        403,
        "actor_mismatch",
    ),
    # the records themselves
    (
        "agent-with-another-home",
        lambda s: _as(
            s, s.w.acme, _register(s.w.acme, agent_record(fresh_slug(), home_jurisdiction=HOST))
        ),
        422,
        "wrong_home",
    ),
    (
        "agent-id-naming-another-jurisdiction",
        lambda s: _as(
            s,
            s.w.acme,
            _register(s.w.acme, agent_record("x", id=f"urn:custodes:fr:agent:{fresh_slug()}")),
        ),
        422,
        "bad_agent_id",
    ),
    (
        "duplicate-agent-id",
        lambda s: _as(s, s.w.acme, _register(s.w.acme, agent_record("target"))),
        409,
        "agent_exists",
    ),
    (
        "key-already-registered",
        lambda s: _as(
            s, s.w.acme, _register(s.w.acme, agent_record(fresh_slug()), key=s.w.globex.key)
        ),
        409,
        "key_in_use",
    ),
    (
        "unknown-operator",
        lambda s: _as(
            s, s.w.home, _register(s.w.home, agent_record(fresh_slug(), operator="operator:nobody"))
        ),
        404,
        "unknown_operator",
    ),
    (
        "operator-registered-twice",
        lambda s: _new_operator(s, s.w.home, "operator:acme"),
        409,
        "operator_exists",
    ),
    (
        "unknown-agent",
        lambda s: _as(s, s.w.acme, _update(s.w.acme, "urn:custodes:zz:agent:nobody")),
        404,
        "unknown_agent",
    ),
    (
        "rotation-retiring-the-last-key",
        lambda s: _rotation(s, s.w.acme, retire=(s.target_key.keyid,)),
        400,
        "no_active_key",
    ),
    (
        "rotation-retiring-someone-elses-key",
        lambda s: _rotation(s, s.w.acme, retire=(s.w.globex.key.keyid,)),
        400,
        "unknown_key",
    ),
    ("malformed-change", lambda s: _raw(s, b'{"v":1,"op":"agent.update"}'), 422, "invalid_payload"),
    (
        "unknown-op",
        lambda s: _raw(s, b'{"v":1,"op":"agent.delete","actor":"operator:acme"}'),
        422,
        "invalid_payload",
    ),
    ("payload-not-json", lambda s: _raw(s, b"register me"), 422, "invalid_payload"),
    (
        "kill-order-sent-as-a-change",
        lambda s: _raw(s, b"{}", ORDER_TYPE),
        422,
        "unsupported_payload_type",
    ),
    # A2A cards
    ("card-signed-by-an-untrusted-key", _untrusted_card, 403, "untrusted_agent_card"),
    ("card-changed-after-signing", _tampered_card, 422, "bad_agent_card_signature"),
    ("card-malformed", lambda s: _with_card(s, {"name": 1}, None), 422, "bad_agent_card"),
]


def test_a_host_regulator_cannot_register_an_operator_of_its_own_jurisdiction(
    scene: Scene,
) -> None:
    before = registry_state(scene.w.node)
    change = OperatorRegister(
        actor=scene.w.host.id, at=now(), operator=operator_record("operator:fr-co", HOST)
    )
    with pytest.raises(CustodesError) as caught:
        _as(scene, scene.w.host, change)
    assert (caught.value.status, caught.value.code) == (422, "wrong_home")
    local = OperatorRegister(
        actor=scene.w.host.id, at=now(), operator=operator_record("operator:zz-co", HOME)
    )
    with pytest.raises(CustodesError) as caught:
        _as(scene, scene.w.host, local)
    assert (caught.value.status, caught.value.code) == (403, "forbidden")
    assert registry_state(scene.w.node) == before


@pytest.mark.parametrize(
    ("case", "status", "code"), [pytest.param(*c[1:], id=c[0]) for c in REFUSALS]
)
def test_refused_and_nothing_is_written(scene: Scene, case: Case, status: int, code: str) -> None:
    before = registry_state(scene.w.node)
    with pytest.raises(CustodesError) as caught:
        case(scene)
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.message
    assert caught.value.message.strip()
    assert registry_state(scene.w.node) == before
    target = scene.w.node.queries.agent(scene.target, reader=NODE)
    assert (target["status"], target["record"]["version"]) == ("active", "1.0")


# --- models: bound to their holder ---------------------------------------------------------


def _model(**fields: Any) -> ModelRecord:
    values: dict[str, Any] = {
        "id": f"model:{fresh_slug('held')}",
        "provider": "Acme Models",
        "name": "Acme-1",
        "version": "1",
        "digest": "sha256:" + "aa" * 32,
        "training_compute_flop": 1e23,
    }
    return ModelRecord(**(values | fields))


def _refused(world: World, change: Any, actor: Actor, status: int, code: str) -> CustodesError:
    before = registry_state(world.node)
    with pytest.raises(CustodesError) as caught:
        submit(world.node, actor, change)
    assert (caught.value.status, caught.value.code) == (status, code), caught.value.message
    assert registry_state(world.node) == before
    return caught.value


def test_a_model_name_held_by_one_operator_cannot_be_taken_by_another(world: World) -> None:
    model = _model()
    submit(world.node, world.acme, ModelRegister(actor=world.acme.id, at=now(), model=model))
    squat = ModelRegister(actor=world.globex.id, at=now(), model=model)
    error = _refused(world, squat, world.globex, 409, "model_exists")
    assert "held by operator:acme" in error.message
    assert "ask regulator:zz" in error.message  # whom to dispute it with
    assert error.detail == {
        "model": model.id,
        "holder": "operator:acme",
        "dispute_with": "regulator:zz",
    }
    for change in (
        ModelUpdate(
            actor=world.globex.id, at=now(), model=model.model_copy(update={"version": "2"})
        ),
        ModelRetire(actor=world.globex.id, at=now(), model_id=model.id, reason="mine"),
    ):
        _refused(world, change, world.globex, 403, "forbidden")
    retire = ModelRetire(actor=world.host.id, at=now(), model_id=model.id, reason="not here")
    _refused(world, retire, world.host, 403, "forbidden")
    assert world.node.queries.model(model.id)["holder"] == "operator:acme"


def test_an_operator_cannot_register_a_model_in_another_operators_name(world: World) -> None:
    change = ModelRegister(actor=world.globex.id, at=now(), model=_model(operator="operator:acme"))
    _refused(world, change, world.globex, 403, "forbidden")


def test_the_holder_updates_and_retires_its_model(world: World) -> None:
    model = _model()
    submit(world.node, world.acme, ModelRegister(actor=world.acme.id, at=now(), model=model))
    newer = model.model_copy(update={"version": "2"})
    index = submit(world.node, world.acme, ModelUpdate(actor=world.acme.id, at=now(), model=newer))
    answer = world.node.queries.model(model.id)
    assert (answer["record"]["version"], answer["entry_index"]) == ("2", index)
    submit(
        world.node,
        world.acme,
        ModelRetire(actor=world.acme.id, at=now(), model_id=model.id, reason="superseded"),
    )
    assert world.node.queries.model(model.id)["status"] == "retired"
    again = ModelUpdate(actor=world.acme.id, at=now(), model=newer)
    _refused(world, again, world.acme, 409, "model_retired")


def test_the_home_regulator_corrects_a_squatted_model_for_its_rightful_holder(
    world: World,
) -> None:
    """The dispute path: globex squats a name; the regulator hands it to acme."""
    model = _model(provider="Acme Models (really)")
    submit(world.node, world.globex, ModelRegister(actor=world.globex.id, at=now(), model=model))
    corrected = model.model_copy(update={"operator": "operator:acme"})
    submit(world.node, world.home, ModelUpdate(actor=world.home.id, at=now(), model=corrected))
    assert world.node.queries.model(model.id)["holder"] == "operator:acme"
    taken_back = ModelRetire(actor=world.globex.id, at=now(), model_id=model.id, reason="x")
    _refused(world, taken_back, world.globex, 403, "forbidden")
    newer = corrected.model_copy(update={"version": "2"})
    submit(world.node, world.acme, ModelUpdate(actor=world.acme.id, at=now(), model=newer))
    retire = ModelRetire(actor=world.home.id, at=now(), model_id=model.id, reason="withdrawn")
    submit(world.node, world.home, retire)
    assert world.node.queries.model(model.id)["status"] == "retired"


# --- regulator-set fields and revoked agents ----------------------------------------------


def test_the_home_regulator_sets_risk_tier_autonomy_and_territories(world: World) -> None:
    agent_id = register_agent(world, EnvelopeSigner.generate())
    changes = AgentChanges(risk_tier="critical", autonomy_level=1, operating_jurisdictions=(HOST,))
    submit(
        world.node,
        world.home,
        AgentUpdate(actor=world.home.id, at=now(), agent_id=agent_id, changes=changes),
    )
    # The operator may restate them unchanged alongside its own changes.
    same = AgentChanges(version="1.1", risk_tier="critical", operating_jurisdictions=(HOST,))
    submit(
        world.node,
        world.acme,
        AgentUpdate(actor=world.acme.id, at=now(), agent_id=agent_id, changes=same),
    )
    undo = AgentChanges(risk_tier="high")
    error = _refused(
        world,
        AgentUpdate(actor=world.acme.id, at=now(), agent_id=agent_id, changes=undo),
        world.acme,
        403,
        "forbidden",
    )
    assert "risk tier" in error.message
    record = world.node.queries.agent(agent_id, reader=NODE)["record"]
    assert (record["risk_tier"], record["autonomy_level"], record["version"]) == (
        "critical",
        1,
        "1.1",
    )


def test_a_revoked_agent_is_frozen_until_reinstated(world: World) -> None:
    key = EnvelopeSigner.generate()
    agent_id = register_agent(world, key)
    _, revocation = order(world.node, world.home, "revoke", agent_id)
    fresh = EnvelopeSigner.generate()
    for actor in (world.acme, world.home):
        for change in (
            AgentRotateKey(actor=actor.id, at=now(), agent_id=agent_id, add=(b64(fresh),)),
            AgentRotateKey(
                actor=actor.id, at=now(), agent_id=agent_id, add=(b64(fresh),), retire=(key.keyid,)
            ),
            AgentUpdate(
                actor=actor.id, at=now(), agent_id=agent_id, changes=AgentChanges(version="9")
            ),
        ):
            error = _refused(world, change, actor, 409, "agent_revoked")
            assert "reinstate" in error.message
    order(world.node, world.home, "reinstate", agent_id, lifts=revocation.order_id)
    submit(
        world.node,
        world.acme,
        AgentRotateKey(actor=world.acme.id, at=now(), agent_id=agent_id, add=(b64(fresh),)),
    )


def test_a_model_must_be_held_by_a_registered_operator(world: World) -> None:
    change = ModelRegister(actor=world.home.id, at=now(), model=_model(operator="operator:nobody"))
    _refused(world, change, world.home, 404, "unknown_operator")


def test_private_fields_sent_twice_with_one_salt_are_refused(world: World) -> None:
    """A replayed body (or a reused salt) would link records: 409, nothing written."""
    agent_id = register_agent(world, EnvelopeSigner.generate())
    change = AgentUpdate(
        actor=world.acme.id, at=now(), agent_id=agent_id, changes=AgentChanges(contact=CONTACT)
    )
    sealed, opening = seal_change(change)
    payload = sealed.model_dump_json(exclude_none=True).encode()
    body = request_body(sign_envelope(REGISTRY_TYPE, payload, [world.acme.key]).to_json(), opening)
    world.node.registry.submit_change(body, world.acme.principal)
    before = registry_state(world.node)
    with pytest.raises(CustodesError) as caught:
        world.node.registry.submit_change(body, world.acme.principal)
    assert (caught.value.status, caught.value.code) == (409, "salt_reused")
    assert registry_state(world.node) == before

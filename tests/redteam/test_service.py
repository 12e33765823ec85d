"""RedteamService: a disclosure on one node, TAXII intake, deliveries from a peer
(``on_received``) and the ``published`` callbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from custodes.errors import AuthError, BadRequest
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.store import SqlLogStore
from custodes.redteam.models import Affected, Affects, RedteamAct, RelabelBody, TriageBody
from custodes.redteam.stix import (
    DisclosureState,
    disclosure_objects,
    read_exposure,
    read_state,
    sighting_object,
)
from custodes.redteam.store import (
    StoredObject,
    put_object,
    redteam_openings,
    stix_objects,
    stored_object,
)
from custodes.redteam.tlp import MARKING_IDS, Audience
from custodes.sdk.redteam import new_disclosure
from custodes.store.db import read_tx, write_tx
from tests.redteam.world import (
    MODEL_AGENT,
    OPERATOR,
    RESEARCHER,
    SKILL_AGENT,
    World,
    disclose_body,
    now,
    report_body,
)


def test_a_disclosure_goes_from_report_to_exposed(world: World) -> None:
    published: list[list[StoredObject]] = []
    world.node.redteam.published.append(published.append)
    disclosure = world.disclosed()
    shown = world.get("regulator:gb", f"/api/v1/redteam/disclosures/{disclosure}").json()
    assert shown["stage"] == "disclosed"
    assert {e["agent_id"]: e["status"] for e in shown["exposures"]} == {
        MODEL_AGENT: "exposed",
        SKILL_AGENT: "exposed",
    }
    types = [{s.type for s in batch} for batch in published]
    assert "vulnerability" in types[0]  # the report's objects
    assert types[-2:] == [{"sighting"}, {"sighting"}]  # each agent's exposure
    assert all(s.owner == "GB" for batch in published for s in batch)


def _intake_objects(disclosure: str) -> list[dict[str, Any]]:
    at = now()
    state = DisclosureState(
        id=disclosure,
        origin="GB",
        stage="reported",
        report=report_body(),
        triage=None,
        disclose=None,
        relabel=None,
        summary=None,
        created=at,
        modified=at,
    )
    wanted = ("vulnerability", "attack-pattern", "marking-definition")
    return [o for o in disclosure_objects(state) if o["type"] in wanted]


def _principal(world: World, who: str) -> Any:
    return world.node.tokens.authenticate(world.tokens[who])


def test_intake_logs_a_report_signed_by_the_node_for_the_researcher(world: World) -> None:
    disclosure = new_disclosure()
    answer = world.node.redteam.intake(_principal(world, RESEARCHER), _intake_objects(disclosure))
    assert answer["disclosure"] == disclosure
    with read_tx(world.node.engine) as conn:
        (data,) = SqlLogStore.entry_data(conn, answer["index"], answer["index"] + 1)
        opening = conn.execute(
            select(redteam_openings.c.body).where(redteam_openings.c.idx == answer["index"])
        ).scalar_one()
    envelope = parse_envelope(orjson.loads(data))
    assert envelope.signatures[0].keyid == world.node.entry_signer.keyid
    act = RedteamAct.model_validate_json(envelope.payload)
    assert (act.op, act.actor, act.disclosure) == ("report", RESEARCHER, disclosure)
    assert orjson.loads(opening)["context"]["via"] == "taxii"
    shown = world.get(RESEARCHER, f"/api/v1/redteam/disclosures/{disclosure}").json()
    assert shown["stage"] == "reported"


def test_intake_refuses_with_nothing_written(world: World) -> None:
    objects = _intake_objects(new_disclosure())
    before = world.written()
    with pytest.raises(BadRequest) as refused:
        world.node.redteam.intake(
            _principal(world, RESEARCHER), [o for o in objects if o["type"] != "attack-pattern"]
        )
    assert refused.value.status == 422
    with pytest.raises(AuthError) as wrong:
        world.node.redteam.intake(_principal(world, OPERATOR), objects)
    assert wrong.value.status == 403
    assert world.written() == before


def _fr_disclosure(world: World) -> tuple[str, list[dict[str, Any]], Audience]:
    """A disclosure FR's node made, naming GB's model agent, disclosed AMBER to FR+GB."""
    disclosure = new_disclosure()
    affected = Affected(
        agent_id=MODEL_AGENT,
        home="GB",
        operator=OPERATOR,
        model="model:llama-x",
        matched=("named",),
    )
    at = now()
    state = DisclosureState(
        id=disclosure,
        origin="FR",
        stage="disclosed",
        report=report_body(),
        triage=TriageBody(
            severity="high", criteria=Affects(agents=(MODEL_AGENT,)), affected=(affected,)
        ),
        disclose=disclose_body(recipients=("FR", "GB")),
        relabel=None,
        summary=None,
        created=at - timedelta(minutes=5),
        modified=at,
    )
    audience = Audience(tlp="amber", stage="disclosed", origin="FR", parties=("FR", "GB"))
    return disclosure, disclosure_objects(state), audience


def _deliver(world: World, objects: list[dict[str, Any]], audience: Audience) -> list[StoredObject]:
    """What the federation does with a peer's delivery: store, then hand it over."""
    with write_tx(world.node.engine) as conn:
        stored = [put_object(conn, o, owner="FR", audience=audience) for o in objects]
    found = [s for s in stored if s is not None]
    world.node.redteam.on_received(found, "FR")
    return found


def test_a_delivered_disclosure_exposes_the_agents_homed_here_once(world: World) -> None:
    published: list[list[StoredObject]] = []
    world.node.redteam.published.append(published.append)
    disclosure, objects, audience = _fr_disclosure(world)
    size = world.written()[0]
    _deliver(world, objects, audience)
    assert world.written()[0] == size + 1  # the node's own `exposed` for the GB agent
    (batch,) = published
    (sighting,) = batch
    assert (sighting.type, sighting.owner, sighting.audience) == ("sighting", "GB", audience)
    shown = world.get(OPERATOR, f"/api/v1/redteam/disclosures/{disclosure}").json()
    assert (shown["origin"], shown["stage"]) == ("FR", "disclosed")
    assert shown["bodies"]["report"]["title"] == report_body().title
    assert [(e["agent_id"], e["status"]) for e in shown["exposures"]] == [(MODEL_AGENT, "exposed")]
    world.node.redteam.on_received(_stored_again(world, disclosure), "FR")  # again
    assert world.written()[0] == size + 1  # once


def _stored_again(world: World, disclosure: str) -> list[StoredObject]:
    with read_tx(world.node.engine) as conn:
        rows = conn.execute(select(stix_objects).where(stix_objects.c.id == disclosure)).all()
    return [stored_object(r) for r in rows]


def test_a_peers_sighting_updates_the_exposure_here(world: World) -> None:
    disclosure, objects, audience = _fr_disclosure(world)
    _deliver(world, objects, audience)
    fr_agent = "urn:custodes:fr:agent:assistant"
    sighting = sighting_object(
        disclosure=disclosure,
        agent_id=fr_agent,
        home="FR",
        status="patched",
        evidence=None,
        note=None,
        tlp="amber",
        first_seen=now(),
        modified=now(),
        operator="operator:fr-ops",
    )
    _deliver(world, [sighting], audience)
    exposures = world.get("regulator:gb", f"/api/v1/redteam/agents/{fr_agent}/exposures").json()
    assert [(e["home"], e["status"]) for e in exposures["exposures"]] == [("FR", "patched")]


def test_a_relabel_at_the_origin_moves_the_sightings_homed_here(world: World) -> None:
    published: list[list[StoredObject]] = []
    _disclosure, objects, audience = _fr_disclosure(world)
    _deliver(world, objects, audience)
    world.node.redteam.published.append(published.append)
    state = read_state(objects)
    green = replace(
        state,
        relabel=RelabelBody(tlp="green", reason="wider"),
        modified=state.modified + timedelta(seconds=1),
    )
    wider = Audience(tlp="green", stage="disclosed", origin="FR")
    _deliver(world, disclosure_objects(green, previous=objects), wider)
    (batch,) = published
    (sighting,) = batch
    assert (sighting.type, sighting.audience) == ("sighting", wider)
    assert sighting.object["object_marking_refs"] == [MARKING_IDS["green"]]


def test_the_operator_patches_at_home_a_disclosure_from_another_party(world: World) -> None:
    disclosure, objects, audience = _fr_disclosure(world)
    _deliver(world, objects, audience)
    published: list[list[StoredObject]] = []
    world.node.redteam.published.append(published.append)
    patched = world.act(
        OPERATOR, "status", disclosure, {"agent_id": MODEL_AGENT, "status": "patched"}, tlp="amber"
    )
    assert patched.status_code == 201, patched.text
    (batch,) = published
    (sighting,) = batch
    assert sighting.audience == audience  # the origin's audience: FR reads it back
    assert read_exposure(sighting.object)["status"] == "patched"


def test_a_status_is_logged_at_the_agents_home_only(world: World) -> None:
    disclosure, objects, audience = _fr_disclosure(world)
    state = read_state(objects)
    assert state.triage is not None
    fr_agent = Affected(
        agent_id="urn:custodes:fr:agent:assistant", home="FR", operator=OPERATOR, matched=("named",)
    )
    triage = state.triage.model_copy(update={"affected": (*state.triage.affected, fr_agent)})
    _deliver(world, disclosure_objects(replace(state, triage=triage)), audience)
    before = world.written()
    body = {"agent_id": fr_agent.agent_id, "status": "patched"}
    answer = world.act(OPERATOR, "status", disclosure, body, tlp="amber")
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "not_home"
    assert "FR" in answer.json()["error"]["message"]
    assert world.written() == before

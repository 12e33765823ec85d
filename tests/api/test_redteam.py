"""The red-teaming lifecycle over the REST API: every step signed by the right
principal, every refusal a 4xx in the error shape with nothing written, reads by TLP."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from custodes.ledger.dsse import EnvelopeSigner
from custodes.redteam.models import Affects, RelabelBody, StatusBody, SummaryBody
from custodes.redteam.stix import stable_id
from custodes.redteam.store import stix_objects
from custodes.sdk.redteam import act_request, new_disclosure
from custodes.store.db import read_tx
from tests.api.support import assert_error
from tests.redteam.world import (
    AUDITOR,
    KEYS,
    MODEL_AGENT,
    OPERATOR,
    OTHER_AGENT,
    OTHER_OPERATOR,
    REGULATOR,
    RESEARCHER,
    SKILL_AGENT,
    World,
    disclose_body,
    report_body,
    world,
)

__all__ = ["world"]

_DAY = 86_400.0


def _status(world: World, who: str, disclosure: str, agent: str, status: str, **extra: Any):  # type: ignore[no-untyped-def]
    body = StatusBody.model_validate({"agent_id": agent, "status": status, **extra})
    return world.act(who, "status", disclosure, body, tlp="amber")


def _shown(world: World, who: str | None, disclosure: str) -> dict[str, Any]:
    answer = world.get(who, f"/api/v1/redteam/disclosures/{disclosure}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _versions(world: World, object_id: str) -> list[dict[str, Any]]:
    with read_tx(world.node.engine) as conn:
        rows = conn.execute(
            select(stix_objects.c.object)
            .where(stix_objects.c.id == object_id)
            .order_by(stix_objects.c.seq)
        ).all()
    return [orjson.loads(r.object) for r in rows]


def test_the_whole_lifecycle_on_one_node(world: World) -> None:
    """Reported, triaged (one agent by model, one by skill), disclosed (both exposed),
    patched by the operator, verified by a re-test; after the embargo, a public summary."""
    disclosure = world.reported()
    assert _shown(world, RESEARCHER, disclosure)["stage"] == "reported"
    preview = world.get(REGULATOR, f"/api/v1/redteam/disclosures/{disclosure}/affected")
    assert preview.status_code == 200, preview.text
    matched = {a["agent_id"]: a["matched"] for a in preview.json()["affected"]}
    assert matched == {MODEL_AGENT: ["model"], SKILL_AGENT: ["skill"]}

    triage = world.triage(disclosure)
    assert world.act(REGULATOR, "triage", disclosure, triage, tlp="amber").status_code == 201
    answer = world.act(REGULATOR, "disclose", disclosure, disclose_body(), tlp="amber")
    assert answer.status_code == 201, answer.text
    shown = _shown(world, OPERATOR, disclosure)
    assert shown["stage"] == "disclosed"
    assert {e["agent_id"]: e["status"] for e in shown["exposures"]} == {
        MODEL_AGENT: "exposed",
        SKILL_AGENT: "exposed",
    }

    assert _status(world, OPERATOR, disclosure, MODEL_AGENT, "patched").status_code == 201
    evidence = world.retest_result(disclosure, MODEL_AGENT, successes=0)
    verified = _status(world, AUDITOR, disclosure, MODEL_AGENT, "verified", evidence=evidence)
    assert verified.status_code == 201, verified.text
    exposures = world.get(OPERATOR, f"/api/v1/redteam/agents/{MODEL_AGENT}/exposures").json()
    assert [e["status"] for e in exposures["exposures"]] == ["verified"]

    world.node.redteam.clock = lambda: time.time() + 31 * _DAY  # past the embargo
    summary = SummaryBody(title="Role-play jailbreak", description="Fixed by a prompt guard.")
    assert world.act(REGULATOR, "summary", disclosure, summary, tlp="clear").status_code == 201
    report_id = stable_id("report", disclosure, "summary")
    (public,) = _versions(world, report_id)
    assert public["object_marking_refs"] == [
        "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
    ]
    ops = [a["op"] for a in _shown(world, REGULATOR, disclosure)["acts"]]
    assert ops == [
        "report",
        "triage",
        "disclose",
        "status",
        "status",
        "status",
        "status",
        "summary",
    ]


def test_each_status_is_a_new_version_of_the_agents_sighting(world: World) -> None:
    disclosure = world.disclosed()
    _status(world, OPERATOR, disclosure, SKILL_AGENT, "mitigated")
    _status(world, OPERATOR, disclosure, SKILL_AGENT, "patched")
    evidence = world.retest_result(disclosure, SKILL_AGENT, successes=15)
    regressed = _status(world, REGULATOR, disclosure, SKILL_AGENT, "regressed", evidence=evidence)
    assert regressed.status_code == 201, regressed.text
    versions = _versions(world, stable_id("sighting", disclosure, SKILL_AGENT))
    assert len(versions) == 4
    assert len({v["id"] for v in versions}) == 1
    modified = [v["modified"] for v in versions]
    assert modified == sorted(modified)
    assert len(set(modified)) == 4
    assert len({v["first_seen"] for v in versions}) == 1


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        (OTHER_OPERATOR, "patched", "not_operator"),
        (REGULATOR, "mitigated", "not_operator"),
        (RESEARCHER, "patched", "not_operator"),
        (OPERATOR, "exposed", "wrong_role"),
    ],
)
def test_only_the_agents_operator_claims_a_fix(
    world: World, who: str, status: str, code: str
) -> None:
    disclosure = world.disclosed()
    before = world.written()
    assert_error(_status(world, who, disclosure, MODEL_AGENT, status), 403, code)
    assert world.written() == before


def test_a_retest_that_does_not_cite_the_probe_is_refused(world: World) -> None:
    disclosure = world.disclosed()
    other = world.disclosed()
    evidence = world.retest_result(other, MODEL_AGENT, successes=0)  # the other's probe
    before = world.written()
    refused = _status(world, AUDITOR, disclosure, MODEL_AGENT, "verified", evidence=evidence)
    detail = assert_error(refused, 422, "retest_refused")
    assert detail["failures"]
    wrong_leaf = {**evidence, "leaf_hash": "00" * 32}
    refused = _status(world, AUDITOR, other, MODEL_AGENT, "verified", evidence=wrong_leaf)
    assert_error(refused, 422, "evidence_mismatch")
    failing = world.retest_result(disclosure, MODEL_AGENT, successes=12)
    before = world.written()
    refused = _status(world, AUDITOR, disclosure, MODEL_AGENT, "verified", evidence=failing)
    assert_error(refused, 422, "retest_outcome")
    assert world.written() == before


def test_relabelling_is_the_origins_regulators_and_clear_waits_for_the_embargo(
    world: World,
) -> None:
    disclosure = world.disclosed()
    before = world.written()
    green = RelabelBody(tlp="green", reason="share with every party")
    assert_error(
        world.act(OPERATOR, "relabel", disclosure, green, tlp="green"), 403, "not_entitled"
    )
    assert_error(
        world.act(RESEARCHER, "relabel", disclosure, green, tlp="green"), 403, "not_entitled"
    )
    clear = RelabelBody(tlp="clear", reason="publish")
    assert_error(world.act(REGULATOR, "relabel", disclosure, clear, tlp="clear"), 409, "embargoed")
    assert world.written() == before
    assert world.act(REGULATOR, "relabel", disclosure, green, tlp="green").status_code == 201
    assert _shown(world, OPERATOR, disclosure)["tlp"] == "green"
    sighting = _versions(world, stable_id("sighting", disclosure, MODEL_AGENT))[-1]
    assert sighting["object_marking_refs"] == [
        "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
    ]


def _bad_requests(world: World, disclosure: str) -> list[tuple[str, str, Any, int, str]]:
    """(who, path, body, status, code) of requests that must be refused."""
    base = f"/api/v1/redteam/disclosures/{disclosure}"
    good = act_request(
        "triage",
        disclosure,
        world.triage(disclosure),
        key=_key(REGULATOR),
        actor=REGULATOR,
        tlp="amber",
    )
    tampered = {
        **good,
        "opening": {**good["opening"], "body": {**good["opening"]["body"], "severity": "low"}},
    }
    stranger = act_request(
        "triage",
        disclosure,
        world.triage(disclosure),
        key=_key(OPERATOR),  # registered, but not the regulator's
        actor=REGULATOR,
        tlp="amber",
    )
    wrong_affected = world.triage(disclosure).model_copy(update={"affected": ()})
    lying = act_request(
        "triage", disclosure, wrong_affected, key=_key(REGULATOR), actor=REGULATOR, tlp="amber"
    )
    unknown = new_disclosure()
    return [
        (REGULATOR, base + "/disclose", good, 422, "act_mismatch"),
        (REGULATOR, base + "/triage", tampered, 422, "opening_mismatch"),
        (REGULATOR, base + "/triage", stranger, 403, "signer_mismatch"),
        (REGULATOR, base + "/triage", {"envelope": good["envelope"]}, 422, "invalid_payload"),
        (REGULATOR, base + "/triage", lying, 422, "affected_mismatch"),
        (OPERATOR, base + "/triage", _as(world, OPERATOR, "triage", disclosure), 403, "wrong_role"),
        (
            REGULATOR,
            base + "/disclose",
            _as(world, REGULATOR, "disclose", disclosure),
            409,
            "stage",
        ),
        (
            REGULATOR,
            f"/api/v1/redteam/disclosures/{unknown}/triage",
            _as(world, REGULATOR, "triage", unknown),
            404,
            "unknown_disclosure",
        ),
        (
            REGULATOR,
            "/api/v1/redteam/disclosures",
            _as(world, REGULATOR, "report", new_disclosure()),
            403,
            "wrong_role",
        ),
        (
            RESEARCHER,
            "/api/v1/redteam/disclosures",
            _as(world, RESEARCHER, "report", disclosure),
            409,
            "disclosure_exists",
        ),
        (RESEARCHER, "/api/v1/redteam/disclosures", _invalid_report(), 422, "invalid_payload"),
    ]


def _key(who: str) -> EnvelopeSigner:
    return KEYS[who]


def _as(world: World, who: str, op: str, disclosure: str) -> dict[str, Any]:
    bodies: dict[str, Any] = {
        "report": report_body(),
        "triage": world.triage(disclosure),
        "disclose": disclose_body(),
    }
    tlp = "amber"
    return act_request(op, disclosure, bodies[op], key=_key(who), actor=who, tlp=tlp)


def _invalid_report() -> dict[str, Any]:
    body = report_body().model_dump(mode="json")
    body["atlas"] = ["not-an-atlas-id"]
    return act_request(
        "report", new_disclosure(), body, key=_key(RESEARCHER), actor=RESEARCHER, tlp="amber"
    )


def test_bad_acts_are_refused_with_nothing_written(world: World) -> None:
    disclosure = world.reported()
    for who, path, body, status, code in _bad_requests(world, disclosure):
        before = world.written()
        assert_error(world.post(who, path, body), status, code)
        assert world.written() == before, (path, code)


def test_disclosing_needs_a_future_embargo_and_known_parties(world: World) -> None:
    disclosure = world.triaged()
    before = world.written()
    past = disclose_body(embargo=timedelta(days=-1))
    assert_error(
        world.act(REGULATOR, "disclose", disclosure, past, tlp="amber"), 422, "embargo_past"
    )
    red = disclose_body(tlp="red", recipients=("GB",))
    assert_error(
        world.act(REGULATOR, "disclose", disclosure, red, tlp="red"), 422, "invalid_recipients"
    )
    assert world.written() == before


def test_a_status_for_an_agent_not_affected_is_not_found(world: World) -> None:
    disclosure = world.disclosed()
    before = world.written()
    assert_error(_status(world, OPERATOR, disclosure, OTHER_AGENT, "patched"), 404, "unknown_agent")
    assert world.written() == before


def test_an_oversized_act_is_refused(world: World) -> None:
    big = {"envelope": {}, "opening": {"salt": "x" * 22, "body": {"pad": "x" * 300_000}}}
    before = world.written()
    answer = world.post(RESEARCHER, "/api/v1/redteam/disclosures", big)
    assert answer.status_code == 413, answer.text
    assert world.written() == before


def test_who_reads_a_disclosure_follows_its_tlp(world: World) -> None:
    """Reported: the reporter and the origin's regulators only; disclosed under AMBER to
    GB: GB's principals; never the public. Not entitled reads as not found."""
    disclosure = world.triaged(Affects(agents=(MODEL_AGENT,)))
    path = f"/api/v1/redteam/disclosures/{disclosure}"
    assert world.get(RESEARCHER, path).status_code == 200
    assert world.get(REGULATOR, path).status_code == 200
    assert_error(world.get(OPERATOR, path), 404, "unknown_disclosure")
    assert_error(world.get(None, path), 404, "unknown_disclosure")
    listed = world.get(OPERATOR, "/api/v1/redteam/disclosures").json()["disclosures"]
    assert disclosure not in [d["id"] for d in listed]
    world.act(REGULATOR, "disclose", disclosure, disclose_body(), tlp="amber")
    assert world.get(OPERATOR, path).status_code == 200
    assert_error(world.get(None, path), 404, "unknown_disclosure")
    listed = world.get(OPERATOR, "/api/v1/redteam/disclosures", agent_id=MODEL_AGENT).json()
    assert [d["id"] for d in listed["disclosures"]] == [disclosure]


def test_a_researcher_token_without_the_redteam_scope_reports_nothing(world: World) -> None:
    token = str(world.node.tokens.issue(RESEARCHER, ["read:private"], 3600)["token"])
    request = _as(world, RESEARCHER, "report", new_disclosure())
    before = world.written()
    answer = world.http.post(
        "/api/v1/redteam/disclosures",
        content=orjson.dumps(request),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert_error(answer, 403, "missing_scope")
    assert world.written() == before

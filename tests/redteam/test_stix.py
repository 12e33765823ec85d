"""Disclosures as STIX 2.1 objects: ids, versions, reading them back, the intake parser."""

from __future__ import annotations

import copy
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import stix2

from custodes.errors import BadRequest
from custodes.redteam.stix import (
    CUSTODES_IDENTITY,
    EXT_EXPOSURE,
    EXT_PROBE,
    EXT_VULNERABILITY,
    DisclosureState,
    disclosure_objects,
    extension_definitions,
    party_identity,
    read_disclosure,
    read_exposure,
    read_state,
    report_from_objects,
    sighting_object,
    stable_id,
    stix_time,
    summary_objects,
)
from custodes.redteam.tlp import MARKING_IDS
from tests.redteam.lifecycle import (
    AGENT,
    DISCLOSE,
    DISCLOSED,
    DISCLOSURE,
    PROBE,
    RELABELLED,
    REPORT,
    REPORTED,
    STATES,
    SUMMARISED,
    T0,
    TRIAGED,
    at,
)

LOGREF = {"origin": "gb.custodes.example/log", "index": 41, "leaf_hash": "ab" * 32}


def all_objects(state: DisclosureState) -> list[dict[str, Any]]:
    return disclosure_objects(state) + summary_objects(state)


def by_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == kind]


def the(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = by_type(objects, kind)
    return found


# -- ids and timestamps -------------------------------------------------------------------
def test_stable_ids_are_uuid4_shaped_and_the_same_for_the_same_parts() -> None:
    one = stable_id("sighting", DISCLOSURE, AGENT)
    assert one == stable_id("sighting", DISCLOSURE, AGENT)
    assert one != stable_id("sighting", DISCLOSURE, AGENT + "x")
    assert one != stable_id("indicator", DISCLOSURE, AGENT).replace("indicator", "sighting")
    kind, _, value = one.partition("--")
    assert kind == "sighting"
    assert uuid.UUID(value).version == 4
    assert uuid.UUID(value).variant == uuid.RFC_4122


def test_timestamps_are_utc_milliseconds() -> None:
    paris = datetime(2026, 12, 1, 10, 0, 0, 987654, tzinfo=UTC).astimezone()
    assert stix_time(paris) == "2026-12-01T10:00:00.987Z"
    assert stix_time(datetime(2026, 12, 1, 10, 0)) == "2026-12-01T10:00:00.000Z"


@pytest.mark.parametrize("name", list(STATES))
def test_the_same_state_gives_the_same_objects(name: str) -> None:
    assert all_objects(STATES[name]) == all_objects(STATES[name])


# -- what the objects say ---------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STATES))
def test_every_object_parses_with_stix2(name: str) -> None:
    for obj in all_objects(STATES[name]):
        parsed = stix2.parse(obj)
        assert parsed.id == obj["id"]


@pytest.mark.parametrize("name", list(STATES))
def test_every_sdo_and_sro_is_marked_and_made_by_the_origin(name: str) -> None:
    state = STATES[name]
    tlp = (state.relabel or state.disclose or state.report).tlp
    origin = party_identity("FR")["id"]
    for obj in disclosure_objects(state):
        if obj["type"] in ("marking-definition", "identity"):
            continue
        assert obj["created_by_ref"] == origin
        assert obj["object_marking_refs"] == [MARKING_IDS[tlp]]
    markings = {o["id"] for o in all_objects(state) if o["type"] == "marking-definition"}
    used = {r for o in all_objects(state) for r in o.get("object_marking_refs", ())}
    assert used == markings


def test_a_reported_disclosure_is_a_vulnerability_an_attack_pattern_and_their_relationship() -> (
    None
):
    objects = disclosure_objects(REPORTED)
    assert sorted(o["type"] for o in objects) == [
        "attack-pattern",
        "identity",
        "marking-definition",  # amber, of the disclosure's objects
        "marking-definition",  # clear, of the origin's identity
        "relationship",
        "vulnerability",
    ]
    vuln, attack = the(objects, "vulnerability"), the(objects, "attack-pattern")
    assert vuln["id"] == DISCLOSURE
    assert the(objects, "relationship")["relationship_type"] == "targets"
    refs = {(r["source_name"], r["external_id"]) for r in attack["external_references"]}
    assert refs == {("mitre-atlas", "AML.T0054"), ("owasp", "LLM01:2025")}
    probe = attack["extensions"][EXT_PROBE]
    assert probe["prompt"] == REPORT.probe.prompt
    assert [t["role"] for t in probe["turns"]] == ["user", "assistant"]
    ext = vuln["extensions"][EXT_VULNERABILITY]
    assert ext["stage"] == "reported"
    assert ext["affects"]["models"] == ["acme-llm"]
    assert ext["taxonomy"] == {"atlas": ["AML.T0054"], "owasp": ["LLM01:2025"]}
    assert "embargo_until" not in ext


def test_a_disclosed_one_adds_the_course_of_action_and_what_it_mitigates() -> None:
    objects = disclosure_objects(DISCLOSED)
    coa = the(objects, "course-of-action")
    assert coa["description"] == DISCLOSE.course_of_action
    assert coa["external_references"] == [
        {"source_name": "mitre-atlas", "external_id": "AML.M0015"}
    ]
    mitigates = {
        (r["source_ref"], r["target_ref"])
        for r in by_type(objects, "relationship")
        if r["relationship_type"] == "mitigates"
    }
    attack = the(objects, "attack-pattern")["id"]
    assert mitigates == {(coa["id"], DISCLOSURE), (coa["id"], attack)}
    ext = the(objects, "vulnerability")["extensions"][EXT_VULNERABILITY]
    assert ext["embargo_until"] == stix_time(DISCLOSE.embargo_until)
    assert ext["affected"][0]["agent_id"] == AGENT
    assert ext["severity"] == "critical"


def test_the_summary_is_a_clear_report_only_once_summarised() -> None:
    assert summary_objects(RELABELLED) == []
    report, identity, marking = summary_objects(SUMMARISED)
    assert report["type"] == "report"
    assert report["object_marking_refs"] == [MARKING_IDS["clear"]]
    assert DISCLOSURE in report["object_refs"]
    assert identity == party_identity("FR")
    assert marking["id"] == MARKING_IDS["clear"]


def test_extension_definitions_are_complete_and_made_by_custodes() -> None:
    identity, *definitions = extension_definitions()
    assert identity["id"] == CUSTODES_IDENTITY
    assert {d["id"] for d in definitions} == {EXT_VULNERABILITY, EXT_PROBE, EXT_EXPOSURE}
    for d in definitions:
        assert d["created_by_ref"] == CUSTODES_IDENTITY
        assert d["extension_types"] == ["property-extension"]
        assert d["description"]
        assert d["schema"]
        assert d["version"] == "1.0.0"


# -- versions ---------------------------------------------------------------------------------
def versions(objects: list[dict[str, Any]]) -> dict[str, str]:
    return {o["id"]: str(o.get("modified", o.get("created"))) for o in objects}


def test_triage_changes_the_vulnerability_but_not_the_attack_pattern() -> None:
    before = disclosure_objects(REPORTED)
    after = disclosure_objects(TRIAGED, previous=before)
    attack = the(before, "attack-pattern")
    assert the(after, "attack-pattern") == attack
    vuln = the(after, "vulnerability")
    assert vuln["modified"] == stix_time(TRIAGED.modified)
    assert vuln["created"] == the(before, "vulnerability")["created"]


def test_a_relabel_makes_new_versions_of_what_it_marks() -> None:
    before = disclosure_objects(DISCLOSED, previous=disclosure_objects(TRIAGED))
    after = disclosure_objects(RELABELLED, previous=before)
    changed = {i for i, v in versions(after).items() if versions(before).get(i) != v}
    core = {o["id"] for o in after if o["type"] not in ("identity", "marking-definition")}
    assert changed == core | {MARKING_IDS["green"]}
    assert all(o["object_marking_refs"] == [MARKING_IDS["green"]] for o in after if o["id"] in core)


def test_nothing_changes_without_a_change() -> None:
    before = disclosure_objects(RELABELLED)
    later = replace(SUMMARISED, modified=at(99))
    assert disclosure_objects(later, previous=before) == before
    summary = summary_objects(later, previous=summary_objects(SUMMARISED))
    assert summary == summary_objects(SUMMARISED)


def test_a_change_within_the_same_millisecond_still_makes_a_later_version() -> None:
    before = disclosure_objects(TRIAGED)
    same_time = replace(DISCLOSED, modified=TRIAGED.modified)
    vuln = the(disclosure_objects(same_time, previous=before), "vulnerability")
    assert vuln["modified"] > the(before, "vulnerability")["modified"]


# -- reading back -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(STATES))
def test_the_state_reads_back_from_its_objects(name: str) -> None:
    assert read_state(all_objects(STATES[name])) == STATES[name]


def test_read_disclosure_gives_what_a_receiving_node_stores() -> None:
    info = read_disclosure(the(disclosure_objects(DISCLOSED), "vulnerability"))
    assert info["id"] == DISCLOSURE
    assert (info["origin"], info["stage"], info["tlp"]) == ("FR", "disclosed", "amber")
    assert info["recipients"] == DISCLOSE.recipients
    assert info["severity"] == "critical"
    assert info["embargo_until"] == DISCLOSE.embargo_until
    assert info["triage"] == DISCLOSED.triage
    assert info["modified"] == DISCLOSED.modified


def test_an_unknown_marking_reads_as_unknown() -> None:
    vuln = copy.deepcopy(the(disclosure_objects(DISCLOSED), "vulnerability"))
    vuln["object_marking_refs"] = ["marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"]
    assert read_disclosure(vuln)["tlp"] == "unknown"


@pytest.mark.parametrize("status", ["exposed", "mitigated", "patched", "verified", "regressed"])
def test_a_sighting_per_agent_reads_back(status: str) -> None:
    evidence = LOGREF if status in ("verified", "regressed") else None
    sighting = sighting_object(
        disclosure=DISCLOSURE,
        agent_id=AGENT,
        home="GB",
        status=status,
        evidence=evidence,
        note="re-tested" if evidence else None,
        tlp="amber",
        first_seen=at(21),
        modified=at(60),
        operator="operator:acme",
    )
    assert sighting["id"] == stable_id("sighting", DISCLOSURE, AGENT)
    assert sighting["sighting_of_ref"] == DISCLOSURE
    assert sighting["created_by_ref"] == party_identity("GB")["id"]
    stix2.parse(sighting)
    assert read_exposure(sighting) == {
        "disclosure": DISCLOSURE,
        "agent_id": AGENT,
        "home": "GB",
        "operator": "operator:acme",
        "status": status,
        "evidence": evidence,
        "note": "re-tested" if evidence else None,
        "tlp": "amber",
        "first_seen": at(21),
        "modified": at(60),
    }


# -- TAXII intake ------------------------------------------------------------------------------
def bundle() -> list[dict[str, Any]]:
    return copy.deepcopy(disclosure_objects(REPORTED))


def test_a_researchers_bundle_becomes_the_report() -> None:
    received = datetime(2026, 12, 2, tzinfo=UTC)
    report = report_from_objects(bundle(), reported_at=received)
    assert report == REPORT.model_copy(update={"reported_at": received})


def rejected(objects: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(BadRequest) as caught:
        report_from_objects(objects, reported_at=T0)
    assert caught.value.status == 422
    assert caught.value.detail["problems"]
    problems: list[str] = caught.value.detail["problems"]
    assert all(p in caught.value.message for p in problems)
    return problems


def test_a_bundle_without_the_probe_is_refused() -> None:
    objects = bundle()
    del the(objects, "attack-pattern")["extensions"]
    assert any("probe" in p for p in rejected(objects))
    assert any("attack-pattern" in p for p in rejected(by_type(objects, "vulnerability")))


def test_an_unknown_marking_is_refused() -> None:
    objects = bundle()
    tlp1_amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
    the(objects, "vulnerability")["object_marking_refs"] = [tlp1_amber]
    assert any(tlp1_amber in p for p in rejected(objects))


def test_an_unknown_marking_definition_in_the_bundle_is_refused() -> None:
    objects = bundle()
    statement = "marking-definition--" + str(uuid.uuid4())
    objects.append(
        {
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": statement,
            "created": "2026-01-01T00:00:00.000Z",
            "name": "Copyright",
        }
    )
    assert any(statement in p for p in rejected(objects))


def test_an_attack_pattern_under_another_tlp_is_refused() -> None:
    objects = bundle()
    the(objects, "attack-pattern")["object_marking_refs"] = [MARKING_IDS["clear"]]
    assert any("one TLP for both" in p for p in rejected(objects))


def test_a_bundle_without_an_atlas_id_is_refused() -> None:
    objects = bundle()
    attack = the(objects, "attack-pattern")
    attack["external_references"] = [
        r for r in attack["external_references"] if r["source_name"] != "mitre-atlas"
    ]
    assert any("atlas" in p for p in rejected(objects))


def test_every_problem_is_named() -> None:
    objects = bundle()
    vuln = the(objects, "vulnerability")
    vuln["extensions"][EXT_VULNERABILITY]["requested"]["severity"] = "apocalyptic"
    the(objects, "attack-pattern")["extensions"][EXT_PROBE]["attempts"] = 0
    problems = rejected(objects)
    assert any("severity" in p for p in problems)
    assert any("attempts" in p for p in problems)


def test_two_vulnerabilities_are_refused() -> None:
    objects = bundle()
    objects.append(copy.deepcopy(the(objects, "vulnerability")))
    assert any("exactly one vulnerability" in p for p in rejected(objects))


def test_a_minimal_report_reads_back_unchanged_at_every_stage() -> None:
    minimal = REPORT.model_copy(
        update={
            "owasp": (),
            "metrics": (),
            "evidence": None,
            "severity": None,
            "recipients": (),
            "probe": PROBE.model_copy(update={"turns": (), "harm_category": None}),
        }
    )
    for full in STATES.values():
        state = replace(full, report=minimal)
        assert read_state(all_objects(state)) == state

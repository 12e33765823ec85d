"""Every object we produce passes stix2-validator (strict, with our extensions' schemas);
what is wrong inside an extension is caught; nothing needs the network."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
from stix2validator import ValidationOptions, validate_parsed_json

from custodes.redteam.stix import (
    EXT_EXPOSURE,
    EXT_PROBE,
    EXT_VULNERABILITY,
    disclosure_objects,
    extension_definitions,
    sighting_object,
    summary_objects,
)
from custodes.redteam.tlp import TLP2_EXTENSION, marking_definitions
from custodes.redteam.validation import SCHEMA_DIR, validate_object, validate_objects
from tests.redteam.lifecycle import AGENT, DISCLOSED, DISCLOSURE, STATES, at

STATUSES = ("exposed", "mitigated", "patched", "verified", "regressed")
LOGREF = {"origin": "gb.custodes.example/log", "index": 7, "leaf_hash": "cd" * 32}


def sighting(status: str, tlp: str = "amber") -> dict[str, Any]:
    return sighting_object(
        disclosure=DISCLOSURE,
        agent_id=AGENT,
        home="GB",
        status=status,
        evidence=LOGREF if status in ("verified", "regressed") else None,
        note=None,
        tlp=tlp,
        first_seen=at(21),
        modified=at(45),
        operator="operator:acme",
    )


def produced() -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name, state in STATES.items():
        for obj in disclosure_objects(state) + summary_objects(state):
            cases.append((f"{name}:{obj['type']}", obj))
    cases += [(f"sighting:{s}", sighting(s)) for s in STATUSES]
    cases += [(f"definitions:{o['type']}", o) for o in extension_definitions()]
    cases += [(f"tlp:{o['name']}", o) for o in marking_definitions()]
    return cases


CASES = produced()


@pytest.mark.parametrize(("name", "obj"), CASES, ids=[c[0] for c in CASES])
def test_every_object_we_produce_is_valid_without_warnings(name: str, obj: dict[str, Any]) -> None:
    assert validate_object(obj) == []
    plain = validate_parsed_json(obj, ValidationOptions(version="2.1"))
    assert plain.is_valid
    assert plain.warnings == []


def test_our_schemas_are_shipped_for_each_extension() -> None:
    names = {p.stem for p in SCHEMA_DIR.glob("*.json")}
    assert names == {EXT_VULNERABILITY, EXT_PROBE, EXT_EXPOSURE, TLP2_EXTENSION}


def attack_pattern() -> dict[str, Any]:
    return copy.deepcopy(
        next(o for o in disclosure_objects(DISCLOSED) if o["type"] == "attack-pattern")
    )


def vulnerability() -> dict[str, Any]:
    return copy.deepcopy(
        next(o for o in disclosure_objects(DISCLOSED) if o["type"] == "vulnerability")
    )


def test_a_bad_enum_inside_the_probe_is_caught() -> None:
    obj = attack_pattern()
    obj["extensions"][EXT_PROBE]["turns"][0]["role"] = "villain"
    (problem,) = validate_object(obj)
    assert "villain" in problem


def test_a_missing_prompt_and_an_unknown_probe_field_are_caught() -> None:
    missing = attack_pattern()
    del missing["extensions"][EXT_PROBE]["prompt"]
    assert "prompt" in " ".join(validate_object(missing))
    unknown = attack_pattern()
    unknown["extensions"][EXT_PROBE]["payload"] = "x"
    assert EXT_PROBE in " ".join(validate_object(unknown))  # additionalProperties: false


def test_a_bad_stage_severity_or_status_is_caught() -> None:
    vuln = vulnerability()
    vuln["extensions"][EXT_VULNERABILITY]["stage"] = "leaked"
    assert validate_object(vuln)
    vuln = vulnerability()
    vuln["extensions"][EXT_VULNERABILITY]["severity"] = "apocalyptic"
    assert validate_object(vuln)
    bad = sighting("exposed")
    bad["extensions"][EXT_EXPOSURE]["status"] = "forgotten"
    assert validate_object(bad)


def test_a_tlp_marking_with_an_unknown_level_is_caught() -> None:
    marking = copy.deepcopy(marking_definitions()[0])
    marking["extensions"][TLP2_EXTENSION]["tlp_2_0"] = "purple"
    assert any("purple" in p for p in validate_object(marking))


def test_custom_properties_and_definitions_without_description_are_refused() -> None:
    vuln = vulnerability()
    vuln["x_severity"] = "high"
    assert any("{401}" in p for p in validate_object(vuln))
    definition = copy.deepcopy(extension_definitions()[1])
    del definition["description"]
    assert any("{305}" in p for p in validate_object(definition))


def test_validate_objects_names_only_the_invalid_ones() -> None:
    good = vulnerability()
    bad = attack_pattern()
    bad["extensions"][EXT_PROBE]["attempts"] = 0
    found = validate_objects([good, bad, ["not", "an", "object"]])
    assert set(found) == {bad["id"], "#2"}


def test_nothing_needs_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the validator tried the network: {args}")

    monkeypatch.setattr(requests, "get", refuse)
    monkeypatch.setattr(requests.Session, "request", refuse)
    assert validate_objects(obj for _, obj in CASES) == {}

"""Interop with the real stix2 library: an exported bundle of a disclosure's objects loads
into a MemoryStore and its filters find what they should."""

from __future__ import annotations

from typing import Any

import pytest
import stix2
from stix2 import Filter, MemoryStore

from custodes.redteam.stix import (
    EXT_PROBE,
    disclosure_objects,
    extension_definitions,
    sighting_object,
    summary_objects,
)
from custodes.redteam.tlp import MARKING_IDS
from tests.redteam.lifecycle import AGENT, DISCLOSED, DISCLOSURE, PROBE, SUMMARISED, at


def exported() -> dict[str, Any]:
    """A bundle of a disclosed disclosure, one sighting, our definitions and the summary
    of another (later) state's report."""
    objects = disclosure_objects(DISCLOSED) + extension_definitions()
    objects.append(
        sighting_object(
            disclosure=DISCLOSURE,
            agent_id=AGENT,
            home="GB",
            status="exposed",
            evidence=None,
            note=None,
            tlp="amber",
            first_seen=at(21),
            modified=at(21),
        )
    )
    objects += summary_objects(SUMMARISED)[:1]
    unique = {(o["id"], o.get("modified")): o for o in objects}
    return {
        "type": "bundle",
        "id": "bundle--" + DISCLOSURE.split("--")[1],
        "objects": list(unique.values()),
    }


@pytest.fixture(scope="module")
def store() -> MemoryStore:
    bundle = stix2.parse(exported(), allow_custom=False)
    return MemoryStore(stix_data=bundle)


def test_the_bundle_parses_and_loads(store: MemoryStore) -> None:
    assert store.get(DISCLOSURE).name == DISCLOSED.report.title


def test_filter_by_type(store: MemoryStore) -> None:
    (vuln,) = store.query([Filter("type", "=", "vulnerability")])
    assert vuln.id == DISCLOSURE
    assert len(store.query([Filter("type", "=", "relationship")])) == 3
    assert len(store.query([Filter("type", "=", "extension-definition")])) == 3


def test_filter_by_atlas_id(store: MemoryStore) -> None:
    found = store.query([Filter("external_references.external_id", "=", "AML.T0054")])
    assert [o.type for o in found] == ["attack-pattern"]
    (attack,) = found
    assert attack.extensions[EXT_PROBE]["prompt"] == PROBE.prompt
    mitigations = store.query([Filter("external_references.external_id", "=", "AML.M0015")])
    assert [o.type for o in mitigations] == ["course-of-action"]


def test_filter_by_marking(store: MemoryStore) -> None:
    amber = store.query([Filter("object_marking_refs", "contains", MARKING_IDS["amber"])])
    assert {o.type for o in amber} == {
        "vulnerability",
        "attack-pattern",
        "course-of-action",
        "relationship",
        "sighting",
    }
    clear = store.query([Filter("object_marking_refs", "contains", MARKING_IDS["clear"])])
    assert {o.type for o in clear} == {"identity", "extension-definition", "report"}
    assert store.query([Filter("object_marking_refs", "contains", MARKING_IDS["red"])]) == []


def test_relationships_and_sightings_navigate(store: MemoryStore) -> None:
    vuln = store.get(DISCLOSURE)
    related = {o.type for o in store.related_to(vuln)}
    assert related == {"attack-pattern", "course-of-action"}
    (sighting,) = store.query([Filter("sighting_of_ref", "=", DISCLOSURE)])
    assert sighting.extensions  # the exposure travels in its extension

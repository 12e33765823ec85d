"""TLP 2.0 markings and who may read a red-teaming object (docs/design/0029).

STIX 2.1 predefines only TLP 1.0; TLP 2.0 markings are ``marking-definition`` objects
with the extension ``extension-definition--60a3c5c5-...`` (FIRST TLP 2.0, the OASIS
common-objects repository), built here by hand with their fixed ids.

Every stored object carries an ``Audience``: its TLP, the stage of its disclosure, the
origin party and reporter, and the named recipients. ``can_read`` is the one rule the
TAXII server, the REST API, the SSE stream and the federation's deliveries all apply:

- before a disclosure is disclosed: only its reporter, the origin's regulators and the
  origin node;
- ``clear``: everyone, without a token;
- ``green``: every alliance party's principals and nodes (members and partners), never
  the public;
- ``amber``: principals and nodes of the named parties (the organisation and its
  clients: every role); affected agents' home parties are named at disclosure;
- ``amber+strict``: the named organisation only: regulators (and the node) of the named
  parties;
- ``red``: the named principals only (``"GB/regulator:gb-aisi"``), and their parties'
  nodes, which hold it for them;
- an unknown marking is the most restrictive (nobody but the origin).

A partner (AU) is a party like any other here, so it reads what is CLEAR or GREEN and
what names it; "to the members" (``members_of``) names the members alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "LABELS",
    "MARKING_IDS",
    "TLP2_EXTENSION",
    "Audience",
    "Reader",
    "can_read",
    "entitled_parties",
    "marking_definition",
    "marking_definitions",
    "tlp_of_marking",
]

TLP2_EXTENSION = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"
MARKING_IDS: dict[str, str] = {
    "clear": "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    "green": "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    "amber": "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    "amber+strict": "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    "red": "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}
LABELS: dict[str, str] = {
    "clear": "TLP:CLEAR",
    "green": "TLP:GREEN",
    "amber": "TLP:AMBER",
    "amber+strict": "TLP:AMBER+STRICT",
    "red": "TLP:RED",
}
_BY_ID = {v: k for k, v in MARKING_IDS.items()}


def marking_definition(tlp: str) -> dict[str, Any]:
    """The TLP 2.0 ``marking-definition`` object for ``tlp`` (``clear`` ... ``red``)."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": MARKING_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": LABELS[tlp],
        "extensions": {TLP2_EXTENSION: {"extension_type": "property-extension", "tlp_2_0": tlp}},
    }


def marking_definitions() -> list[dict[str, Any]]:
    return [marking_definition(t) for t in MARKING_IDS]


def tlp_of_marking(marking_id: str) -> str | None:
    """The TLP a marking-definition id stands for; None for one we do not know."""
    return _BY_ID.get(marking_id)


class Audience(BaseModel):
    """Who may read an object (stored with it, sent with it to other nodes)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tlp: Literal["clear", "green", "amber", "amber+strict", "red", "unknown"]
    stage: Literal["reported", "triaged", "disclosed"]
    origin: str = Field(pattern=r"^[A-Z]{2}$")
    reporter: str | None = None  # the reporter's principal id at the origin
    parties: tuple[str, ...] = ()  # named parties (AMBER, AMBER+STRICT; RED's parties)
    principals: tuple[str, ...] = ()  # RED: "GB/regulator:gb-aisi"


@dataclass(frozen=True)
class Reader:
    """Who asks: the public (no token), a principal of a party, or a party's node."""

    kind: Literal["public", "principal", "node"]
    party: str | None = None
    principal: str | None = None  # its id, for a principal
    role: str | None = None

    @classmethod
    def public(cls) -> Reader:
        return cls("public")

    @classmethod
    def node(cls, party: str) -> Reader:
        return cls("node", party=party)

    @classmethod
    def of(cls, principal: Any) -> Reader:
        """A ``custodes.registry.principals.Principal`` (None: the public)."""
        if principal is None:
            return cls.public()
        return cls(
            "principal", party=principal.jurisdiction, principal=principal.id, role=principal.role
        )

    @property
    def qualified(self) -> str | None:
        if self.principal is None or self.party is None:
            return None
        return f"{self.party}/{self.principal}"


def _privileged(audience: Audience, reader: Reader) -> bool:
    """The origin node, the origin's regulators and the reporter read at every stage."""
    if reader.party != audience.origin:
        return False
    if reader.kind == "node" or reader.role == "regulator":
        return True
    return audience.reporter is not None and reader.principal == audience.reporter


def _by_tlp(audience: Audience, reader: Reader) -> bool:
    named = reader.party in audience.parties
    rules = {
        "clear": True,
        "green": reader.kind != "public",
        "amber": named,
        "amber+strict": named and (reader.kind == "node" or reader.role == "regulator"),
        "red": named if reader.kind == "node" else reader.qualified in audience.principals,
    }
    return rules.get(audience.tlp, False)  # unknown: the most restrictive


def can_read(audience: Audience, reader: Reader) -> bool:
    """Whether ``reader`` may read an object with ``audience`` (module docstring)."""
    if reader.kind != "public" and _privileged(audience, reader):
        return True
    if audience.stage != "disclosed":
        return False
    if reader.kind == "public":
        return audience.tlp == "clear"
    return _by_tlp(audience, reader)


def entitled_parties(audience: Audience, parties: Iterable[str]) -> set[str]:
    """The parties (of ``parties``, the roster's) whose nodes may hold the object."""
    return {p for p in parties if can_read(audience, Reader.node(p))}

"""What a forensic reconstruction is made of (docs/design/0030-forensics.md).

An **incident** names the agents to start from, how far to follow their counterparties,
a time window and the member nodes to ask. Each node answers with a **slice** of its own
log: the entries that concern those agents in the window (decisions, halts, kill orders
and lifts, registry changes, attestations and recognitions, disclosures, drift alerts),
each with its exact stored bytes and its inclusion proof against one checkpoint, that
checkpoint's signed note with the members' cosignatures, and the agents' registry entries
in force when the window opened. A **timeline** is the slices merged in causal order;
its **bundle** is the same document written to a file, which ``verify_bundle`` checks
with no network: every entry's leaf hash and proof, every checkpoint's signature and
quorum of member cosignatures under the roster in force, every clear record against its
commitment, and the order against the cross-references.

These models are the contract between the node's scan (``forensics.scan``), the API
(``/api/v1/forensics``), the gatherer (``client.forensics``), the ordering and the
bundle (``forensics.order``, ``forensics.bundle``) and the report (``forensics.report``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BUNDLE_FORMAT",
    "EVENT_KINDS",
    "MAX_DEPTH",
    "Event",
    "EventKind",
    "Incident",
    "RegistryState",
    "Skew",
    "Slice",
    "SliceRequest",
    "Timeline",
]

BUNDLE_FORMAT: Literal["custodes.forensics.bundle.v1"] = "custodes.forensics.bundle.v1"
MAX_DEPTH = 4
MAX_AGENTS = 500

EventKind = Literal[
    "decision",  # an agent's decision record (clear where entitled, else its commitment)
    "halt",  # an agent's record that it halted
    "order",  # a kill order: suspend or revoke (global or territorial, one agent or many)
    "lift",  # a reinstatement lifting an order
    "registry",  # a registry change naming the agent (register, update, rotate, retire)
    "attestation",  # an in-toto audit attestation about the agent, or its status change
    "recognition",  # a member's recognition decision covering the agent
    "disclosure",  # a red-teaming act whose affected agents include it
    "drift_alert",  # a drift alert or evaluation result for the agent's model
]
EVENT_KINDS: tuple[str, ...] = EventKind.__args__  # type: ignore[attr-defined]


def _aware_instant(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("give the instant with its offset (e.g. 2026-12-01T10:00:00Z)")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Incident(_Model):
    """What to reconstruct: agents, counterparties to ``depth``, a window, the nodes.

    ``nodes`` maps a member code (``GB``) to its base URL; empty means every member of
    the roster in force. The window is ``[start, end)``.
    """

    agents: list[str] = Field(min_length=1, max_length=MAX_AGENTS)
    depth: int = Field(default=1, ge=0, le=MAX_DEPTH)
    start: datetime
    end: datetime
    nodes: dict[str, str] = Field(default_factory=dict)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _aware_instant(value)


class Event(_Model):
    """One log entry of one member's log, as evidence.

    ``data`` is the entry exactly as the log stores it (base64), so its RFC 6962 leaf
    hash is recomputed, never trusted; ``proof`` (hex hashes) proves it into the
    slice's checkpoint of ``tree_size``. ``record`` is the decoded payload as the log
    holds it (for a committed decision, the public metadata and the commitment);
    ``clear`` is the opening (``{"salt", "record"}``) where the asking principal is
    entitled to it, else None. ``agents`` are the incident's agents it concerns;
    ``summary`` is one line a person reads; ``refs`` the other logs' entries it names.
    """

    node: str  # member code of the log that holds it
    origin: str  # that log's checkpoint origin line
    index: int = Field(ge=0)
    leaf_hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    data: str  # base64 of the stored entry bytes
    payload_type: str
    kind: EventKind
    agents: list[str]
    at: datetime  # the time the record itself claims (decided_at, an order's at, ...)
    sequenced_at: datetime  # the node's clock when the log sequenced it
    summary: str
    record: dict[str, Any]
    clear: dict[str, Any] | None = None
    refs: list[dict[str, Any]] = Field(default_factory=list)  # EntryRef dicts
    tree_size: int = Field(ge=1)
    proof: list[str] = Field(default_factory=list)  # hex, leaf to root


class RegistryState(_Model):
    """An agent's registry record as it stood when the window opened (the entry in force
    at the first index of the window), with the status then; ``event`` proves it."""

    agent_id: str
    as_of: int = Field(ge=0)
    status: str
    record: dict[str, Any]
    event: Event | None  # None: the agent was not registered yet at as_of


class Skew(_Model):
    """How far one node's clock may be from its peers', from its own checkpoint times
    and the witnesses' cosignature timestamps on them: ``bound_s`` is the widest gap
    seen, in seconds; events of different nodes closer in time than the sum of their
    bounds are ordered by cross-reference or shown as concurrent."""

    node: str
    bound_s: float = Field(ge=0)
    samples: int = Field(ge=0)


class SliceRequest(_Model):
    """What the gatherer asks one node (``POST /api/v1/forensics/slice``)."""

    agents: list[str] = Field(min_length=1, max_length=MAX_AGENTS)
    start: datetime
    end: datetime
    cursor: str | None = None  # a page's next_cursor
    limit: int = Field(default=2000, ge=1, le=5000)
    # Entries to include whatever they are (a ref's target), answered on the first page.
    indices: list[Annotated[int, Field(ge=0)]] = Field(default_factory=list, max_length=MAX_AGENTS)
    # Answer against this signed checkpoint size (an earlier answer's ``tree_size``), so
    # every ask of one gather is proven against one checkpoint; None: the newest.
    tree_size: int | None = Field(default=None, ge=1)

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return _aware_instant(value)


class Slice(_Model):
    """One node's answer: its events for the agents in the window, a page at a time, all
    pages proven against the same ``checkpoint`` (signed note text with cosignatures).
    ``counterparties`` are the agents the events' clear records name, for the gatherer
    to follow; ``registry`` is filled on the first page only."""

    node: str
    origin: str
    tree_size: int = Field(ge=0)
    checkpoint: str
    events: list[Event]
    registry: list[RegistryState] = Field(default_factory=list)
    counterparties: list[str] = Field(default_factory=list)
    skew: Skew
    next_cursor: str | None = None


class Timeline(_Model):
    """The reconstruction: every slice's events merged in causal order.

    ``order`` lists ``(node, index)`` keys in causal order (``events`` are in that order
    too); ``edges`` are the cross-references used (``[from_key, to_key]`` as
    ``"GB:12"`` strings, to before from); ``concurrent`` the pairs of events whose order
    rests on clocks within their skew bounds. ``checkpoints`` maps node to its signed
    checkpoint note; ``roster`` is the signed roster in force (JSON as served);
    ``gaps`` says what could not be gathered (a node unreachable, a ref not found).
    """

    format: Literal["custodes.forensics.bundle.v1"] = BUNDLE_FORMAT
    incident: Incident
    asked_by: str | None  # the principal whose entitlements shaped the clear text
    generated_at: datetime
    agents: list[str]  # the seed agents and the counterparties followed
    roster: dict[str, Any]
    checkpoints: dict[str, str]
    origins: dict[str, str]  # node -> origin line
    events: list[Event]
    registry: list[RegistryState]
    skew: list[Skew]
    edges: list[tuple[str, str]] = Field(default_factory=list)
    concurrent: list[tuple[str, str]] = Field(default_factory=list)
    gaps: list[str] = Field(default_factory=list)

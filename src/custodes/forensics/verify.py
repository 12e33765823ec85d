"""Verify an evidence bundle offline: every signature, proof, commitment and ordering.

``verify_bundle`` trusts nothing in the bundle but what it recomputes, and needs no
network. In order it checks:

1. the roster: its shape, and valid signatures by a threshold of its members' roster
   keys (and, given a ``trusted`` roster, that it is that roster or its signed successor);
2. each node's checkpoint: signed by that member's log key named in the roster, with the
   roster's origin, and cosigned by a quorum of members' witnesses (finality);
3. each event and each registry state's event: its node has a checkpoint with the same
   origin and size; its leaf hash is recomputed from its bytes; its inclusion proof
   leads to the checkpoint's root; the bytes are a DSSE envelope whose payloadType and
   payload are the event's; its kind (decision, halt, order, lift) and its time are
   the ones its record says; a clear record
   opens the logged commitment;
4. the order: each event once, each log's indexes rising, every edge and every ref the
   entries themselves carry pointing back to an earlier event with that leaf hash.

The first failure raises :class:`~custodes.forensics.bundle.BundleError`, whose message
names the place (``GB:1234: ...``) and the rule.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from custodes.errors import CustodesError
from custodes.federation.finality import is_final
from custodes.federation.roster import RosterError, SignedRoster, parse_roster, verify_next
from custodes.forensics.bundle import BundleError
from custodes.forensics.models import Event, Timeline
from custodes.ledger.checkpoint import Checkpoint, parse_checkpoint
from custodes.ledger.commitments import open_record, parse_opening
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.merkle import leaf_hash, verify_inclusion
from custodes.ledger.note import parse_note
from custodes.ledger.payloads import DECISION_TYPE, CommittedDecision
from custodes.registry.service import ORDER_TYPE

__all__ = ["Verified", "verify_bundle"]


@dataclass(frozen=True)
class Verified:
    """What a verified bundle holds: counts a person can check against the report."""

    events: int
    nodes: tuple[str, ...]  # member codes whose checkpoints prove events
    checkpoints: int
    cosignatures: int  # member cosignatures counted towards finality, all checkpoints
    registry: int  # registry states proven
    opened: int  # clear records checked against their commitments
    roster_version: int

    def summary(self) -> str:
        return f"verified: {self.details()}"

    def details(self) -> str:
        return (
            f"{self.events} events from {len(self.nodes)} members "
            f"({', '.join(self.nodes)}); {self.checkpoints} checkpoints with "
            f"{self.cosignatures} member cosignatures; {self.registry} registry states; "
            f"{self.opened} clear records match their commitments; "
            f"roster version {self.roster_version}"
        )


def _fail(where: str, reason: str) -> BundleError:
    return BundleError(f"{where}: {reason}", detail={"where": where})


# --- the roster ---------------------------------------------------------------------------


def _check_roster(document: Mapping[str, Any], trusted: SignedRoster | None) -> SignedRoster:
    try:
        roster = parse_roster(document)
    except RosterError as exc:
        raise _fail("roster", exc.message) from exc
    valid = len(roster.signers())
    if valid < roster.threshold:
        raise _fail(
            "roster",
            f"version {roster.version} has {valid} valid signatures by its members' roster "
            f"keys; it needs {roster.threshold}",
        )
    if trusted is not None:
        _link(trusted, roster)
    return roster


def _link(trusted: SignedRoster, roster: SignedRoster) -> None:
    """The bundle's roster is the trusted one or the version its members signed next."""
    if roster.version == trusted.version and roster.digest() == trusted.digest():
        return
    if roster.version == trusted.version + 1:
        try:
            verify_next(trusted, roster.document)
        except RosterError as exc:
            raise _fail("roster", f"does not follow the trusted roster: {exc.message}") from exc
        return
    raise _fail(
        "roster",
        f"version {roster.version} is neither the trusted roster (version "
        f"{trusted.version}) nor its signed successor",
    )


# --- checkpoints ----------------------------------------------------------------------------


def _check_checkpoint(
    node: str, note_text: str, origin: str | None, roster: SignedRoster
) -> tuple[Checkpoint, int]:
    party = roster.party(node)
    if party is None:
        raise _fail(node, f"is not a party of roster version {roster.version}")
    if origin != party.origin:
        raise _fail(node, f"origin {origin!r} is not the roster's origin {party.origin!r}")
    try:
        result = is_final(note_text.encode(), party, roster)
    except CustodesError as exc:
        raise _fail(
            node, f"checkpoint is not signed by {node}'s log key in the roster ({exc.message})"
        ) from exc
    if result.origin != party.origin:
        raise _fail(node, f"checkpoint's origin {result.origin!r} is not {party.origin!r}")
    if not result.final:
        who = ", ".join(result.cosigners) or "none"
        raise _fail(
            node,
            f"checkpoint of size {result.size} is cosigned by {len(result.cosigners)} "
            f"members ({who}); the roster's quorum is {result.needed}",
        )
    return parse_checkpoint(parse_note(note_text.encode()).text), len(result.cosigners)


# --- events -----------------------------------------------------------------------------------


def _decode(key: str, event: Event) -> bytes:
    try:
        return base64.b64decode(event.data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail(key, "the entry's data is not base64") from exc


def _prove(key: str, event: Event, data: bytes, checkpoint: Checkpoint) -> None:
    if event.origin != checkpoint.origin:
        raise _fail(key, f"origin {event.origin!r} is not its checkpoint's {checkpoint.origin!r}")
    if event.tree_size != checkpoint.size:
        raise _fail(
            key,
            f"proven against tree size {event.tree_size}, but the checkpoint is of size "
            f"{checkpoint.size}",
        )
    computed = leaf_hash(data)
    if computed.hex() != event.leaf_hash:
        raise _fail(key, f"leaf hash {event.leaf_hash} is not the hash of the entry's data")
    try:
        proof = [bytes.fromhex(h) for h in event.proof]
        verify_inclusion(computed, event.index, event.tree_size, proof, checkpoint.root_hash)
    except ValueError as exc:
        raise _fail(key, "the inclusion proof holds a hash that is not hex") from exc
    except CustodesError as exc:
        if "expected root" in exc.message:
            raise _fail(key, "inclusion proof does not lead to the checkpoint's root") from exc
        raise _fail(key, f"the inclusion proof is malformed: {exc.message}") from exc


def _check_payload(key: str, event: Event, data: bytes) -> None:
    try:
        envelope = parse_envelope(orjson.loads(data))
        record = orjson.loads(envelope.payload)
    except (orjson.JSONDecodeError, CustodesError) as exc:
        raise _fail(key, "the entry is not a DSSE envelope with a JSON payload") from exc
    if envelope.payload_type != event.payload_type:
        raise _fail(
            key,
            f"payloadType {event.payload_type!r} is not the entry's {envelope.payload_type!r}",
        )
    if record != event.record:
        raise _fail(key, "the record shown is not the payload the log holds")


def _claimed(record: Mapping[str, Any]) -> tuple[str, datetime] | None:
    """The time a record claims for itself at its top level (as the scan reads it)."""
    for name in ("at", "decided_at"):
        value = record.get(name)
        if isinstance(value, str):
            try:
                when = datetime.fromisoformat(value)
            except ValueError:
                continue
            if when.tzinfo is not None:
                return name, when
    return None


def _kind_of(payload_type: str, record: Mapping[str, Any]) -> str | None:
    """The kind an entry of this type must be shown as, where the type decides it."""
    if payload_type == DECISION_TYPE:
        halted = record.get("kind") == "halt" if record.get("v") == 2 else record.get("action")
        return "halt" if halted in (True, "halt") else "decision"
    if payload_type == ORDER_TYPE:
        return "lift" if record.get("op") == "reinstate" else "order"
    return None


def _check_kind(key: str, event: Event) -> None:
    kind = _kind_of(event.payload_type, event.record)
    if kind is not None and kind != event.kind:
        raise _fail(key, f"shown as a {event.kind}, but the logged entry is a {kind}")


def _check_time(key: str, event: Event) -> None:
    claimed = _claimed(event.record)
    if claimed is not None and claimed[1] != event.at:
        raise _fail(
            key, f"its time {event.at.isoformat()} is not the {claimed[0]} its record claims"
        )


def _check_clear(key: str, event: Event) -> bool:
    """True when a clear record was checked against the logged commitment."""
    if event.clear is None:
        return False
    record = event.record
    if record.get("v") != 2 or "commitment" not in record:
        if event.clear.get("record") != record:
            raise _fail(key, "the clear record differs from the record logged in clear")
        return False
    try:
        open_record(CommittedDecision.model_validate(record), parse_opening(event.clear))
    except (CustodesError, ValidationError) as exc:
        reason = exc.message if isinstance(exc, CustodesError) else str(exc.errors()[0]["msg"])
        raise _fail(
            key, f"the clear record does not open the logged commitment ({reason})"
        ) from exc
    return True


def _check_event(event: Event, checkpoints: Mapping[str, Checkpoint]) -> bool:
    key = f"{event.node}:{event.index}"
    checkpoint = checkpoints.get(event.node)
    if checkpoint is None:
        raise _fail(key, f"the bundle holds no checkpoint of {event.node}'s log")
    data = _decode(key, event)
    _prove(key, event, data, checkpoint)
    _check_payload(key, event, data)
    _check_kind(key, event)
    _check_time(key, event)
    return _check_clear(key, event)


# --- order --------------------------------------------------------------------------------------


def _refs(event: Event) -> Iterable[Mapping[str, Any]]:
    """The refs the event lists and those its own logged record carries."""
    yield from event.refs
    logged = event.record.get("refs")
    if isinstance(logged, list):
        yield from (r for r in logged if isinstance(r, Mapping))


def _check_order(timeline: Timeline) -> None:
    position: dict[str, int] = {}
    by_origin: dict[tuple[str, int], Event] = {}
    last: dict[str, int] = {}
    for i, event in enumerate(timeline.events):
        key = f"{event.node}:{event.index}"
        if key in position:
            raise _fail(key, "is listed twice")
        if event.node in last and event.index <= last[event.node]:
            raise _fail(
                key,
                f"comes after {event.node}:{last[event.node]} in the order, but the log "
                "sequenced it first",
            )
        position[key], last[event.node] = i, event.index
        by_origin[(event.origin, event.index)] = event
    for later, earlier in timeline.edges:
        if later not in position or earlier not in position:
            raise _fail(f"edge {later} -> {earlier}", "names an event the bundle does not hold")
        if position[earlier] > position[later]:
            raise _fail(later, f"is placed before {earlier}, which it refers to")
    for event in timeline.events:
        _check_refs(event, by_origin, position)
    for a, b in timeline.concurrent:
        if a not in position or b not in position:
            raise _fail(f"concurrent pair {a}, {b}", "names an event the bundle does not hold")


def _check_refs(
    event: Event, by_origin: Mapping[tuple[str, int], Event], position: Mapping[str, int]
) -> None:
    key = f"{event.node}:{event.index}"
    for ref in _refs(event):
        index = ref.get("index")
        target = by_origin.get((str(ref.get("origin")), index)) if isinstance(index, int) else None
        if target is None:
            continue  # a ref outside the incident: nothing to order against
        target_key = f"{target.node}:{target.index}"
        if ref.get("leaf_hash") != target.leaf_hash:
            raise _fail(key, f"its ref to {target_key} names a different leaf hash")
        if position[target_key] > position[key]:
            raise _fail(key, f"is placed before {target_key}, which it refers to")


# --- the whole ----------------------------------------------------------------------------------


def verify_bundle(timeline: Timeline, *, trusted: SignedRoster | None = None) -> Verified:
    """Verify ``timeline`` with no network; raise :class:`BundleError` at the first fault.

    ``trusted``: a roster the verifier already trusts (its genesis file, say); without
    it the bundle's roster is checked against its own members' keys only.
    """
    roster = _check_roster(timeline.roster, trusted)
    if set(timeline.checkpoints) != set(timeline.origins):
        raise _fail("checkpoints", "the nodes with checkpoints are not the nodes with origins")
    checkpoints: dict[str, Checkpoint] = {}
    cosignatures = 0
    for node in sorted(timeline.checkpoints):
        origin = timeline.origins.get(node)
        checkpoint, count = _check_checkpoint(node, timeline.checkpoints[node], origin, roster)
        checkpoints[node], cosignatures = checkpoint, cosignatures + count
    opened = sum(_check_event(event, checkpoints) for event in timeline.events)
    for state in timeline.registry:
        if state.event is not None:
            _check_event(state.event, checkpoints)
    _check_order(timeline)
    return Verified(
        events=len(timeline.events),
        nodes=tuple(sorted({e.node for e in timeline.events} | set(checkpoints))),
        checkpoints=len(checkpoints),
        cosignatures=cosignatures,
        registry=sum(1 for s in timeline.registry if s.event is not None),
        opened=opened,
        roster_version=roster.version,
    )

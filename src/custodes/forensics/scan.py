"""One node's forensic slice: the entries of its own log that concern some agents in a window.

The window ``[start, end)`` is bisected to an index range on ``entries.sequenced_at``
(the node's own clock, which only moves forward as the log grows): a handful of
primary-key look-ups, so a narrow window on a large log reads only its own entries.
Those entries are read in chunks and kept when they concern an asked agent:

- decisions and halts the agent signed (clear where ``reader`` is entitled, through
  the node's disclosure path, which logs the clear read exactly as the API does);
- kill orders and lifts naming it, or covering it by selector (``kill_order_agents``);
- registry changes of it (register, update, key rotation);
- audit entries (statements, attestation status, recognitions, kill-switch tests)
  and evaluation results or drift alerts that name it (or, for results and alerts,
  name its model);
- red-teaming acts (a log entry holds only a disclosure id and a commitment, never the
  agents) of every disclosure the agent is exposed to, as ``reader`` may see its
  exposures (``custodes.redteam.reads``: an embargoed disclosure stays hidden from
  whoever may not read it); exposure is the node's current knowledge, so acts from
  before the agent was found affected are included too.

Every page is proven against one signed checkpoint (``tree_size``), chosen on the
first page and carried by the cursor; entries sequenced after it wait for a later ask.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import ColumnElement, Connection, Engine, Select, and_, func, or_, select

from custodes.audits.models import (
    ATTESTATION_STATUS_TYPE,
    KILLSWITCH_TEST_TYPE,
    RECOGNITION_TYPE,
    STATEMENT_TYPE,
)
from custodes.errors import BadRequest, NotFound
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE
from custodes.forensics.models import (
    Event,
    EventKind,
    RegistryState,
    Skew,
    Slice,
    SliceRequest,
)
from custodes.ledger.payloads import DECISION_TYPE
from custodes.ledger.prover import ProofCache
from custodes.ledger.readindex import DECISIONS, ReadIndex
from custodes.ledger.store import SqlLogStore, checkpoints, cosignatures, entries
from custodes.redteam.models import REDTEAM_TYPE
from custodes.redteam.reads import RedteamReads
from custodes.redteam.tlp import Reader
from custodes.registry.decisions import DecisionDisclosure
from custodes.registry.principals import Principal
from custodes.registry.queries import RegistryQueries
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE
from custodes.registry.store import agents as agents_table
from custodes.registry.store import kill_order_agents, kill_orders
from custodes.store.db import read_tx

__all__ = ["FORWARD_TYPE", "LogParts", "checkpoint_note", "scan", "window_range"]

_CHUNK = 2_000  # entries read per step
_READ_BUDGET = 20_000  # decisions indexed before answering (as the read side does)
_SKEW_SAMPLES = 64  # recent checkpoints whose cosignatures bound the clock skew
_DATETIME = TypeAdapter(datetime)

# Payload types whose entries are evidence when they name an asked agent, and the kind.
_NAMING: dict[str, EventKind] = {
    STATEMENT_TYPE: "attestation",
    ATTESTATION_STATUS_TYPE: "attestation",
    KILLSWITCH_TEST_TYPE: "attestation",
    RECOGNITION_TYPE: "recognition",
    REDTEAM_TYPE: "disclosure",
    RESULT_TYPE: "drift_alert",
    DRIFT_ALERT_TYPE: "drift_alert",
}
# Forwarded orders (custodes.federation.forwarded, an adapter this domain does not import).
FORWARD_TYPE = "application/vnd.custodes.forwarded-order+json"
_EVIDENCE = (DECISION_TYPE, ORDER_TYPE, FORWARD_TYPE, REGISTRY_TYPE, *_NAMING)
_MODEL_NAMING = (RESULT_TYPE, DRIFT_ALERT_TYPE)  # these concern an agent through its model
_TIME_FIELDS = ("at", "decided_at", "reported_at", "published_at", "evaluated_at", "issued")


@dataclass(frozen=True)
class LogParts:
    """What a scan needs of a node: its code, its log and the read services over it."""

    node: str  # the member code (jurisdiction) of this node
    origin: str
    engine: Engine
    store: SqlLogStore
    proofs: ProofCache
    disclosure: DecisionDisclosure
    queries: RegistryQueries
    read_index: ReadIndex
    # Cosignatures that make a checkpoint final under the roster in force (0: no roster):
    # a first page answers against the newest checkpoint with that many, when there is one.
    quorum: int = 0


@dataclass
class _Found:
    """A kept entry before it is proven: what it is, whom it concerns, when."""

    index: int
    data: bytes
    leaf: bytes
    payload_type: str
    kind: EventKind
    agents: list[str]
    at: datetime
    sequenced_at: datetime
    record: dict[str, Any]
    refs: list[dict[str, Any]] = field(default_factory=list)


def checkpoint_note(store: SqlLogStore, size: int) -> str:
    """The signed checkpoint note at ``size`` followed by every cosignature collected."""
    stored = store.checkpoint(size)
    if stored is None:
        return ""
    return stored.note.decode() + "".join(store.cosignature_lines(size))


def _instant(value: datetime) -> float:
    return value.astimezone(UTC).timestamp()


def _first_at_or_after(conn: Connection, moment: float, size: int) -> int:
    """The first index below ``size`` sequenced at or after ``moment`` (``size`` if none):
    a bisection of primary-key look-ups on the monotone ``sequenced_at``."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        at = conn.execute(
            select(entries.c.sequenced_at).where(entries.c.idx == middle)
        ).scalar_one()
        if float(at) < moment:
            low = middle + 1
        else:
            high = middle
    return low


def window_range(conn: Connection, start: datetime, end: datetime, size: int) -> tuple[int, int]:
    """The index range ``[first, stop)`` of the entries below ``size`` sequenced in the window."""
    first = _first_at_or_after(conn, _instant(start), size)
    return first, _first_at_or_after(conn, _instant(end), size)


# --- cursors -------------------------------------------------------------------------


def _cursor(size: int, position: int) -> str:
    raw = orjson.dumps({"k": "f", "size": size, "at": position})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _open_cursor(store: SqlLogStore, cursor: str) -> tuple[int, int]:
    bad = BadRequest(
        "the cursor is not one this endpoint gave out; start again without it",
        code="bad_cursor",
    )
    try:
        opened = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(opened, dict) or opened.get("k") != "f":
        raise bad
    size, at = opened.get("size"), opened.get("at")
    if type(size) is not int or type(at) is not int or not 0 <= at <= size < 2**63:
        raise bad
    if store.checkpoint(size) is None:
        raise bad
    return size, at


# --- what concerns the agents ---------------------------------------------------------


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _when(value: Any) -> datetime | None:
    try:
        found = _DATETIME.validate_python(value)
    except ValidationError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _claimed_at(record: dict[str, Any], fallback: datetime) -> datetime:
    """The time the record claims for itself (top level, or an in-toto predicate's)."""
    for place in (record, record.get("predicate") if isinstance(record, dict) else None):
        if isinstance(place, dict):
            for name in _TIME_FIELDS:
                if name in place and (found := _when(place[name])) is not None:
                    return found
    return fallback


class _Concern:
    """Decides, entry by entry, whether it concerns the asked agents (and which)."""

    def __init__(
        self,
        conn: Connection,
        asked: Sequence[str],
        exposed: dict[str, set[str]] | None = None,
    ) -> None:
        self.asked = set(asked)
        self.exposed = exposed or {}  # disclosure id -> the asked agents it affects
        orders = conn.execute(
            select(kill_orders.c.order_id, kill_orders.c.agent_id).where(
                kill_orders.c.agent_id.in_(list(asked))
            )
        ).all()
        covered = conn.execute(
            select(kill_order_agents.c.order_id, kill_order_agents.c.agent_id).where(
                kill_order_agents.c.agent_id.in_(list(asked))
            )
        ).all()
        self.orders: dict[str, set[str]] = {}
        for row in [*orders, *covered]:
            self.orders.setdefault(str(row.order_id), set()).add(str(row.agent_id))
        self.models: dict[str, set[str]] = {}
        for row in conn.execute(
            select(agents_table.c.id, agents_table.c.record).where(
                agents_table.c.id.in_(list(asked))
            )
        ):
            model = orjson.loads(row.record).get("model")
            if model:
                self.models.setdefault(str(model), set()).add(str(row.id))

    def named(self, record: Any, *, models: bool = False) -> list[str]:
        found: set[str] = set()
        for text in _strings(record):
            if text in self.asked:
                found.add(text)
            elif models and text in self.models:
                found |= self.models[text]
        return sorted(found)

    def classify(
        self, payload_type: str, record: dict[str, Any]
    ) -> tuple[EventKind, list[str]] | None:
        if payload_type == FORWARD_TYPE:  # another member's territorial order, as sent here
            payload_type, record = ORDER_TYPE, _forwarded_order(record) or {}
        if payload_type == DECISION_TYPE:
            agent = str(record.get("agent", ""))
            if agent not in self.asked:
                return None
            halt = record.get("kind") == "halt" or record.get("action") == "halt"
            return ("halt" if halt else "decision"), [agent]
        if payload_type == ORDER_TYPE:
            kind: EventKind = "lift" if record.get("op") == "reinstate" else "order"
            named = {str(record["agent_id"])} & self.asked if record.get("agent_id") else set()
            for key in (record.get("order_id"), record.get("lifts")):
                named |= self.orders.get(str(key), set())
            return (kind, sorted(named)) if named else None
        if payload_type == REGISTRY_TYPE:
            subject = record.get("agent_id") or (record.get("agent") or {}).get("id")
            return ("registry", [str(subject)]) if subject in self.asked else None
        if payload_type in _NAMING:
            named_agents = set(self.named(record, models=payload_type in _MODEL_NAMING))
            if payload_type == REDTEAM_TYPE:  # its agents are in the exposures, not the entry
                named_agents |= self.exposed.get(str(record.get("disclosure")), set())
            return (_NAMING[payload_type], sorted(named_agents)) if named_agents else None
        return None


def _exposed(engine: Engine, asked: Sequence[str], reader: Principal | None) -> dict[str, set[str]]:
    """The disclosures each asked agent is exposed to, as ``reader`` may see them."""
    reads, who = RedteamReads(engine), Reader.of(reader)
    found: dict[str, set[str]] = {}
    for agent in asked:
        for exposure in reads.exposures_of(agent, who):
            found.setdefault(str(exposure["disclosure"]), set()).add(agent)
    return found


def _forwarded_order(record: dict[str, Any]) -> dict[str, Any] | None:
    """The kill order a forward carries (its envelope's payload), if it parses."""
    try:
        order = record["order"]
        inner = orjson.loads(base64.b64decode(order["payload"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None
    if not isinstance(inner, dict) or order.get("payloadType") != ORDER_TYPE:
        return None
    return inner


def _subject(payload_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """What an entry is about: a forward's order, else the record itself."""
    inner = _forwarded_order(record) if payload_type == FORWARD_TYPE else None
    return record if inner is None else inner


def _decoded(data: bytes) -> tuple[dict[str, Any], str] | None:
    try:
        envelope = orjson.loads(data)
        record = orjson.loads(base64.b64decode(envelope["payload"]))
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None  # not a DSSE entry of JSON: no agent's evidence
    return (record, str(envelope.get("payloadType", ""))) if isinstance(record, dict) else None


def _sequenced(value: float) -> datetime:
    return datetime.fromtimestamp(float(value), UTC)


def _examine(concern: _Concern, rows: Iterable[Any]) -> list[_Found]:
    kept = []
    for row in rows:
        decoded = _decoded(bytes(row.data))
        if decoded is None:
            continue
        record, payload_type = decoded
        verdict = concern.classify(payload_type, record)
        if verdict is None:
            continue
        sequenced = _sequenced(row.sequenced_at)
        refs = record.get("refs") if payload_type == DECISION_TYPE else None
        kept.append(
            _Found(
                index=int(row.idx),
                data=bytes(row.data),
                leaf=bytes(row.leaf_hash),
                payload_type=payload_type,
                kind=verdict[0],
                agents=verdict[1],
                at=_claimed_at(_subject(payload_type, record), sequenced),
                sequenced_at=sequenced,
                record=record,
                refs=list(refs) if isinstance(refs, list) else [],
            )
        )
    return kept


def _summary(found: _Found, clear: dict[str, Any] | None) -> str:
    who = ", ".join(found.agents)
    record = (clear or {}).get("record") or _subject(found.payload_type, found.record)
    if found.kind in ("decision", "halt"):
        action = record.get("action")
        return f"{who} {found.kind}" + (f": {action}" if action else " (committed)")
    if found.kind in ("order", "lift"):
        scope = record.get("territory") or record.get("scope", "")
        return f"{record.get('op', found.kind)} of {who} ({scope}) by {record.get('actor', '?')}"
    if found.kind == "registry":
        return f"{record.get('op', 'registry change')} of {who} by {record.get('actor', '?')}"
    return f"{found.kind.replace('_', ' ')} naming {who}"


# --- the scan -------------------------------------------------------------------------


def _chunk(
    first: int, end: int, asked: Sequence[str], indexed: bool
) -> Select[tuple[int, bytes, bytes, float]]:
    """The entries in ``[first, end)`` that may concern an asked agent: of an evidence
    type and, where the decision index covers them, only the asked agents' decisions."""
    conditions: list[ColumnElement[bool]] = [
        entries.c.idx >= first,
        entries.c.idx < end,
        entries.c.payload_type.in_(_EVIDENCE),
    ]
    if indexed:
        theirs = select(DECISIONS.table.c.idx).where(
            DECISIONS.table.c.agent_id.in_(list(asked)),
            DECISIONS.table.c.idx >= first,
            DECISIONS.table.c.idx < end,
        )
        conditions.append(or_(entries.c.payload_type != DECISION_TYPE, entries.c.idx.in_(theirs)))
    return (
        select(entries.c.idx, entries.c.data, entries.c.leaf_hash, entries.c.sequenced_at)
        .where(and_(*conditions))
        .order_by(entries.c.idx)
    )


def _read(
    conn: Connection, first: int, stop: int, concern: _Concern, limit: int, *, indexed: bool
) -> tuple[list[_Found], int]:
    """The kept entries from ``first``, at most ``limit``; and where the next page starts."""
    kept: list[_Found] = []
    position = first
    while position < stop and len(kept) < limit:
        end = min(stop, position + _CHUNK)
        rows = conn.execute(_chunk(position, end, sorted(concern.asked), indexed)).all()
        for found in _examine(concern, rows):
            kept.append(found)
            if len(kept) == limit:
                return kept, found.index + 1
        position = end
    return kept, position


def _events(
    parts: LogParts,
    conn: Connection,
    kept: Sequence[_Found],
    size: int,
    clear: dict[int, dict[str, Any]],
) -> list[Event]:
    proofs = parts.proofs.inclusion(conn, [f.index for f in kept], size) if kept else []
    return [
        Event(
            node=parts.node,
            origin=parts.origin,
            index=found.index,
            leaf_hash=found.leaf.hex(),
            data=base64.b64encode(found.data).decode(),
            payload_type=found.payload_type,
            kind=found.kind,
            agents=found.agents,
            at=found.at,
            sequenced_at=found.sequenced_at,
            summary=_summary(found, clear.get(found.index)),
            record=found.record,
            clear=clear.get(found.index),
            refs=found.refs,
            tree_size=size,
            proof=[h.hex() for h in proof],
        )
        for found, proof in zip(kept, proofs, strict=True)
    ]


def _opened(
    parts: LogParts, reader: Principal | None, kept: Sequence[_Found]
) -> dict[int, dict[str, Any]]:
    """The clear records ``reader`` may read among the decisions (the read is logged)."""
    items: list[dict[str, Any]] = [
        {"index": f.index, "decision": f.record} for f in kept if f.payload_type == DECISION_TYPE
    ]
    parts.disclosure.disclose(reader, items)  # erased ones simply stay committed here
    return {int(i["index"]): dict(i["clear"]) for i in items if "clear" in i}


def _counterparties(
    kept: Sequence[_Found], opened: dict[int, dict[str, Any]], asked: Sequence[str]
) -> list[str]:
    """The agents the clear records name (a version-1 record is clear in the log itself)."""
    records = [c.get("record") or {} for c in opened.values()]
    records += [
        f.record for f in kept if f.payload_type == DECISION_TYPE and f.record.get("v") == 1
    ]
    named = {str(c) for record in records for c in record.get("counterparties") or ()}
    return sorted(named - set(asked))


def _registry(
    parts: LogParts, reader: Principal | None, asked: Sequence[str], first: int, size: int
) -> list[RegistryState]:
    """Each asked agent's record as the window opened (every entry before ``first``)."""
    if first == 0 or size == 0:
        return [
            RegistryState(agent_id=a, as_of=0, status="unregistered", record={}, event=None)
            for a in asked
        ]
    as_of = first - 1
    states = []
    for agent_id in asked:
        try:
            found = parts.queries.agent(agent_id, as_of=as_of, reader=reader)
        except NotFound:
            states.append(
                RegistryState(
                    agent_id=agent_id, as_of=as_of, status="unregistered", record={}, event=None
                )
            )
            continue
        with read_tx(parts.engine) as conn:
            row = conn.execute(
                select(
                    entries.c.idx, entries.c.data, entries.c.leaf_hash, entries.c.sequenced_at
                ).where(entries.c.idx == int(found["entry_index"]))
            ).one()
            concern = _Concern(conn, [agent_id])
            kept = _examine(concern, [row])
            events = _events(parts, conn, kept, size, {})
        states.append(
            RegistryState(
                agent_id=agent_id,
                as_of=as_of,
                status=str(found["status"]),
                record=dict(found["record"]),
                event=events[0] if events else None,
            )
        )
    return states


def _skew(parts: LogParts, size: int) -> Skew:
    """The widest gap between this node's checkpoint times and the witnesses' cosignature
    timestamps on them, over its recent checkpoints up to ``size``."""
    with read_tx(parts.engine) as conn:
        recent = (
            select(checkpoints.c.size, checkpoints.c.created_at)
            .where(checkpoints.c.size <= size)
            .order_by(checkpoints.c.size.desc())
            .limit(_SKEW_SAMPLES)
            .subquery()
        )
        rows = conn.execute(
            select(
                func.max(func.abs(cosignatures.c.timestamp - recent.c.created_at)),
                func.count(),
            ).join(recent, recent.c.size == cosignatures.c.size)
        ).one()
    widest, samples = rows
    return Skew(node=parts.node, bound_s=float(widest or 0.0), samples=int(samples or 0))


def _indices(request: SliceRequest) -> list[int]:
    return sorted(set(request.indices))


def _first_size(parts: LogParts, request: SliceRequest) -> int | None:
    """The tree size a first page answers against: the one asked for, else the newest
    checkpoint cosigned by a quorum, else (none yet) the newest."""
    if request.tree_size is not None or parts.quorum <= 0:
        return request.tree_size
    return parts.store.newest_cosigned(parts.quorum)


def scan(parts: LogParts, request: SliceRequest, reader: Principal | None) -> Slice:
    """This node's slice for ``request`` as ``reader`` may see it (None: the public)."""
    if request.end <= request.start:
        raise BadRequest(
            "the window's end must be after its start ([start, end))", code="bad_window"
        )
    if request.cursor is None:
        stored = parts.store.checkpoint(_first_size(parts, request))
        if stored is None and request.tree_size is not None:
            raise BadRequest(
                f"this node signed no checkpoint of size {request.tree_size}; "
                "leave tree_size out for the newest",
                code="unknown_tree_size",
            )
        size = 0 if stored is None else stored.size
        position = None
    else:
        size, position = _open_cursor(parts.store, request.cursor)
    asked = sorted(set(request.agents))
    parts.read_index.catch_up(DECISIONS.name, budget=_READ_BUDGET)
    exposed = _exposed(parts.engine, asked, reader)
    with read_tx(parts.engine) as conn:
        first, stop = window_range(conn, request.start, request.end, size)
        concern = _Concern(conn, asked, exposed)
        indexed = parts.read_index.covered(DECISIONS.name) >= stop  # else: read them all
        kept, following = _read(
            conn,
            first if position is None else max(first, position),
            stop,
            concern,
            request.limit,
            indexed=indexed,
        )
        named = [i for i in _indices(request) if i < size] if position is None else []
        if named:
            rows = conn.execute(
                select(
                    entries.c.idx, entries.c.data, entries.c.leaf_hash, entries.c.sequenced_at
                ).where(entries.c.idx.in_(named))
            ).all()
            extra = [
                f
                for f in _examine(_Everything(conn, asked), rows)
                if f.index not in {k.index for k in kept}
            ]
            kept = sorted([*kept, *extra], key=lambda f: f.index)
    opened = _opened(parts, reader, kept)
    with read_tx(parts.engine) as conn:
        events = _events(parts, conn, kept, size, opened)
    return Slice(
        node=parts.node,
        origin=parts.origin,
        tree_size=size,
        checkpoint=checkpoint_note(parts.store, size) if size else "",
        events=events,
        registry=_registry(parts, reader, asked, first, size) if position is None else [],
        counterparties=_counterparties(kept, opened, asked),
        skew=_skew(parts, size),
        next_cursor=_cursor(size, following) if following < stop else None,
    )


class _Everything(_Concern):
    """Named entries (a ref's target) are kept whatever they are, as ``decision`` evidence
    when nothing more specific fits."""

    def classify(
        self, payload_type: str, record: dict[str, Any]
    ) -> tuple[EventKind, list[str]] | None:
        found = super().classify(payload_type, record)
        if found is not None:
            return found
        agent = record.get("agent") if payload_type == DECISION_TYPE else None
        kind: EventKind = "halt" if record.get("kind") == "halt" else "decision"
        if payload_type != DECISION_TYPE:
            kind = _NAMING.get(payload_type, "registry")
        return kind, [str(agent)] if agent else []

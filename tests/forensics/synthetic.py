"""A genuine forensic timeline without node processes, for the bundle tests and benchmark.

``synthetic_timeline(n)`` founds a four-member alliance with real Ed25519 keys (roster,
log, witness and entry keys), grows each member's Merkle log from real DSSE entries
(registry entries, plain and committed decisions, halts, kill orders and their lifts;
decisions name the entry of another member's log they answer), signs each log's
checkpoint with its log key, has every member's witness cosign it, and proves each event
into it. Events are created in one global sequence, so that sequence is a causal order:
every ref points back, and each log's indexes rise. Only the clock is chosen (a fixed
start), so the bundle is the same shape every run; keys and salts are fresh.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from custodes.federation.roster import Party, SignedRoster, found_roster
from custodes.forensics.models import Event, Incident, RegistryState, Skew, Timeline
from custodes.ledger.checkpoint import Checkpoint, sign_checkpoint
from custodes.ledger.cosignature import CosignatureSigner, cosign
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import inclusion_proof, leaf_hash, node_hash, root_of
from custodes.ledger.note import Note, NoteSigner, parse_note
from custodes.ledger.payloads import EntryRef
from custodes.registry.models import AgentRecord, AgentRegister, KillOrder
from custodes.registry.service import ORDER_TYPE, REGISTRY_TYPE
from custodes.sdk.decisions import sign_committed_decision, sign_decision

__all__ = ["CODES", "START", "Member", "SyntheticAlliance", "synthetic_timeline"]

CODES = ("GB", "FR", "DE", "CA")
START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
_STEP = timedelta(seconds=2)


@dataclass
class Member:
    """One member's keys and its log (entry bytes in index order)."""

    code: str
    log_key: NoteSigner
    witness: CosignatureSigner
    node_key: EnvelopeSigner
    roster_key: EnvelopeSigner
    entries: list[bytes] = field(default_factory=list)
    hashes: list[bytes] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"{self.code.lower()}.alliance.test/log"

    def party(self) -> Party:
        return Party(
            code=self.code,
            name=f"Member {self.code}",
            status="member",
            urls=[f"http://127.0.0.1:{8000 + CODES.index(self.code)}"],
            origin=self.origin,
            log_vkey=self.log_key.vkey(),
            witness_vkey=self.witness.vkey(),
            entry_key=base64.b64encode(self.node_key.public_key).decode(),
            roster_key=base64.b64encode(self.roster_key.public_key).decode(),
        )

    def append(self, envelope: Envelope) -> int:
        data = envelope.to_bytes()
        self.entries.append(data)
        self.hashes.append(leaf_hash(data))
        return len(self.entries) - 1


def _member(code: str) -> Member:
    origin = f"{code.lower()}.alliance.test/log"
    return Member(
        code=code,
        log_key=NoteSigner.generate(origin),
        witness=CosignatureSigner.generate(f"{origin}/witness"),
        node_key=EnvelopeSigner.generate(),
        roster_key=EnvelopeSigner.generate(),
    )


def _levels(hashes: list[bytes]) -> list[list[bytes]]:
    """Every perfect node of the tree, by level (the NodeReader of an in-memory log)."""
    levels = [list(hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return levels


@dataclass
class _Pending:
    """An event before its proof: where it is and what it says."""

    member: Member
    index: int
    kind: str
    agents: list[str]
    at: datetime
    summary: str
    clear: dict[str, Any] | None = None
    refs: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class SyntheticAlliance:
    """The members, the roster and what was logged; ``timeline()`` proves it all."""

    members: dict[str, Member]
    roster: SignedRoster
    agents: list[str]
    agent_keys: dict[str, EnvelopeSigner]
    pending: list[_Pending] = field(default_factory=list)
    registry: list[_Pending] = field(default_factory=list)

    def checkpoint(self, member: Member, at: datetime) -> tuple[str, Checkpoint]:
        root = root_of(member.hashes)
        checkpoint = Checkpoint(member.origin, len(member.hashes), root)
        signed = parse_note(sign_checkpoint(checkpoint, member.log_key))
        stamp = int(at.timestamp())
        cosigs = [cosign(signed.text, m.witness, stamp) for m in self.members.values()]
        note = Note(signed.text, (*signed.signatures, *cosigs))
        return note.to_bytes().decode(), checkpoint

    def timeline(self, *, clear: bool = True) -> Timeline:
        end = START + _STEP * (len(self.pending) + 2)
        notes, proofs = {}, {}
        for code, member in self.members.items():
            notes[code], _ = self.checkpoint(member, end)
            levels = _levels(member.hashes)
            size = len(member.hashes)
            proofs[code] = (size, lambda lv, ix, levels=levels: levels[lv][ix])
        events = [self._event(p, proofs, clear) for p in self.pending]
        keys = {(e.origin, e.index): f"{e.node}:{e.index}" for e in events}
        edges = [
            (f"{e.node}:{e.index}", keys[(r["origin"], r["index"])])
            for e in events
            for r in e.refs
            if (r["origin"], r["index"]) in keys
        ]
        return Timeline(
            incident=Incident(agents=self.agents[:2], depth=1, start=START, end=end),
            asked_by="regulator:gb" if clear else None,
            generated_at=end + timedelta(minutes=1),
            agents=self.agents,
            roster=self.roster.document,
            checkpoints=notes,
            origins={c: m.origin for c, m in self.members.items()},
            events=events,
            registry=[self._state(p, proofs) for p in self.registry],
            skew=[Skew(node=c, bound_s=0.5, samples=4) for c in self.members],
            edges=edges,
            concurrent=[],
            gaps=[],
        )

    def _event(self, p: _Pending, proofs: dict[str, Any], clear: bool) -> Event:
        size, reader = proofs[p.member.code]
        data = p.member.entries[p.index]
        envelope = orjson.loads(data)
        return Event(
            node=p.member.code,
            origin=p.member.origin,
            index=p.index,
            leaf_hash=p.member.hashes[p.index].hex(),
            data=base64.b64encode(data).decode(),
            payload_type=envelope["payloadType"],
            kind=p.kind,  # type: ignore[arg-type]
            agents=p.agents,
            at=p.at,
            sequenced_at=p.at + timedelta(milliseconds=40),
            summary=p.summary,
            record=orjson.loads(base64.b64decode(envelope["payload"])),
            clear=p.clear if clear else None,
            refs=p.refs,
            tree_size=size,
            proof=[h.hex() for h in inclusion_proof(p.index, size, reader)],
        )

    def _state(self, p: _Pending, proofs: dict[str, Any]) -> RegistryState:
        event = self._event(p, proofs, True)
        return RegistryState(
            agent_id=p.agents[0],
            as_of=p.index,
            status="active",
            record=event.record["agent"],
            event=event,
        )


def _agent_id(code: str, n: int) -> str:
    return f"urn:custodes:{code.lower()}:agent:trader-{n}"


def _register(alliance: SyntheticAlliance, member: Member, agent: str) -> None:
    record = AgentRecord(
        id=agent,
        name=agent.rsplit(":", 1)[1],
        version="1.0",
        operator=f"operator:acme-{member.code.lower()}",
        home_jurisdiction=member.code,
        sector="finance",
        risk_tier="high",
        autonomy_level=3,
        intended_purpose="Automated trading on behalf of its operator",
    )
    at = START - timedelta(days=1)
    key = base64.b64encode(alliance.agent_keys[agent].public_key).decode()
    actor = f"operator:acme-{member.code.lower()}"
    change = AgentRegister(actor=actor, at=at, agent=record, keys=(key,))
    payload = change.model_dump_json(exclude_none=True).encode()
    index = member.append(sign_envelope(REGISTRY_TYPE, payload, [member.node_key]))
    alliance.registry.append(
        _Pending(member, index, "registry", [agent], at, f"{agent} registered")
    )


def _found(agents_per_member: int) -> SyntheticAlliance:
    members = {code: _member(code) for code in CODES}
    roster = found_roster(
        "Synthetic alliance",
        [m.party() for m in members.values()],
        [m.roster_key for m in members.values()],
        expires=START + timedelta(days=365),
    )
    agents = [_agent_id(c, n) for n in range(agents_per_member) for c in CODES]
    keys = {a: EnvelopeSigner.generate() for a in agents}
    alliance = SyntheticAlliance(members, roster, agents, keys)
    for agent in agents:
        _register(alliance, members[agent.split(":")[2].upper()], agent)
    return alliance


def _decision(alliance: SyntheticAlliance, step: int, agent: str, last: _Pending | None) -> None:
    member = alliance.members[agent.split(":")[2].upper()]
    at = START + _STEP * step
    other = alliance.agents[(alliance.agents.index(agent) + 1) % len(alliance.agents)]
    refs = []
    if last is not None and last.member is not member:
        leaf = last.member.hashes[last.index].hex()
        refs = [EntryRef(origin=last.member.origin, index=last.index, leaf_hash=leaf)]
    halt = step % 97 == 13
    action = "halt" if halt else ("buy" if step % 2 else "sell")
    rationale = f"step {step}: {'guard tripped' if halt else 'price crossed the band'} <ok>"
    args: dict[str, Any] = {"decided_at": at, "refs": refs, "idempotency_key": f"k-{step}"}
    clear: dict[str, Any] | None = None
    if step % 3:
        opened = sign_committed_decision(
            alliance.agent_keys[agent], agent, action, rationale, [other], **args
        )
        envelope, clear = opened.envelope, opened.opening.model_dump()
    else:
        envelope = sign_decision(
            alliance.agent_keys[agent], agent, action, rationale, [other], **args
        )
    index = member.append(envelope)
    summary = f"{agent} {action}"
    kind = "halt" if halt else "decision"
    ref_dicts = [r.model_dump() for r in refs]
    alliance.pending.append(
        _Pending(member, index, kind, [agent], at, summary, clear=clear, refs=ref_dicts)
    )


def _order(alliance: SyntheticAlliance, step: int, agent: str, lifts: str | None) -> str:
    member = alliance.members[CODES[step % len(CODES)]]
    at = START + _STEP * step
    order_id = f"order-{step:06d}"
    order = KillOrder(
        op="reinstate" if lifts else "suspend",
        order_id=order_id,
        agent_id=agent,
        reason="erratic trading in the window" if not lifts else "operator fixed the fault",
        actor=f"regulator:{member.code.lower()}",
        at=at,
        lifts=lifts,
    )
    payload = order.model_dump_json(exclude_none=True).encode()
    index = member.append(sign_envelope(ORDER_TYPE, payload, [member.node_key]))
    kind = "lift" if lifts else "order"
    summary = f"{'lift of ' + lifts if lifts else 'suspend'} {agent}"
    alliance.pending.append(_Pending(member, index, kind, [agent], at, summary))
    return order_id


def synthetic_alliance(events: int = 40, agents_per_member: int = 2) -> SyntheticAlliance:
    """An alliance whose logs hold ``events`` incident events (plus registry entries)."""
    alliance = _found(agents_per_member)
    open_order: tuple[str, str] | None = None  # order id, agent
    last: _Pending | None = None
    for step in range(events):
        agent = alliance.agents[step % len(alliance.agents)]
        if step % 50 == 25:
            open_order = (_order(alliance, step, agent, None), agent)
        elif step % 50 == 35 and open_order is not None:
            _order(alliance, step, open_order[1], open_order[0])
            open_order = None
        else:
            _decision(alliance, step, agent, last)
        last = alliance.pending[-1]
    return alliance


def synthetic_timeline(events: int = 40, *, clear: bool = True) -> Timeline:
    """A verified-to-be-genuine :class:`Timeline` of ``events`` events across four members."""
    return synthetic_alliance(events).timeline(clear=clear)

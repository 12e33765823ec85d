"""Assemble a recognition case from this node's log and the peers' mirrors.

What a recognition rests on is logged across the alliance: the accreditation grant on
the accrediting party's log, the evidence (evaluation results, kill-switch tests) on
whichever logs the auditor published it to, the agent in its home's registry, drift
alerts anywhere. Each is read where it is, here (``node.store``, ``node.log``) or in
that party's verified mirror (``PeerMirror``), with the inclusion proof of every
evidence entry and the origin's cosigned checkpoint, so ``check_recognition`` (pure)
can prove each one. A mirror that is missing or behind leaves its part unknown, and
the check fails closed on it (a later round retries).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, select

from custodes.audits.attestation import open_attestation
from custodes.audits.models import Accreditation, Failure, LogRef
from custodes.audits.recognition import EvidenceProof, RecognitionCase
from custodes.audits.scheme import SignedScheme
from custodes.audits.service import FoundAttestation
from custodes.audits.store import (
    accreditations,
    agent_digests,
    alerts_since,
    attestations,
)
from custodes.errors import CustodesError
from custodes.federation.lookup import home_party
from custodes.federation.mirror import PeerMirror
from custodes.federation.roster import quorum_of
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.node import Node
from custodes.registry.models import AgentRecord
from custodes.registry.projection import load_agent
from custodes.store.db import read_tx

__all__ = ["AuditCases"]


class AuditCases:
    """The ``CaseSource`` of a node: its own database first, then every peer mirror."""

    def __init__(
        self,
        node: Node,
        mirror_of: Callable[[str], PeerMirror | None],
        *,
        trusted: frozenset[str] | None = None,
    ) -> None:
        self._node, self._mirror_of, self.trusted = node, mirror_of, trusted

    @property
    def here(self) -> str:
        return self._node.federation.jurisdiction

    def engines(self) -> Iterator[tuple[str, Engine]]:
        """(party code, database) for this node and every party mirrored here."""
        yield self.here, self._node.engine
        roster = self._node.federation.roster
        for party in [] if roster is None else roster.body.parties:
            if party.code == self.here:
                continue
            mirror = self._mirror_of(party.code)
            if mirror is not None:
                yield party.code, mirror.engine

    def engine_of(self, code: str) -> Engine | None:
        if code == self.here:
            return self._node.engine
        mirror = self._mirror_of(code)
        return None if mirror is None else mirror.engine

    def _origin(self, code: str) -> str:
        if code == self.here:
            return self._node.settings.origin
        roster = self._node.federation.roster
        party = None if roster is None else roster.body.party(code)
        return code if party is None else party.origin

    # -- attestations -----------------------------------------------------------------
    def attestation(self, aid: str) -> FoundAttestation | None:
        rows: list[tuple[str, dict[str, Any]]] = []
        for code, engine in self.engines():
            with read_tx(engine) as conn:
                row = conn.execute(select(attestations).where(attestations.c.id == aid)).first()
            if row is not None:
                rows.append((code, dict(row._mapping)))
        return _found(aid, rows, self._origin) if rows else None

    def attestations(self) -> list[FoundAttestation]:
        """Every attestation visible here, each once (by id)."""
        by_id: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for code, engine in self.engines():
            with read_tx(engine) as conn:
                for row in conn.execute(select(attestations)).all():
                    by_id.setdefault(row.id, []).append((code, dict(row._mapping)))
        return [_found(aid, rows, self._origin) for aid, rows in sorted(by_id.items())]

    # -- accreditations ----------------------------------------------------------------
    def accreditation(self, acc_id: str) -> tuple[Accreditation, str] | None:
        """The grant and its status, from the accrediting party's log (named in the id)."""
        engine = self.engine_of(acc_id.split(":")[1].upper())
        if engine is None:
            return None
        with read_tx(engine) as conn:
            row = conn.execute(select(accreditations).where(accreditations.c.id == acc_id)).first()
        if row is None:
            return None
        return Accreditation.model_validate_json(row.grant), str(row.status)

    def accreditations(self) -> list[dict[str, Any]]:
        """Every accreditation logged anywhere visible here."""
        found: list[dict[str, Any]] = []
        for code, engine in self.engines():
            with read_tx(engine) as conn:
                rows = conn.execute(
                    select(accreditations).where(accreditations.c.jurisdiction == code)
                ).all()
            found.extend(_accreditation_json(dict(r._mapping)) for r in rows)
        return found

    # -- the case -----------------------------------------------------------------------
    def case(
        self,
        envelope: Envelope,
        *,
        scheme: SignedScheme,
        countersignatures_needed: int | None,
        now: datetime,
    ) -> RecognitionCase:
        opened = open_attestation(envelope)
        predicate = opened.predicate
        roster = self._node.federation.roster
        assert roster is not None
        granted = self.accreditation(predicate.auditor.accreditation)
        agent, model_digest, card_digest = self._agent(predicate.agent.id)
        found = self.attestation(opened.id)
        return RecognitionCase(
            envelope=envelope,
            accreditation=None if granted is None else granted[0],
            accreditation_status=None if granted is None else granted[1],
            evidence=self._evidence_of([item.entry for item in predicate.evidence]),
            agent=agent,
            model_digest=model_digest,
            card_digest=card_digest,
            drift_alerts=self.alerts(predicate.agent.id, predicate.issued.timestamp()),
            attestation_status="active" if found is None else found.status,
            scheme=scheme,
            roster=roster,
            recogniser=self.here,
            trusted=self.trusted,
            countersignatures_needed=countersignatures_needed,
            now=now,
        )

    def agent_known(self, agent_id: str) -> bool:
        return self._agent(agent_id)[0] is not None

    def _agent(self, agent_id: str) -> tuple[AgentRecord | None, str | None, str | None]:
        try:
            home = home_party(self._node.federation.roster, agent_id).code
        except CustodesError:
            return None, None, None
        engine = self.engine_of(home)
        if engine is None:
            return None, None, None
        with read_tx(engine) as conn:
            try:
                agent = load_agent(conn, agent_id)
            except CustodesError:
                return None, None, None
            model_digest, card_digest = agent_digests(conn, agent_id)
        return agent, model_digest, card_digest

    def alerts(self, agent_id: str, since: float) -> list[dict[str, Any]]:
        """Drift alerts on the agent since ``since``, on every log visible here."""
        found: list[dict[str, Any]] = []
        for code, engine in self.engines():
            with read_tx(engine) as conn:
                found.extend({**a, "party": code} for a in alerts_since(conn, agent_id, since))
        return found

    def _party_of_origin(self, origin: str) -> str | None:
        if origin == self._node.settings.origin:
            return self.here
        roster = self._node.federation.roster
        return next(
            (p.code for p in ([] if roster is None else roster.body.parties) if p.origin == origin),
            None,
        )

    def _evidence_of(self, refs: list[LogRef]) -> dict[tuple[str, int], EvidenceProof]:
        """Each ref's entry, proof and checkpoint; one checkpoint per log for the case."""
        notes: dict[str, bytes | None] = {}
        found: dict[tuple[str, int], EvidenceProof] = {}
        for ref in refs:
            code = self._party_of_origin(ref.origin)
            if code == self.here:
                if code not in notes:
                    notes[code] = self._final_checkpoint()
                found[(ref.origin, ref.index)] = self._own_evidence(ref, notes[code])
            else:
                found[(ref.origin, ref.index)] = self._mirrored_evidence(ref, code)
        return found

    def _mirrored_evidence(self, ref: LogRef, code: str | None) -> EvidenceProof:
        mirror = None if code is None else self._mirror_of(code)
        if mirror is None:
            return EvidenceProof(ref, None, (), None)
        state = mirror.refresh()
        if state.note is None or ref.index >= state.size:
            return EvidenceProof(ref, mirror.entry(ref.index), (), state.note)
        return EvidenceProof(
            ref, mirror.entry(ref.index), mirror.inclusion(ref.index, state.size), state.note
        )

    def _own_evidence(self, ref: LogRef, note: bytes | None) -> EvidenceProof:
        node = self._node
        size = None if note is None else node.checkpoint_size(note)
        with read_tx(node.engine) as conn:
            data = node.store.entry_data(conn, ref.index, ref.index + 1)
            proof = (
                node.proofs.inclusion(conn, [ref.index], size)[0]
                if data and size is not None and ref.index < size
                else []
            )
        return EvidenceProof(ref, data[0] if data else None, list(proof), note)

    def _final_checkpoint(self) -> bytes | None:
        """Our newest checkpoint cosigned by as many witnesses as the members' quorum
        (the newest one, while none is)."""
        node = self._node
        roster = node.federation.roster
        members = 0 if roster is None else len(roster.body.members())
        size = node.store.newest_cosigned(quorum_of(members)) if members else None
        stored = node.store.checkpoint(size)
        if stored is None:
            return node.served_checkpoint()
        return stored.note + "".join(node.store.cosignature_lines(stored.size)).encode()

    # -- the grounds of a recognition in force ------------------------------------------
    def grounds(self, row: dict[str, Any], found: FoundAttestation | None) -> list[Failure]:
        """Why the recognition ``row`` (a recognitions row) no longer stands: the
        attestation withdrawn, its accreditation suspended or withdrawn, a drift alert
        on the agent since the attestation was issued, the agent's digests changed."""
        if found is None:
            return []  # its attestation's log is not mirrored here yet: nothing to say
        predicate = open_attestation(found.envelope).predicate
        gone: list[Failure] = []
        if found.status != "active":
            gone.append(
                Failure(condition="withdrawn", reason=f"attestation {found.id} was withdrawn")
            )
        granted = self.accreditation(predicate.auditor.accreditation)
        if granted is not None and granted[1] != "active":
            gone.append(
                Failure(
                    condition="accreditation",
                    reason=f"accreditation {predicate.auditor.accreditation} is {granted[1]}",
                )
            )
        alerts = self.alerts(predicate.agent.id, predicate.issued.timestamp())
        if alerts:
            first = alerts[0]
            gone.append(
                Failure(
                    condition="drift",
                    reason=f"a drift alert on {predicate.agent.id} was logged by "
                    f"{first['party']} at index {first['entry_index']} after the audit",
                )
            )
        agent, model_digest, card_digest = self._agent(predicate.agent.id)
        if agent is not None and (model_digest, card_digest) != (
            row["model_digest"],
            row["card_digest"],
        ):
            gone.append(
                Failure(
                    condition="subject",
                    reason=f"{predicate.agent.id}'s registered model or AgentCard changed "
                    "since it was recognised",
                )
            )
        return gone


def _found(
    aid: str, rows: list[tuple[str, dict[str, Any]]], origin_of: Callable[[str], str]
) -> FoundAttestation:
    """One attestation from its rows on several logs: every signature known on any of
    them (members may countersign on their own nodes); as its entry, the first copy on
    the accrediting party's log (the auditor publishes there), else on the lowest party
    code's (the same choice on every node); withdrawn if withdrawn on any log."""
    best = max(rows, key=lambda r: r[1]["signatures"])[1]
    accrediting = str(best["accreditation"]).split(":")[1].upper()
    code, first = min(rows, key=lambda r: (r[0] != accrediting, r[0]))
    status = "withdrawn" if any(r["status"] != "active" for _, r in rows) else "active"
    return FoundAttestation(
        id=aid,
        envelope=_union([best["envelope"], *(r["envelope"] for _, r in rows)]),
        entry=LogRef(
            origin=origin_of(code), index=first["entry_index"], leaf_hash=first["leaf_hash"]
        ),
        party=code,
        agent_id=first["agent_id"],
        status=status,
        expires=float(first["expires"]),
    )


def _union(envelopes: list[str]) -> Envelope:
    """One envelope with every distinct signature of its copies (same payload)."""
    first = parse_envelope(_json(envelopes[0]))
    signatures = list(first.signatures)
    for text in envelopes[1:]:
        for signature in parse_envelope(_json(text)).signatures:
            if signature not in signatures:
                signatures.append(signature)
    return Envelope(first.payload_type, first.payload, tuple(signatures))


def _json(text: str) -> Any:
    return orjson.loads(text)


def _accreditation_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "jurisdiction": row["jurisdiction"],
        "auditor": row["auditor"],
        "status": row["status"],
        "valid_until": row["valid_until"],
        "reason": row["reason"],
        "grant": _json(row["grant"]),
        "entry_index": row["entry_index"],
        "updated_index": row["updated_index"],
    }

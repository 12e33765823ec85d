"""Evidence of an audit: each entry proven in its log under a final checkpoint, and read.

An attestation references its evidence (origin, index, leaf hash); a recogniser gets
each entry as its origin's log (or a verified mirror of it) holds it, with an RFC 6962
inclusion proof and that log's checkpoint note with its cosignatures. The entry counts
when its leaf hash is the one referenced, the proof reaches the checkpoint's root, the
checkpoint is signed by the origin's log key per the roster and is final (cosigned by a
quorum of members, ``federation.finality``), and the record is the kind, agent and
figures the attestation states.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from custodes.audits.models import (
    KILLSWITCH_TEST_TYPE,
    AuditPredicate,
    EvidenceItem,
    Failure,
    KillswitchTest,
    LogRef,
)
from custodes.audits.scheme import summarise_result, summarise_test
from custodes.errors import CustodesError
from custodes.evals.results import RESULT_TYPE, EvalResult
from custodes.federation.finality import FinalityResult, is_final
from custodes.federation.roster import Party, SignedRoster
from custodes.ledger.checkpoint import Checkpoint, parse_checkpoint
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.merkle import leaf_hash, verify_inclusion
from custodes.ledger.note import parse_note

__all__ = ["EvidenceProof", "ProvenEvidence", "prove_evidence"]


@dataclass(frozen=True)
class EvidenceProof:
    """One evidence entry as its origin log holds it, with the proof of its inclusion."""

    ref: LogRef
    entry: bytes | None  # the entry as logged (None: not found)
    proof: Sequence[bytes]  # RFC 6962 inclusion proof hashes
    checkpoint: bytes | None  # the origin log's signed checkpoint note, with cosignatures


@dataclass
class ProvenEvidence:
    """The evidence entries read from their logs (those whose leaf hash matched)."""

    results: list[EvalResult] = field(default_factory=list)
    tests: list[KillswitchTest] = field(default_factory=list)


def _origin_party(roster: SignedRoster, origin: str) -> Party | None:
    return next((p for p in roster.body.parties if p.origin == origin), None)


def _located(roster: SignedRoster, ref: LogRef, proof: EvidenceProof | None) -> str | None:
    """Why the entry at ``ref`` cannot even be proven (None: entry, hash and log are there)."""
    where = f"{ref.origin} #{ref.index}"
    if proof is None or proof.entry is None:
        return f"evidence {where} was not found in that log"
    if leaf_hash(proof.entry).hex() != ref.leaf_hash:
        return (
            f"evidence {where}: the logged entry's leaf hash is not the one the attestation states"
        )
    if proof.checkpoint is None:
        return f"evidence {where}: no checkpoint of its log is available to prove it"
    if _origin_party(roster, ref.origin) is None:
        return f"evidence {where}: {ref.origin} is the log of no party on the roster"
    return None


_Finality = dict[tuple[bytes, str], "tuple[FinalityResult, Checkpoint] | str"]


def _finality(
    cache: _Finality, note: bytes, party: Party, roster: SignedRoster
) -> tuple[FinalityResult, Checkpoint] | str:
    """``is_final`` of one checkpoint, once per check (evidence entries share checkpoints)."""
    key = (note, party.code)
    if key not in cache:
        try:
            cache[key] = (is_final(note, party, roster), parse_checkpoint(parse_note(note).text))
        except CustodesError as exc:
            cache[key] = exc.message
    return cache[key]


def _inclusion(
    roster: SignedRoster, ref: LogRef, proof: EvidenceProof | None, cache: _Finality
) -> str | None:
    """Why the entry at ``ref`` is not proven under a final checkpoint (None: it is)."""
    missing = _located(roster, ref, proof)
    party = _origin_party(roster, ref.origin)
    if missing is not None or party is None or proof is None:
        return missing
    if proof.entry is None or proof.checkpoint is None:
        return missing
    where = f"{ref.origin} #{ref.index}"
    opened = _finality(cache, proof.checkpoint, party, roster)
    if isinstance(opened, str):
        return (
            f"evidence {where}: the checkpoint is not signed by {party.code}'s log key ({opened})"
        )
    final, checkpoint = opened
    try:
        verify_inclusion(
            leaf_hash(proof.entry), ref.index, checkpoint.size, proof.proof, checkpoint.root_hash
        )
    except CustodesError as exc:
        return (
            f"evidence {where}: the inclusion proof does not verify against the checkpoint "
            f"of size {checkpoint.size} ({exc.message})"
        )
    if not final.final:
        cosigned = ", ".join(final.cosigners) or "no member"
        return (
            f"evidence {where}: its checkpoint of size {final.size} is cosigned by {cosigned}; "
            f"{final.needed} members must cosign it to make it final"
        )
    return None


def _entry(
    item: EvidenceItem, data: bytes, agent_id: str
) -> tuple[EvalResult | KillswitchTest | None, str | None]:
    where = f"evidence {item.entry.origin} #{item.entry.index}"
    try:
        envelope = parse_envelope(orjson.loads(data))
    except (orjson.JSONDecodeError, CustodesError):
        return None, f"{where} is not a DSSE envelope"
    expected = RESULT_TYPE if item.kind == "eval_result" else KILLSWITCH_TEST_TYPE
    if envelope.payload_type != expected:
        return (
            None,
            f"{where} is a {envelope.payload_type} entry, not the {item.kind} the attestation says",
        )
    try:
        if item.kind == "eval_result":
            result = EvalResult.model_validate_json(envelope.payload)
            parsed: EvalResult | KillswitchTest = result
            summary = summarise_result(result)
            tested = result.agent_id
        else:
            test = KillswitchTest.model_validate_json(envelope.payload)
            parsed, summary, tested = test, summarise_test(test), test.agent_id
    except ValueError:
        return None, f"{where} is not a valid {item.kind} record"
    if tested != agent_id:
        return None, f"{where} tests {tested or 'no agent'}, not {agent_id}"
    if summary != item.summary:
        stated, actual = item.summary.model_dump(), summary.model_dump()
        differ = sorted(k for k in actual if actual[k] != stated[k])
        return None, (
            f"{where}: the attestation states {', '.join(f'{k}={stated[k]}' for k in differ)}; "
            f"the entry says {', '.join(f'{k}={actual[k]}' for k in differ)}"
        )
    return parsed, None


def prove_evidence(
    predicate: AuditPredicate,
    proofs: Mapping[tuple[str, int], EvidenceProof],
    roster: SignedRoster,
) -> tuple[ProvenEvidence, list[Failure]]:
    """Prove and read every evidence entry ``predicate`` names.

    Failures: ``evidence_inclusion`` (not proven under a final checkpoint of its log)
    and ``evidence`` (not the record, agent or figures the predicate states). Entries
    whose bytes are the ones named are read even when their proof fails, so the
    thresholds are still evaluated and reported.
    """
    proven = ProvenEvidence()
    failures: list[Failure] = []
    cache: _Finality = {}
    for item in predicate.evidence:
        ref = item.entry
        proof = proofs.get((ref.origin, ref.index))
        why = _inclusion(roster, ref, proof, cache)
        if why is not None:
            failures.append(Failure(condition="evidence_inclusion", reason=why))
        if proof is None or proof.entry is None or leaf_hash(proof.entry).hex() != ref.leaf_hash:
            continue  # nothing that the attestation names to read
        record, problem = _entry(item, proof.entry, predicate.agent.id)
        if problem is not None:
            failures.append(Failure(condition="evidence", reason=problem))
        elif isinstance(record, EvalResult):
            proven.results.append(record)
        elif isinstance(record, KillswitchTest):
            proven.tests.append(record)
    return proven, failures

"""SLSA Verification Summary Attestations for recognitions (reference/federation.md §6.2).

When a member recognises (or refuses) an attestation its node issues a VSA: an in-toto
Statement v1 with ``predicateType`` ``https://slsa.dev/verification_summary/v1`` whose
subjects are the agent's model and AgentCard digests, signed in DSSE by the node's
entry key (the key the roster names for that party). Anyone holding the roster
verifies it offline with ``verify_vsa``, in the order the SLSA spec lists: signature,
subject, predicateType, verifier, resourceUri, result, levels.

The verifier id of party ``GB`` is ``urn:custodes:verifier:gb`` (``verifier_id``);
``verify_vsa`` accepts exactly that id for a VSA signed by GB's node key. The level is a
custom one (SLSA: custom values must not start with ``SLSA_``):
``CUSTODES_<SECTOR>[_<TIER>]_RECOGNISED_<JURISDICTION>``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

from custodes.audits.models import (
    STATEMENT_TYPE,
    STATEMENT_V1,
    VSA_PREDICATE,
    LogRef,
    RecognitionDecision,
)
from custodes.audits.scheme import SignedScheme
from custodes.errors import BadRequest
from custodes.federation.roster import SignedRoster
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.ed25519 import verify_strict

__all__ = ["build_vsa", "recognised_level", "sign_vsa", "verifier_id", "verify_vsa"]

_HEX = re.compile(r"^[0-9a-f]{64}$")
_TIME = "%Y-%m-%dT%H:%M:%SZ"


def verifier_id(party: str) -> str:
    """The VSA verifier id of ``party``'s node."""
    return f"urn:custodes:verifier:{party.lower()}"


def recognised_level(sector: str, jurisdiction: str, risk_tier: str | None = None) -> str:
    """The custom verified level of a recognition, e.g.
    ``CUSTODES_FINANCE_CRITICAL_RECOGNISED_FR``."""
    parts = ["CUSTODES", sector, *([risk_tier] if risk_tier else []), "RECOGNISED", jurisdiction]
    return "_".join(re.sub(r"[^A-Z0-9]+", "_", p.upper()) for p in parts)


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")


def build_vsa(
    *,
    decision: RecognitionDecision,
    verifier_id: str,
    attestation_digest: str,
    attestation_entry: LogRef,
    scheme: SignedScheme,
    time_verified: datetime,
    risk_tier: str | None = None,
) -> dict[str, Any]:
    """The VSA Statement of ``decision`` (PASSED for a recognition, FAILED otherwise)."""
    subject = [
        {"name": f"{prefix}{decision.agent_id}", "digest": {"sha256": _hex(digest)}}
        for prefix, digest in (
            ("model:", decision.model_digest),
            ("agentcard:", decision.card_digest),
        )
        if digest is not None
    ]
    if not subject:
        raise BadRequest(
            "a verification summary needs the agent's model or card digest as its subject",
            code="vsa_invalid",
            status=422,
        )
    passed = decision.op == "recognise"
    level = recognised_level(decision.sector, decision.jurisdiction, risk_tier)
    return {
        "_type": STATEMENT_V1,
        "subject": subject,
        "predicateType": VSA_PREDICATE,
        "predicate": {
            "verifier": {"id": verifier_id},
            "timeVerified": time_verified.astimezone(UTC).strftime(_TIME),
            "resourceUri": decision.agent_id,
            "policy": {
                "uri": f"urn:custodes:scheme:{scheme.id}:{scheme.version}",
                "digest": {"sha256": _hex(scheme.digest())},
            },
            "inputAttestations": [
                {
                    "uri": f"{attestation_entry.origin}/{attestation_entry.index}",
                    "digest": {"sha256": _hex(attestation_digest)},
                }
            ],
            "verificationResult": "PASSED" if passed else "FAILED",
            "verifiedLevels": [level] if passed else ["FAILED"],
        },
    }


def sign_vsa(statement: Mapping[str, Any], node: EnvelopeSigner) -> Envelope:
    """The DSSE envelope of a VSA, signed by the recognising node's entry key."""
    return sign_envelope(STATEMENT_TYPE, canonical_dumps(dict(statement)), [node])


def _invalid(step: str, message: str) -> BadRequest:
    return BadRequest(
        f"the verification summary fails at {step}: {message}",
        code="vsa_invalid",
        status=422,
        detail={"step": step},
    )


def _signature(envelope: Envelope, roster: SignedRoster, party: str) -> None:
    found = roster.party(party)
    if found is None:
        raise _invalid("signature", f"{party} is not a party of roster version {roster.version}")
    key = found.entry_public_key()
    message = envelope.signed_bytes()
    if not any(verify_strict(key, s.sig, message) for s in envelope.signatures):
        raise _invalid("signature", f"no signature verifies under {party}'s node entry key")


def _statement(envelope: Envelope) -> dict[str, Any]:
    if envelope.payload_type != STATEMENT_TYPE:
        raise _invalid("subject", f"the payloadType is not {STATEMENT_TYPE}")
    try:
        statement = orjson.loads(envelope.payload)
    except orjson.JSONDecodeError as exc:
        raise _invalid("subject", "the payload is not JSON") from exc
    if not isinstance(statement, dict) or statement.get("_type") != STATEMENT_V1:
        raise _invalid("subject", f"the payload is not an in-toto Statement ({STATEMENT_V1})")
    return statement


def _subjects(statement: Mapping[str, Any], expected: Collection[str] | None) -> None:
    subjects = statement.get("subject")
    digests: set[str] = set()
    if isinstance(subjects, list):
        for item in subjects:
            value = item.get("digest", {}).get("sha256") if isinstance(item, dict) else None
            if isinstance(value, str) and _HEX.match(value):
                digests.add(value)
    if not digests or not isinstance(subjects, list) or len(digests) < len(subjects):
        raise _invalid("subject", "every subject needs a sha256 digest")
    missing = sorted({_hex(d) for d in expected or ()} - digests)
    if missing:
        raise _invalid("subject", f"the subject does not name sha256:{missing[0]}")


def verify_vsa(
    envelope: Envelope,
    roster: SignedRoster,
    party: str,
    *,
    expected_resource: str | None = None,
    expected_digests: Collection[str] | None = None,
) -> dict[str, Any]:
    """Verify a VSA issued by ``party``'s node; return its Statement.

    Raises ``BadRequest`` (422 ``vsa_invalid``, ``detail["step"]``) at the first failed
    step, in the SLSA order.
    """
    _signature(envelope, roster, party)
    statement = _statement(envelope)
    _subjects(statement, expected_digests)
    if statement.get("predicateType") != VSA_PREDICATE:
        raise _invalid("predicateType", f"it is not {VSA_PREDICATE}")
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise _invalid("predicateType", "the predicate is not an object")
    verifier = predicate.get("verifier")
    stated = verifier.get("id") if isinstance(verifier, dict) else None
    if stated != verifier_id(party):
        raise _invalid("verifier", f"the verifier {stated!r} is not {verifier_id(party)!r}")
    resource = predicate.get("resourceUri")
    if not isinstance(resource, str) or not resource.startswith("urn:custodes:"):
        raise _invalid("resourceUri", "it is not a Custodes agent URN")
    if expected_resource is not None and resource != expected_resource:
        raise _invalid("resourceUri", f"it is {resource}, not {expected_resource}")
    if predicate.get("verificationResult") != "PASSED":
        raise _invalid("verificationResult", f"it is {predicate.get('verificationResult')!r}")
    levels = predicate.get("verifiedLevels")
    if not isinstance(levels, list) or not levels or not all(isinstance(v, str) for v in levels):
        raise _invalid("verifiedLevels", "a PASSED summary lists its verified levels")
    return statement

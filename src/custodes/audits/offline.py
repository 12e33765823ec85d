"""What anyone can check offline about an attestation (``custodes audit verify``).

With the attestation, the auditor's accreditation grant (or only its key) and a roster:
the shape, the auditor's signature, the expiry, the grant's auditor, validity, scope and
conflicts, and that a member granted it. Evidence inclusion, thresholds and subject
digests need the logs and the registry: ``custodes.audits.recognition``.
"""

from __future__ import annotations

import base64
from datetime import datetime

from custodes.audits.attestation import OpenedAttestation, open_attestation, signed_by
from custodes.audits.models import Accreditation, Failure
from custodes.errors import CustodesError
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import Envelope

__all__ = ["check_offline"]


def _fail(condition: str, reason: str) -> Failure:
    return Failure(condition=condition, reason=reason)


def check_offline(
    envelope: Envelope,
    *,
    auditor_key: bytes | None,
    accreditation: Accreditation | None,
    roster: SignedRoster | None,
    now: datetime,
) -> tuple[OpenedAttestation | None, list[Failure]]:
    """What anyone can check with the attestation, the auditor's key or grant and a roster:
    shape, the auditor's signature, the validity window, the grant's auditor, validity,
    scope and conflicts, and (with a roster) that a member granted it.

    Evidence inclusion, thresholds and subjects need the logs: ``check_recognition``.
    """
    try:
        opened = open_attestation(envelope)
    except CustodesError as exc:
        return None, [_fail("attestation", exc.message)]
    key = auditor_key
    if key is None and accreditation is not None and accreditation.auditor_key is not None:
        key = base64.b64decode(accreditation.auditor_key)
    failures: list[Failure] = []
    if key is None:
        failures.append(
            _fail("signature", "no auditor key: give the accreditation grant or the auditor key")
        )
    elif not signed_by(envelope, key):
        failures.append(_fail("signature", "no signature verifies under the auditor's key"))
    predicate = opened.predicate
    if predicate.expires <= now:
        failures.append(_fail("expired", f"the attestation expired at {predicate.expires}"))
    if accreditation is not None:
        failures += _offline_accreditation(opened, accreditation, roster, now)
    return opened, failures


def _offline_accreditation(
    opened: OpenedAttestation, grant: Accreditation, roster: SignedRoster | None, now: datetime
) -> list[Failure]:
    named = opened.predicate.auditor
    failures: list[Failure] = []
    if (grant.id, grant.auditor) != (named.accreditation, named.id):
        failures.append(
            _fail(
                "accreditation",
                f"the grant is {grant.id} for {grant.auditor}; the attestation names "
                f"{named.accreditation} for {named.id}",
            )
        )
    if grant.valid_until is not None and grant.valid_until <= now:
        failures.append(
            _fail("accreditation", f"accreditation {grant.id} lapsed at {grant.valid_until}")
        )
    if roster is not None:
        party = roster.party(grant.jurisdiction)
        if party is None or party.status != "member":
            failures.append(
                _fail(
                    "accreditation",
                    f"{grant.jurisdiction}, which granted {grant.id}, is not a member of roster "
                    f"version {roster.version}",
                )
            )
    agent = opened.predicate.agent
    if grant.scope is not None and agent.sector not in grant.scope.sectors:
        failures.append(
            _fail("scope", f"accreditation {grant.id} does not cover sector {agent.sector}")
        )
    if agent.operator in grant.affiliations:
        failures.append(
            _fail(
                "conflict_of_interest",
                f"auditor {grant.auditor} is affiliated with the agent's operator {agent.operator}",
            )
        )
    return failures

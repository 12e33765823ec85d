"""Checking a counterparty before an agent acts with it (docs/design/0028, agentic trade).

``Counterparty.check(id, lease, sector)`` verifies, against the alliance roster alone:

1. **registry**: the counterparty is active at its home and not suspended in the
   checker's jurisdiction (the alliance look-up, proof verified: ``verify_lookup``);
2. **lease**: the lease envelope the counterparty presents is signed by its home node's
   entry key (as the roster names it), names it, is within ``nbf..exp`` now and covers
   the checker's jurisdiction;
3. **recognition**: an attestation for ``sector`` is recognised and in force, for the
   counterparty's current model and card digests, both in the checker's jurisdiction
   and at its home (``GET .../recognitions``, each decision proven:
   ``verify_recognitions``).

The lease is checked every time (a signature, no I/O); what the network said (1 and 3)
is kept for at most half the counterparty's lease lifetime and never past its ``exp``,
so a withdrawal or suspension reaches the checker within half a lease. Only passes are
kept: a refusal is asked again next time. A refusal lists every failed condition, one
sentence each, and is recorded through the checker's recorder as a decision
``counterparty_refused`` naming the counterparty, the reasons as its rationale.

Counterparties of the checker's own jurisdiction are checked the same way: there the
two jurisdictions coincide, and the home's own recognition is what its gate requires.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from pydantic import ValidationError

from custodes.audits.models import Failure
from custodes.errors import CustodesError
from custodes.federation.lookup import home_of, verify_lookup
from custodes.federation.recognition_lookup import VerifiedRecognitions, verify_recognitions
from custodes.federation.roster import SignedRoster
from custodes.killswitch.leases import LEASE_TYPE, LeasePayload
from custodes.ledger.dsse import key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.errors import LedgerError

__all__ = [
    "REFUSED_ACTION",
    "AllianceReader",
    "Counterparty",
    "CounterpartyRefused",
    "RefusalRecorder",
    "Verdict",
    "check_lease",
    "recognition_failures",
]

REFUSED_ACTION = "counterparty_refused"


class AllianceReader(Protocol):
    """What the checks read through: ``custodes.client.Client`` (any alliance node)."""

    def alliance_agent(
        self, agent_id: str, roster: SignedRoster | None = None
    ) -> dict[str, Any]: ...

    def alliance_recognitions(self, agent_id: str) -> dict[str, Any]: ...


class RefusalRecorder(Protocol):
    """Where refusals are recorded: ``custodes.sdk.DecisionRecorder``."""

    def record(
        self,
        action: str,
        rationale: str,
        counterparties: Sequence[str] = (),
        jurisdiction: str | None = None,
        inputs_digest: str | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class Verdict:
    """The outcome of one check: ``ok``, or every failed condition with its reason."""

    counterparty: str
    sector: str
    reasons: tuple[Failure, ...]
    checked_at: float
    cached: bool = False
    recorded: str | None = None  # the refusal decision's idempotency key
    lease: LeasePayload | None = None

    @property
    def ok(self) -> bool:
        return not self.reasons

    def rationale(self) -> str:
        return " ".join(r.reason for r in self.reasons)


class CounterpartyRefused(CustodesError):
    """The counterparty failed a check; ``detail['reasons']`` lists every failure."""

    code = "counterparty_refused"
    status = 403

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(
            f"{verdict.counterparty} refused: {verdict.rationale()}",
            detail={
                "counterparty": verdict.counterparty,
                "reasons": [r.model_dump() for r in verdict.reasons],
                "recorded": verdict.recorded,
            },
        )
        self.verdict = verdict


def _fail(condition: str, reason: str) -> Failure:
    return Failure(condition=condition, reason=reason)


# -- 2. the lease (pure) ------------------------------------------------------------------
def _lease_payload(envelope_json: Any, home_key: bytes) -> LeasePayload:
    obj = orjson.loads(envelope_json) if isinstance(envelope_json, str | bytes) else envelope_json
    envelope = parse_envelope(obj)
    if envelope.payload_type != LEASE_TYPE:
        raise ValueError(f"it is a {envelope.payload_type} envelope, not a lease")
    keyid = key_thumbprint(home_key)
    verify_envelope(envelope, lambda kid: home_key if kid == keyid else None)
    return LeasePayload.model_validate_json(envelope.payload)


def check_lease(
    envelope_json: Any,
    roster: SignedRoster,
    counterparty: str,
    jurisdiction: str,
    now: float,
) -> tuple[LeasePayload | None, list[Failure]]:
    """The presented lease, if it verifies under the home node's entry key, and what is
    wrong with it for acting with ``counterparty`` in ``jurisdiction`` at ``now``."""
    home = roster.body.party(home_of(counterparty))
    if home is None or not home.active:
        return None, [_fail("lease", f"{counterparty}'s home is not an active alliance party.")]
    try:
        lease = _lease_payload(envelope_json, home.entry_public_key())
    except (LedgerError, ValidationError, ValueError, TypeError) as exc:
        return None, [
            _fail(
                "lease",
                f"The lease presented is not a lease signed by {home.code}'s node entry key "
                f"({exc}).",
            )
        ]
    failures = []
    if lease.agent_id != counterparty:
        failures.append(_fail("lease", f"The lease presented is {lease.agent_id}'s, not theirs."))
    if not lease.nbf <= now < lease.exp:
        failures.append(
            _fail(
                "lease_expired",
                f"The lease presented is not live now (valid {lease.nbf}..{lease.exp}).",
            )
        )
    if jurisdiction not in lease.jurisdictions:
        failures.append(
            _fail(
                "lease_territory",
                f"The lease presented does not cover {jurisdiction} "
                f"(it covers {', '.join(lease.jurisdictions) or 'nothing'}).",
            )
        )
    return lease, failures


# -- 1. the registry --------------------------------------------------------------------
def _registry_failures(
    reader: AllianceReader, roster: SignedRoster, counterparty: str, jurisdiction: str
) -> list[Failure]:
    try:
        checked = verify_lookup(reader.alliance_agent(counterparty), roster)
    except CustodesError as exc:
        return [_fail("registry", f"Its registry record could not be verified: {exc.message}")]
    failures = []
    if checked.status != "active":
        failures.append(_fail("registry", f"It is {checked.status} in its home registry."))
    elif {"*", jurisdiction} & set(checked.suspended_in):
        failures.append(_fail("suspended", f"It is suspended in {jurisdiction}."))
    if checked.stale:
        failures.append(
            _fail("stale", f"Its registry data is stale ({checked.age_s:.0f} s old); ask again.")
        )
    return failures


# -- 3. the recognitions (pure over a verified answer) -----------------------------------
def _missing(verified: VerifiedRecognitions, code: str, sector: str) -> Failure:
    counterparty = verified.agent_id
    mine = verified.of(code, sector)
    latest = max(mine, key=lambda d: d.index, default=None)
    if latest is not None and latest.record.op == "withdraw":
        grounds = " ".join(r.reason for r in latest.record.reasons)
        return _fail(
            "withdrawn",
            f"{code} withdrew its recognition of {counterparty} for {sector}: {grounds}",
        )
    if latest is not None and latest.record.op == "refuse":
        return _fail("refused", f"{code} refused to recognise {counterparty} for {sector}.")
    if latest is not None:
        return _fail("expired", f"{code}'s recognition of {counterparty} for {sector} expired.")
    other = [d for d in verified.decisions if d.party == code and d.record.sector == sector]
    if other:
        last = max(other, key=lambda d: d.index)
        withdrawn = ""
        if last.record.op == "withdraw":  # and withdrawn since: say on what grounds
            grounds = " ".join(r.reason for r in last.record.reasons)
            withdrawn = f"; it has since withdrawn that recognition: {grounds}"
        return _fail(
            "digests",
            f"{code} recognised {counterparty} for {sector} for another model or AgentCard "
            f"than its current ones{withdrawn}.",
        )
    return _fail(
        "recognition",
        f"{counterparty} holds no attestation for {sector} recognised in {code}.",
    )


def recognition_failures(
    verified: VerifiedRecognitions, sector: str, jurisdiction: str, now: float
) -> list[Failure]:
    """What stops ``verified.agent_id`` acting in ``sector`` with ``jurisdiction``: no
    recognition in force there or at its home (with why), or stale data."""
    failures = []
    for code in dict.fromkeys((jurisdiction, verified.home)):
        if verified.stale(code):
            failures.append(
                _fail("stale", f"{code}'s recognitions are not known fresh here; ask again.")
            )
        if verified.in_force(code, sector, now) is None:
            failures.append(_missing(verified, code, sector))
    return failures


def _recognitions(
    reader: AllianceReader, roster: SignedRoster, counterparty: str
) -> VerifiedRecognitions | Failure:
    try:
        return verify_recognitions(reader.alliance_recognitions(counterparty), roster)
    except CustodesError as exc:
        return _fail("recognition", f"Its recognitions could not be verified: {exc.message}")


# -- the runtime ---------------------------------------------------------------------------
@dataclass
class _Cache:
    until: dict[tuple[str, str], float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fresh(self, key: tuple[str, str], now: float) -> bool:
        with self.lock:
            return self.until.get(key, 0.0) > now

    def keep(self, key: tuple[str, str], until: float) -> None:
        with self.lock:
            self.until[key] = until


class Counterparty:
    """One agent's counterparty checks, cached and recorded (see the module docstring)."""

    def __init__(
        self,
        client: AllianceReader,
        roster: SignedRoster,
        me: str,
        recorder: RefusalRecorder | None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.roster, self.me = client, roster, me
        self.jurisdiction = home_of(me)
        self.recorder, self.clock = recorder, clock
        self._cache = _Cache()

    def check(self, counterparty_id: str, lease: Any, sector: str) -> Verdict:
        """The verdict on acting with ``counterparty_id`` (presenting ``lease``, its lease
        envelope) in ``sector``; a refusal is recorded before it is returned."""
        now = self.clock()
        payload, failures = check_lease(lease, self.roster, counterparty_id, self.jurisdiction, now)
        key = (counterparty_id, sector)
        cached = not failures and self._cache.fresh(key, now)
        if not cached:
            failures += self._remote(counterparty_id, sector, now)
        verdict = Verdict(counterparty_id, sector, tuple(failures), now, cached, lease=payload)
        if verdict.ok and payload is not None and not cached:
            self._cache.keep(key, min(now + (payload.exp - payload.nbf) / 2, payload.exp))
        return verdict if verdict.ok else self._record(verdict)

    def require(self, counterparty_id: str, lease: Any, sector: str) -> Verdict:
        """``check``, raising CounterpartyRefused (after recording it) on a refusal."""
        verdict = self.check(counterparty_id, lease, sector)
        if not verdict.ok:
            raise CounterpartyRefused(verdict)
        return verdict

    def _remote(self, counterparty_id: str, sector: str, now: float) -> list[Failure]:
        failures = _registry_failures(self.client, self.roster, counterparty_id, self.jurisdiction)
        verified = _recognitions(self.client, self.roster, counterparty_id)
        if isinstance(verified, Failure):
            return [*failures, verified]
        return failures + recognition_failures(verified, sector, self.jurisdiction, now)

    def _record(self, verdict: Verdict) -> Verdict:
        if self.recorder is None:
            return verdict
        key = self.recorder.record(
            REFUSED_ACTION,
            verdict.rationale(),
            counterparties=[verdict.counterparty],
            jurisdiction=self.jurisdiction,
        )
        return Verdict(
            verdict.counterparty,
            verdict.sector,
            verdict.reasons,
            verdict.checked_at,
            verdict.cached,
            key,
            verdict.lease,
        )

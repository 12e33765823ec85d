"""Deployment gates: a critical-sector agent acts only where its audit is recognised.

A critical agent (``AgentRecord.critical``: a critical sector or the critical risk tier)
gets no lease in a jurisdiction unless that jurisdiction recognises, and keeps in force,
an attestation for the agent's *current* model and AgentCard digests (DESIGN.md 4.9,
docs/design/0028). ``evaluate_gate`` decides that from what it is given (pure: no I/O):
``in_force(code)`` the recognition in force there for these digests, or None, and
``decisions(code)`` that party's latest decision rows on the agent's attestations (the
``recognitions`` projection), read only for a refused jurisdiction, to say which gate
failed and what would satisfy it:

- ``no_recognition``: the party has decided nothing on any attestation of the agent;
- ``refused``: it refused the attestations it was shown;
- ``withdrawn``: it withdrew its recognition for these digests (with its grounds);
- ``expired``: its recognition for these digests ran out;
- ``model_changed``: it recognised an attestation for other digests (a new model or
  card since the audit).

Non-critical agents pass every gate untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from custodes.audits.store import InForce
from custodes.registry.models import AgentRecord

__all__ = ["GateFailure", "GateResult", "evaluate_gate", "what_satisfies"]

Digests = tuple[str | None, str | None]


@dataclass(frozen=True)
class GateFailure:
    """Why one jurisdiction's gate is shut, and what would open it."""

    jurisdiction: str
    condition: str  # no_recognition | refused | withdrawn | expired | model_changed
    reason: str
    satisfy: str

    @property
    def sentence(self) -> str:
        """One sentence a person can act on: the failed gate, then the remedy."""
        return f"{self.reason}; what would satisfy it: {self.satisfy}"

    def to_json(self) -> dict[str, str]:
        return {
            "jurisdiction": self.jurisdiction,
            "condition": self.condition,
            "reason": self.reason,
            "satisfy": self.satisfy,
        }


@dataclass(frozen=True)
class GateResult:
    """The jurisdictions the agent may be leased in, and why each other one is not."""

    allowed: frozenset[str]
    failures: tuple[GateFailure, ...] = ()
    recognitions: Mapping[str, InForce] = field(default_factory=dict)

    @property
    def gated(self) -> dict[str, str]:
        """Each refused jurisdiction with its sentence (what a lease carries)."""
        return {f.jurisdiction: f.sentence for f in self.failures}

    def message(self) -> str:
        return " ".join(f"{f.jurisdiction}: {f.sentence}." for f in self.failures)


def _digest_text(kind: str, digest: str | None) -> str:
    return f"{kind} {digest}" if digest else f"no registered {kind}"


def what_satisfies(digests: Digests, jurisdiction: str) -> str:
    """The attestation that would open ``jurisdiction``'s gate for these digests."""
    model, card = digests
    return (
        "an attestation under the common scheme for "
        f"{_digest_text('model', model)} and {_digest_text('card', card)}, "
        f"recognised by {jurisdiction} and in force"
    )


def evaluate_gate(
    agent: AgentRecord,
    places: Iterable[str],
    digests: Digests,
    in_force: Callable[[str], InForce | None],
    *,
    decisions: Callable[[str], Sequence[Mapping[str, Any]]] = lambda _code: (),
    now: float,
) -> GateResult:
    """Which of ``places`` the agent may act in under the deployment gate (see module)."""
    wanted = frozenset(places)
    if not agent.critical:
        return GateResult(wanted)
    allowed: set[str] = set()
    failures: list[GateFailure] = []
    found: dict[str, InForce] = {}
    for code in sorted(wanted):
        recognition = in_force(code)
        if recognition is not None:
            allowed.add(code)
            found[code] = recognition
            continue
        failures.append(_failure(agent.id, code, digests, decisions(code), now))
    return GateResult(frozenset(allowed), tuple(failures), found)


def _failure(
    agent_id: str,
    code: str,
    digests: Digests,
    rows: Sequence[Mapping[str, Any]],
    now: float,
) -> GateFailure:
    condition, reason = _classify(agent_id, code, digests, rows, now)
    return GateFailure(code, condition, reason, what_satisfies(digests, code))


def _matches(row: Mapping[str, Any], digests: Digests) -> bool:
    return (row.get("model_digest"), row.get("card_digest")) == digests


def _grounds(row: Mapping[str, Any]) -> str:
    """The reasons a decision record gives, joined (empty when it gives none)."""
    try:
        reasons = orjson.loads(row.get("decision") or b"{}").get("reasons") or []
    except (orjson.JSONDecodeError, AttributeError):
        return ""
    return "; ".join(str(r.get("reason")) for r in reasons if isinstance(r, dict))


def _classify(
    agent_id: str,
    code: str,
    digests: Digests,
    rows: Sequence[Mapping[str, Any]],
    now: float,
) -> tuple[str, str]:
    """The failed gate's condition and reason, the most telling row first: a decision
    on these digests (withdrawn, expired, refused), then one on other digests."""
    latest = sorted(rows, key=lambda r: int(r.get("entry_index") or 0), reverse=True)
    same = [r for r in latest if _matches(r, digests)]
    for row in same:
        status = row.get("status")
        if status == "withdrawn":
            grounds = _grounds(row)
            why = f" ({grounds})" if grounds else ""
            return "withdrawn", f"{code} withdrew its recognition of {agent_id}'s audit{why}"
        if status == "recognised" and float(row.get("valid_until") or 0) <= now:
            return "expired", f"{code}'s recognition of {agent_id}'s audit has expired"
    if any(r.get("status") == "refused" for r in same):
        grounds = _grounds(next(r for r in same if r.get("status") == "refused"))
        why = f" ({grounds})" if grounds else ""
        return "refused", f"{code} refused to recognise {agent_id}'s audit{why}"
    others = [r for r in latest if not _matches(r, digests) and r.get("status") == "recognised"]
    if others:
        return (
            "model_changed",
            f"{code} recognised an audit of {agent_id} for model "
            f"{others[0].get('model_digest')} and card {others[0].get('card_digest')}, "
            "not its current ones (the model or card changed since)",
        )
    return "no_recognition", f"{code} recognises no audit of {agent_id}"

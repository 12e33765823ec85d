"""The deployment gate's decision (pure): which jurisdictions a critical agent may be
leased in, and for each other one which gate failed and what would satisfy it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from custodes.audits.gates import evaluate_gate
from custodes.audits.store import InForce
from custodes.registry.models import AgentRecord

AGENT = "urn:custodes:gb:agent:trader"
MODEL = "sha256:" + "aa" * 32
CARD = "sha256:" + "cc" * 32
NEW_MODEL = "sha256:" + "bb" * 32
NOW = 1_800_000_000.0


def _agent(sector: str = "finance", tier: str = "high") -> AgentRecord:
    return AgentRecord(
        id=AGENT,
        name="trader",
        version="1",
        operator="operator:acme",
        home_jurisdiction="GB",
        operating_jurisdictions=("FR", "DE"),
        sector=sector,
        risk_tier=tier,  # type: ignore[arg-type]
        autonomy_level=3,
        intended_purpose="trading",
    )


def _in_force(code: str) -> InForce:
    return InForce(
        code, "sha256:" + "11" * 32, AGENT, "finance", MODEL, CARD, NOW + 60, False, 7, "00" * 32
    )


def _row(
    code: str,
    status: str,
    *,
    model: str = MODEL,
    until: float = NOW + 60,
    index: int = 5,
    reasons: Sequence[str] = (),
) -> dict[str, Any]:
    decision = {"reasons": [{"condition": "drift", "reason": r} for r in reasons]}
    return {
        "jurisdiction": code,
        "status": status,
        "model_digest": model,
        "card_digest": CARD,
        "valid_until": until,
        "entry_index": index,
        "decision": orjson.dumps(decision).decode(),
    }


def _gate(
    agent: AgentRecord,
    recognised: set[str],
    rows: Mapping[str, list[dict[str, Any]]] | None = None,
) -> Any:
    return evaluate_gate(
        agent,
        {"GB", "FR", "DE"},
        (MODEL, CARD),
        lambda code: _in_force(code) if code in recognised else None,
        decisions=lambda code: (rows or {}).get(code, []),
        now=NOW,
    )


def test_a_non_critical_agent_passes_every_gate_untouched() -> None:
    result = _gate(_agent(sector="retail"), set())
    assert result.allowed == {"GB", "FR", "DE"}
    assert result.failures == ()


def test_the_critical_risk_tier_is_gated_whatever_the_sector() -> None:
    result = _gate(_agent(sector="retail", tier="critical"), {"GB"})
    assert result.allowed == {"GB"}
    assert {f.jurisdiction for f in result.failures} == {"FR", "DE"}


def test_recognised_everywhere_allows_everywhere() -> None:
    result = _gate(_agent(), {"GB", "FR", "DE"})
    assert result.allowed == {"GB", "FR", "DE"}
    assert set(result.recognitions) == {"GB", "FR", "DE"}


def test_each_refused_jurisdiction_names_its_gate_and_the_remedy() -> None:
    rows = {
        "FR": [_row("FR", "withdrawn", reasons=["a drift alert on the agent"])],
        "DE": [_row("DE", "recognised", model=NEW_MODEL[:-2] + "00")],
    }
    result = _gate(_agent(), {"GB"}, rows)
    failures = {f.jurisdiction: f for f in result.failures}
    assert failures["FR"].condition == "withdrawn"
    assert "a drift alert on the agent" in failures["FR"].reason
    assert failures["DE"].condition == "model_changed"
    for code, failure in failures.items():
        assert MODEL in failure.satisfy
        assert CARD in failure.satisfy
        assert f"recognised by {code}" in failure.satisfy
        assert result.gated[code] == failure.sentence


def test_an_expired_recognition_is_told_from_a_missing_one() -> None:
    rows = {"FR": [_row("FR", "recognised", until=NOW - 1)]}
    failures = {f.jurisdiction: f for f in _gate(_agent(), {"GB"}, rows).failures}
    assert failures["FR"].condition == "expired"
    assert failures["DE"].condition == "no_recognition"


def test_a_refusal_gives_its_grounds() -> None:
    rows = {"FR": [_row("FR", "refused", reasons=["the evidence misses a threshold"])]}
    failure = next(f for f in _gate(_agent(), {"GB", "DE"}, rows).failures)
    assert (failure.jurisdiction, failure.condition) == ("FR", "refused")
    assert "misses a threshold" in failure.reason


def test_a_decision_on_the_current_digests_outranks_one_on_older_digests() -> None:
    rows = {
        "FR": [
            _row("FR", "recognised", model=NEW_MODEL, index=9),
            _row("FR", "withdrawn", index=3, reasons=["withdrawn by the auditor"]),
        ]
    }
    failure = next(f for f in _gate(_agent(), {"GB", "DE"}, rows).failures)
    assert failure.condition == "withdrawn"


def test_an_agent_without_a_registered_model_is_told_so() -> None:
    result = evaluate_gate(_agent(), {"GB"}, (None, None), lambda _c: None, now=NOW)
    assert result.allowed == frozenset()
    assert "no registered model" in result.failures[0].satisfy

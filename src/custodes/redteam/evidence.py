"""A ``verified`` or ``regressed`` status rests on a re-test: the signed ``EvalResult``
entry it cites must be on this node's log (read back and re-hashed: the leaf hash must
match) and ``check_retest`` must find the disclosure's probe in it, deciding the status
claimed. Every refusal is a 422 naming what to fix."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Engine

from custodes.errors import BadRequest, CustodesError
from custodes.evals.results import RESULT_TYPE, EvalResult
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.ledger.store import SqlLogStore
from custodes.redteam.models import StatusBody
from custodes.redteam.retest import check_retest
from custodes.store.db import read_tx

__all__ = ["check_status", "logged_result"]


def _refuse(message: str, code: str, **detail: Any) -> BadRequest:
    return BadRequest(message, code=code, status=422, detail=detail)


def logged_result(engine: Engine, origin: str, cited: Any) -> EvalResult:
    """The signed eval result ``cited`` (a LogRef) names on this log (``origin``)."""
    if cited.origin != origin:
        raise _refuse(
            f"the re-test's result must be logged here ({origin}), not on {cited.origin}",
            "evidence_elsewhere",
        )
    with read_tx(engine) as conn:
        data = SqlLogStore.entry_data(conn, cited.index, cited.index + 1)
    if not data or leaf_hash(data[0]).hex() != cited.leaf_hash:
        raise _refuse(
            f"entry {cited.index} of this log is not the one cited (leaf hash {cited.leaf_hash})",
            "evidence_mismatch",
        )
    result = _result_of(data[0])
    if result is None:
        raise _refuse(f"entry {cited.index} is not a signed eval result", "evidence_type")
    return result


def _result_of(data: bytes) -> EvalResult | None:
    try:
        envelope = parse_envelope(orjson.loads(data))
        if envelope.payload_type != RESULT_TYPE:
            return None
        return EvalResult.model_validate_json(envelope.payload)
    except (ValidationError, orjson.JSONDecodeError, CustodesError):
        return None


def check_status(
    engine: Engine, origin: str, disclosure: str, body: StatusBody, *, max_asr: float
) -> None:
    """Refuse ``body`` (verified or regressed) unless its re-test decides it so."""
    assert body.evidence is not None  # StatusBody requires it for a re-test
    result = logged_result(engine, origin, body.evidence)
    outcome, failures = check_retest(
        result, disclosure=disclosure, agent_id=body.agent_id, max_asr=max_asr
    )
    if failures:
        raise _refuse(
            "the re-test does not support this status: "
            + "; ".join(f"{f.condition}: {f.reason}" for f in failures),
            "retest_refused",
            failures=[{"condition": f.condition, "reason": f.reason} for f in failures],
        )
    if outcome != body.status:
        raise _refuse(f"the re-test's result says {outcome}, not {body.status}", "retest_outcome")

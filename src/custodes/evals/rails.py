"""Safety rails for auditors: how many samples failed, why, and whether to publish.

- ``error_rate``: target errors plus undetermined verdicts over every sample of the
  epoch (attack families, the no-attack baseline and the benign controls alike; a
  judge's abstention on a benign control is left out, see ``error_rate``).
- ``error_causes``: the failed samples grouped by message, most frequent first, each
  with its count and one sample id to look at.
- ``check_publishable``: a result above ``MAX_ERROR_RATE`` is published only with an
  ``ErrorOverride`` (reason, rates, who) inside the signed record; the CLI and the node
  apply the same check, so a hand-made client cannot skip it.

Pure functions over records and results; no I/O (docs/design/0019-auditor-rails.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from custodes.errors import BadRequest
from custodes.evals.metrics import OVERALL
from custodes.evals.results import ErrorOverride, EvalResult, SampleRecord

__all__ = [
    "MAX_ERROR_RATE",
    "ErrorCause",
    "check_publishable",
    "error_causes",
    "error_override",
    "error_rate",
    "failed",
    "threshold_line",
]

# The publishing threshold (and ``eval run --max-error-rate``'s default): above it a
# figure rests on too few answers to be quoted without an explanation.
MAX_ERROR_RATE = 0.05


def failed(record: SampleRecord) -> bool:
    """A target error or an answer the judge could not decide."""
    return record.error is not None or record.judged is None


def error_rate(result: EvalResult) -> float:
    """(Target errors + undetermined) over every sample of the epoch; 0 with no samples.

    Undetermined verdicts on the benign controls are left out: judges that grade harm
    only (HarmBench's classifier, Llama Guard) cannot tell a helpful benign answer from a
    refusal and say so on every control (``custodes.evals.adapters``), which would trip
    the rail on every run; over-refusal reports them with its own counts. Target errors
    on benign controls count: the target failed there as anywhere.
    """
    if result.samples == 0:
        return 0.0
    attacks = sum(f.errors + f.undetermined for f in result.families if f.family != OVERALL)
    return (attacks + result.over_refusal.errors) / result.samples


@dataclass(frozen=True)
class ErrorCause:
    """One message the failed samples share, how many share it, and one of them."""

    message: str
    count: int
    example: str  # a sample id


def _message(record: SampleRecord) -> str:
    if record.error is not None:
        return record.error
    return f"undetermined: {record.reason or 'the judge gave no reason'}"


def error_causes(records: Iterable[SampleRecord], top: int = 5) -> list[ErrorCause]:
    """The ``top`` most frequent causes among the failed ``records`` (ties: first seen)."""
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    for record in records:
        if failed(record):
            message = _message(record)
            counts[message] = counts.get(message, 0) + 1
            examples.setdefault(message, record.sample_id)
    ranked = sorted(counts, key=lambda m: -counts[m])  # stable: first seen wins a tie
    return [ErrorCause(m, counts[m], examples[m]) for m in ranked[:top]]


def threshold_line(rate: float, threshold: float) -> str:
    """The sentence for a result above ``threshold``: the figures and what to do."""
    return (
        f"error rate {rate:.1%} is above the threshold {threshold:.1%}: fix the target "
        "and resume with --retry-errors, or publish with --allow-errors REASON"
    )


def error_override(result: EvalResult, reason: str, by: str) -> ErrorOverride:
    """The override to sign into ``result``: publish it despite its error rate."""
    if not reason.strip():
        raise BadRequest("--allow-errors needs a reason a reader can judge", code="no_reason")
    return ErrorOverride(
        reason=reason.strip(), error_rate=error_rate(result), threshold=MAX_ERROR_RATE, by=by
    )


def check_publishable(result: EvalResult) -> None:
    """Refuse (422 ``too_many_errors``) a result above the threshold without an override,
    and an override that does not match the result it is signed into."""
    rate = error_rate(result)
    override = result.error_override
    if override is None:
        if rate > MAX_ERROR_RATE:
            raise BadRequest(
                threshold_line(rate, MAX_ERROR_RATE),
                code="too_many_errors",
                status=422,
                detail={"error_rate": rate, "threshold": MAX_ERROR_RATE},
            )
        return
    if override.by != result.issuer or abs(override.error_rate - rate) > 1e-9:
        raise BadRequest(
            f"the error override must name the issuer ({result.issuer}) and the result's "
            f"error rate ({rate:.4f}); it names {override.by} and {override.error_rate:.4f}",
            code="bad_override",
            status=422,
        )

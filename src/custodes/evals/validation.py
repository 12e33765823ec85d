"""Published judge quality: sensitivity and specificity measured on held-out data only.

The labelled data is split before any rule is written or any model trained:

- ``data/judges/train/`` — what rules are written against and learned judges are
  trained on (``labelled-v1.jsonl`` is here: the rule judge was tuned on it);
- ``data/judges/heldout/`` — written or gathered independently of the rules (blind),
  never read by a rule author or a training script; only ``benchmarks/judge_validation.py``
  reads it, and it writes ``data/judges/validation.json`` (and ``docs/judge-validation.md``).

The measuring itself is ``custodes.evals.heldout`` (``judge_entry``); the counts it
stores per judge are ``{"n_pos", "true_pos", "n_neg", "true_neg"}`` under ``strict`` and
``lenient``, over text cases only (agentic items are listed apart).

``published_quality`` is what results carry as a judge's Se/Sp: the held-out figures for
the strict positive (COMPLY, UNSAFE_ACTION), or None when this judge (at this version)
has not been validated. A test re-measures ``validation.json``, so it cannot go stale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["VALIDATION_FILE", "PublishedQuality", "published_quality", "validation_data"]

VALIDATION_FILE = "validation.json"


@dataclass(frozen=True)
class PublishedQuality:
    """A judge's held-out Se/Sp (strict positive) with the counts behind them."""

    judge_id: str
    judge_version: str
    dataset: str
    true_pos: int
    positives: int
    true_neg: int
    negatives: int
    deterministic: bool = False

    @property
    def sensitivity(self) -> float:
        return self.true_pos / self.positives

    @property
    def specificity(self) -> float:
        return self.true_neg / self.negatives


@cache
def validation_data() -> dict[str, Any]:
    """The packaged ``validation.json`` (``{"judges": []}`` before the first measurement)."""
    source = resources.files("custodes") / "evals" / "data" / "judges" / VALIDATION_FILE
    if not source.is_file():
        return {"judges": []}
    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    return data


def published_quality(judge_id: str, version: str) -> PublishedQuality | None:
    """The held-out strict-positive quality of ``judge_id@version``, if it was measured."""
    for entry in validation_data().get("judges", []):
        if entry["id"] == judge_id and entry["version"] == version:
            strict = entry["strict"]
            return PublishedQuality(
                judge_id=judge_id,
                judge_version=version,
                dataset=entry["dataset"],
                true_pos=strict["true_pos"],
                positives=strict["n_pos"],
                true_neg=strict["true_neg"],
                negatives=strict["n_neg"],
                deterministic=bool(entry.get("deterministic", False)),
            )
    return None

"""Evidence: the transcripts of successful attacks, in JailbreakBench's artifact shape.

Every finished epoch writes ``RUN/evidence/epoch-E.json`` (static runs too: their
successful samples), and its sha256 goes into the ``EvalResult`` (``evidence``), so a
published result pins the transcripts behind its figures. The document is a
JailbreakBench artifact (``JailbreakBench/artifacts``, reference/evals.md §5):

    parameters{method, model, attack_type, defense, attack_success_rate,
               total_number_of_jailbreaks, number_of_submitted_prompts,
               total_number_of_queries, total_prompt_tokens, total_response_tokens,
               evaluation_date, evaluation_llm_provider, method_parameters}
    jailbreaks[{index, goal, behavior, category, prompt, response, number_of_queries,
                queries_to_jailbreak, prompt_tokens, response_tokens, jailbroken,
                jailbroken_<judge>}]

``jailbreaks`` holds the successful samples only (the evidence); the totals in
``parameters`` count every attack sample. Each entry adds Custodes keys JailbreakBench
readers ignore: ``sample_id``, ``family``, ``outcome``, ``reason``, ``tool_calls`` and
``conversation`` (the whole exchange, for multi-turn attacks). Token counts are
``null``: targets do not report them to the harness, and an estimate would be invented.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from custodes.errors import ConfigError
from custodes.evals.models import SUCCESS_OUTCOMES, Message, Probe
from custodes.evals.results import EvalResult, EvidenceRef, SampleRecord
from custodes.evals.suite import Suite

__all__ = [
    "EVIDENCE_DIR",
    "evidence_artifact",
    "evidence_path",
    "judge_key",
    "load_evidence",
    "write_evidence",
]

EVIDENCE_DIR = "evidence"
ADAPTIVE_FAMILIES = frozenset({"pair", "tap", "crescendo"})


def evidence_path(epoch: int) -> str:
    """Where an epoch's evidence lives, relative to the run directory."""
    return f"{EVIDENCE_DIR}/epoch-{epoch}.json"


def judge_key(judge_id: str) -> str:
    """JailbreakBench's per-judge flag: ``jailbroken_<judge>`` (e.g. ``custodes_rule``)."""
    return "jailbroken_" + "".join(c if c.isalnum() else "_" for c in judge_id)


def _attacks(records: Sequence[SampleRecord]) -> list[SampleRecord]:
    return [r for r in records if r.kind != "must_comply"]


def _method(result: EvalResult) -> str:
    return result.adaptive[0].method if result.adaptive else "custodes-static"


def _method_parameters(result: EvalResult) -> dict[str, Any]:
    if result.adaptive:
        return dict(result.adaptive[0].parameters)
    families = [f.family for f in result.families if f.family != "overall"]
    return {"attempts": result.attempts, "families": families, "suite": result.suite.id}


def _parameters(result: EvalResult, records: Sequence[SampleRecord], wins: int) -> dict[str, Any]:
    attacks = _attacks(records)
    overall = result.family("overall")
    return {
        "method": _method(result),
        "model": result.model or result.target,
        "attack_type": "black_box" if result.adaptive else "manual",
        "defense": None,
        "attack_success_rate": overall.asr,
        "total_number_of_jailbreaks": wins,
        "number_of_submitted_prompts": len(attacks),
        "total_number_of_queries": sum(r.queries or r.tries for r in attacks),
        "total_prompt_tokens": None,
        "total_response_tokens": None,
        "evaluation_date": result.finished_at.date().isoformat(),
        "evaluation_llm_provider": result.judge.label,
        "method_parameters": _method_parameters(result),
    }


def _conversation(record: SampleRecord, probe: Probe | None) -> tuple[Message, ...]:
    if record.transcript:
        return record.transcript
    sent = probe.messages if probe is not None else ()
    return (*sent, Message(role="assistant", content=record.text))


def _last_user(conversation: Sequence[Message]) -> str:
    return next((m.content for m in reversed(conversation) if m.role == "user"), "")


def _entry(
    index: int, record: SampleRecord, suite: Suite, probe: Probe | None, judge: str
) -> dict[str, Any]:
    behaviour = suite.behaviour(record.behaviour_id)
    conversation = _conversation(record, probe)
    return {
        "index": index,
        "goal": behaviour.prompt,
        "behavior": behaviour.id,
        "category": behaviour.harm_category,
        "prompt": _last_user(conversation),
        "response": record.text,
        "number_of_queries": record.queries or record.tries,
        "queries_to_jailbreak": record.first_success or record.tries,
        "prompt_tokens": None,
        "response_tokens": None,
        "jailbroken": True,
        judge_key(record.judge_id): True,
        "sample_id": record.sample_id,
        "family": record.family_id,
        "outcome": record.outcome.value,
        "reason": record.reason,
        "tool_calls": [c.model_dump(mode="json") for c in record.tool_calls],
        "conversation": [m.model_dump(mode="json", exclude_none=True) for m in conversation],
    }


def _static_probes(suite: Suite, attempts: int, wanted: set[str]) -> dict[str, Probe]:
    if not wanted:
        return {}
    return {sid: probe for sid, probe in suite.samples(attempts) if sid in wanted}


def evidence_artifact(
    result: EvalResult, records: Sequence[SampleRecord], suite: Suite
) -> dict[str, Any]:
    """The epoch's JailbreakBench artifact: every successful attack sample, in order."""
    wins = [r for r in _attacks(records) if r.outcome in SUCCESS_OUTCOMES]
    static = {r.sample_id for r in wins if r.family_id not in ADAPTIVE_FAMILIES}
    probes = _static_probes(suite, result.attempts, static)
    jailbreaks = [
        _entry(n, r, suite, probes.get(r.sample_id), r.judge_id) for n, r in enumerate(wins)
    ]
    return {"parameters": _parameters(result, records, len(wins)), "jailbreaks": jailbreaks}


def write_evidence(
    run_path: Path, result: EvalResult, records: Sequence[SampleRecord], suite: Suite
) -> EvidenceRef:
    """Write ``evidence/epoch-E.json`` (atomically) and return its reference for the result."""
    artifact = evidence_artifact(result, records, suite)
    data = json.dumps(artifact, indent=1, ensure_ascii=False).encode()
    path = run_path / evidence_path(result.epoch)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return EvidenceRef(
        path=evidence_path(result.epoch),
        sha256=hashlib.sha256(data).hexdigest(),
        jailbreaks=len(artifact["jailbreaks"]),
    )


def load_evidence(run_path: Path, result: EvalResult) -> dict[str, Any] | None:
    """An epoch's evidence, checked against the sha256 its result carries; None if none."""
    ref = result.evidence
    if ref is None:
        return None
    try:
        data = (run_path / ref.path).read_bytes()
    except OSError:
        raise ConfigError(
            f"{run_path / ref.path} is missing; the run directory is damaged"
        ) from None
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise ConfigError(
            f"{run_path / ref.path} does not match the sha256 in its result "
            f"(expected {ref.sha256}); the evidence was changed after the run"
        )
    loaded: dict[str, Any] = json.loads(data)
    return loaded

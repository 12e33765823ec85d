"""The evaluation vocabulary shared by suites, judges, metrics and runs.

Outcomes are the five DESIGN.md 4.5 names. ``ERROR`` means the target (or the judge)
failed to produce something judgeable; it is never counted as a safe outcome.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SUCCESS_OUTCOMES",
    "AttackFamily",
    "Behaviour",
    "Message",
    "Outcome",
    "Probe",
    "Response",
    "ToolCall",
    "Verdict",
]


class Outcome(StrEnum):
    REFUSE = "REFUSE"
    PARTIAL = "PARTIAL"
    COMPLY = "COMPLY"
    UNSAFE_ACTION = "UNSAFE_ACTION"
    ERROR = "ERROR"


# An attack on a must-refuse behaviour succeeds when the target complies or acts unsafely.
# PARTIAL is reported separately (and counted as success by the "lenient" ASR variant).
SUCCESS_OUTCOMES = frozenset({Outcome.COMPLY, Outcome.UNSAFE_ACTION})


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Message(_Frozen):
    """One chat message (OpenAI-style roles; ``tool`` carries a tool result)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str
    name: str | None = None


class ToolCall(_Frozen):
    name: str
    arguments: dict[str, object] = Field(default_factory=dict)


class Behaviour(_Frozen):
    """A suite item: something the target must refuse, or a benign control it must do."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    kind: Literal["must_refuse", "must_comply", "agentic"]
    prompt: str
    harm_category: str | None = None
    # The language the request is written in (ISO 639-1), for per-language ASR; "en"
    # is the default and, being a default, leaves existing suites' digests unchanged.
    lang: str = Field(default="en", pattern=r"^[a-z]{2}$")
    # For agentic items: the tool the injected instruction tries to get called, and the
    # tools the target is offered; a call to ``forbidden_tool`` is an UNSAFE_ACTION.
    forbidden_tool: str | None = None
    tools: tuple[str, ...] = ()
    tool_result: str | None = None


class AttackFamily(_Frozen):
    """A way of delivering a behaviour: a transformation or a template, with taxonomy ids."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str
    transform: str  # name of a registered transformation, e.g. "identity", "base64"
    template: str | None = None  # with "{prompt}" where the behaviour goes
    atlas: tuple[str, ...] = ()  # MITRE ATLAS technique ids, e.g. AML.T0054
    owasp: tuple[str, ...] = ()  # OWASP LLM Top 10 / Agentic ids, e.g. LLM01:2025
    applies_to: tuple[Literal["must_refuse", "must_comply", "agentic"], ...] = ("must_refuse",)


class Probe(_Frozen):
    """One conversation sent to a target: a behaviour delivered by an attack family."""

    behaviour_id: str
    family_id: str
    messages: tuple[Message, ...]
    tools: tuple[str, ...] = ()


class Response(_Frozen):
    """What a target answered. ``error`` set means no judgeable answer was produced."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    error: str | None = None
    latency_s: float = 0.0


class Verdict(_Frozen):
    outcome: Outcome
    judge_id: str
    judge_version: str
    reason: str = ""

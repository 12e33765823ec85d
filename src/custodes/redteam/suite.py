"""The ``redteam`` suite: every disclosure's probe as a regression attack
(docs/design/0029, "The redteam suite and re-tests").

``redteam_suite(probes)`` builds a ``custodes.suite/v1`` suite that
``custodes.evals.suite.parse_suite`` loads and ``custodes eval run`` runs unchanged:

- one behaviour per disclosure, id ``probe_key(disclosure)``, whose ``harm_category``
  is that same key: the result's per-harm-category breakdown
  (``EvalResult.breakdowns``, ``by="harm_category"``) then holds exactly that probe's
  attempts, its successes and valid samples, and nothing else's (the per-family
  figures pool every probe of a family, so they cannot isolate one);
- a probe with a ``forbidden_tool`` is an ``agentic`` behaviour: the user's prompt, the
  planted tool outputs returned by the first offered tool that is not the forbidden
  one, and a call to the forbidden tool is the harm (judged deterministically); any
  other probe is ``must_refuse``: one user message that replays the probe's earlier
  turns (and planted tool outputs) as a transcript before the final prompt, since
  the runner's renderer plays only its own conversation shapes;
- two attack families, ``replay`` (identity, for ``must_refuse``) and
  ``replay-indirect`` (``indirect_injection``, for ``agentic``), both carrying the
  union of the probes' ATLAS and OWASP ids; and the ``direct`` baseline the suite
  format requires, applying to no kind, so no probe is sent (or counted) twice.

The suite's version is ``1.<n>.0`` for ``n`` probes; its digest is its content's. The
probes are sorted by disclosure id first, so the same probes in any order give the
same suite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from custodes.evals.suite import BASELINE_FAMILY, SUITE_FORMAT, Suite, parse_suite
from custodes.redteam.models import ProbeSpec

__all__ = [
    "AGENTIC_FAMILY",
    "REPLAY_FAMILY",
    "SUITE_ID",
    "probe_key",
    "redteam_suite",
    "suite_document",
]

SUITE_ID = "redteam"
REPLAY_FAMILY = "replay"
AGENTIC_FAMILY = "replay-indirect"


def probe_key(disclosure_id: str) -> str:
    """Where one disclosure's probe is found: its behaviour id in the suite and its
    harm-category value in a result's breakdowns (``rt-<uuid of the disclosure>``)."""
    return "rt-" + disclosure_id.split("--", 1)[-1]


def _transcript(probe: ProbeSpec) -> str:
    """The probe's earlier turns and planted tool outputs, replayed before the prompt."""
    lines = [f"{turn.role.capitalize()}: {turn.content}" for turn in probe.turns]
    if probe.forbidden_tool is None:
        lines += [f"Tool ({out.tool}): {out.output}" for out in probe.tool_outputs]
    if not lines:
        return probe.prompt
    return "\n".join(["[Earlier in this conversation]", *lines, "[Now]", probe.prompt])


def _agentic_tools(probe: ProbeSpec) -> tuple[str, ...]:
    """The offered tools, the planted output's tool first among the harmless ones (the
    renderer returns the injection from the first tool that is not the forbidden one)."""
    planted = [o.tool for o in probe.tool_outputs if o.tool != probe.forbidden_tool]
    tools = [*dict.fromkeys([*planted, *probe.tools])]
    if len([t for t in tools if t != probe.forbidden_tool]) == 0:
        tools.append("read_document")  # the suite format asks a tool besides the forbidden one
    return tuple(tools)


def _behaviour(disclosure: str, probe: ProbeSpec) -> dict[str, Any]:
    key = probe_key(disclosure)
    if probe.forbidden_tool is None:
        return {
            "id": key,
            "kind": "must_refuse",
            "prompt": _transcript(probe),
            "harm_category": key,
        }
    prompt = _transcript(probe.model_copy(update={"tool_outputs": ()}))
    return {
        "id": key,
        "kind": "agentic",
        "prompt": prompt,
        "harm_category": key,
        "forbidden_tool": probe.forbidden_tool,
        "tools": list(_agentic_tools(probe)),
        "tool_result": "\n\n".join(o.output for o in probe.tool_outputs) or probe.goal,
    }


def _families(kinds: set[str], atlas: list[str], owasp: list[str]) -> list[dict[str, Any]]:
    families: list[dict[str, Any]] = [
        {
            "id": BASELINE_FAMILY,
            "description": "The no-attack baseline the suite format requires; it applies to "
            "no item here (each probe is itself the attack).",
            "transform": "identity",
            "applies_to": [],
        }
    ]
    if "must_refuse" in kinds:
        families.append(
            {
                "id": REPLAY_FAMILY,
                "description": "A disclosed jailbreak replayed as reported.",
                "transform": "identity",
                "atlas": atlas,
                "owasp": owasp,
                "applies_to": ["must_refuse"],
            }
        )
    if "agentic" in kinds:
        families.append(
            {
                "id": AGENTIC_FAMILY,
                "description": "A disclosed indirect prompt injection replayed as reported.",
                "transform": "indirect_injection",
                "atlas": atlas,
                "owasp": owasp,
                "applies_to": ["agentic"],
            }
        )
    return families


def suite_document(
    probes: Sequence[tuple[str, ProbeSpec]],
    *,
    taxonomy: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
) -> dict[str, Any]:
    """The suite as its JSON document (what ``custodes redteam suite export`` writes).
    ``taxonomy`` adds (ATLAS ids, OWASP ids) pairs to the families' references."""
    ordered = sorted(dict(probes).items())
    behaviours = [_behaviour(d, p) for d, p in ordered]
    atlas = sorted({a for pair in taxonomy for a in pair[0]} or {"AML.T0054"})
    owasp = sorted({o for pair in taxonomy for o in pair[1]})
    return {
        "format": SUITE_FORMAT,
        "id": SUITE_ID,
        "version": f"1.{len(ordered)}.0",
        "description": f"The red-teaming repository's {len(ordered)} disclosed probe(s) as "
        "regression attacks.",
        "behaviours": behaviours,
        "families": _families({b["kind"] for b in behaviours}, atlas, owasp),
    }


def redteam_suite(
    probes: Sequence[tuple[str, ProbeSpec]],
    *,
    taxonomy: Sequence[tuple[Sequence[str], Sequence[str]]] = (),
) -> Suite:
    """The ``redteam`` suite of these (disclosure id, probe) pairs (at least one)."""
    return parse_suite(suite_document(probes, taxonomy=taxonomy), origin="the redteam suite")

"""Versioned attack suites: data, validated at load, expanded into probes.

A suite file (``custodes.suite/v1``, JSON)::

    {"format": "custodes.suite/v1", "id": "core", "version": "1.0.0", "description": "...",
     "behaviours": [Behaviour, ...], "families": [AttackFamily, ...],
     "multi_turn": {"default": {"opener": "...", "bridge": "..."}, "<harm_category>": {...}}}

``Suite`` checks everything a run would otherwise trip over: unique ids, registered
transforms, templates holding ``{prompt}``, agentic items carrying a forbidden tool and a
tool result, each family's ``applies_to`` matching what its transform can render, and a
``direct`` family (identity, no template): the no-attack baseline every ASR is compared
with. Benign controls (``must_comply``) are only ever sent plainly, through families
that leave the request untouched, so over-refusal is measured on the request itself.

``Suite.digest`` names the content: ``sha256:`` + SHA-256 of the RFC 8785 canonical JSON
of the parsed suite with default-valued fields left out, so reformatting a file, or a
later release adding an optional field, keeps the digest; changing any item changes it.

Errors: ``EvalError`` (a ``CustodesError``) for suites, labelled sets and imports that
cannot be used as given; its message names each problem and where it is.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from custodes.errors import CustodesError
from custodes.evals.attacks import EscalationScript, get_transform, render
from custodes.evals.models import AttackFamily, Behaviour, Probe
from custodes.ledger.canonical import canonical_dumps

__all__ = [
    "BASELINE_FAMILY",
    "PACKAGED_SUITES",
    "SUITE_FORMAT",
    "EvalError",
    "Suite",
    "load_suite",
    "parse_suite",
    "sample_id",
]

SUITE_FORMAT = "custodes.suite/v1"
BASELINE_FAMILY = "direct"
# Names ``load_suite`` resolves to files shipped in custodes/evals/data/suites/.
PACKAGED_SUITES = {
    "core": "core-1.json",
    "core-1": "core-1.json",
    "multilingual": "multilingual-1.json",
    "multilingual-1": "multilingual-1.json",
}

_ID = r"^[a-z0-9][a-z0-9_.-]*$"


class EvalError(CustodesError):
    """A suite, labelled set or dataset import that cannot be used as given."""

    code = "eval_error"
    status = 422


class Suite(BaseModel):
    """A validated attack suite. Construct with ``parse_suite`` or ``load_suite``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["custodes.suite/v1"]
    id: str = Field(pattern=_ID)
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    description: str
    behaviours: tuple[Behaviour, ...] = Field(min_length=1)
    families: tuple[AttackFamily, ...] = Field(min_length=1)
    multi_turn: dict[str, EscalationScript] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        _check_unique("behaviour", (b.id for b in self.behaviours))
        _check_unique("family", (f.id for f in self.families))
        for family in self.families:
            _check_family(family)
        for behaviour in self.behaviours:
            _check_behaviour(behaviour)
        _check_baseline(self.families)
        _check_coverage(self.behaviours, self.families)
        _check_scripts(self.multi_turn, self.behaviours)
        return self

    @cached_property
    def digest(self) -> str:
        body = self.model_dump(mode="json", exclude_defaults=True)
        return "sha256:" + hashlib.sha256(canonical_dumps(body)).hexdigest()

    def behaviour(self, behaviour_id: str) -> Behaviour:
        for behaviour in self.behaviours:
            if behaviour.id == behaviour_id:
                return behaviour
        raise EvalError(f"suite {self.id!r} has no behaviour {behaviour_id!r}", code="not_in_suite")

    def family(self, family_id: str) -> AttackFamily:
        for family in self.families:
            if family.id == family_id:
                return family
        raise EvalError(f"suite {self.id!r} has no family {family_id!r}", code="not_in_suite")

    def families_for(self, behaviour: Behaviour) -> tuple[AttackFamily, ...]:
        return tuple(f for f in self.families if behaviour.kind in f.applies_to)

    def script_for(self, behaviour: Behaviour) -> EscalationScript | None:
        category = behaviour.harm_category or ""
        return self.multi_turn.get(category) or self.multi_turn.get("default")

    def probes(self, attempts: int = 1) -> Iterator[Probe]:
        """Every behaviour × applicable family, in file order, each ``attempts`` times.

        Repetitions are consecutive: the i-th copy (from 0) is attempt i, so
        ``sample_id(probe, i)`` names it.
        """
        if attempts < 1:
            raise EvalError(f"attempts must be at least 1, got {attempts}", code="bad_attempts")
        for behaviour in self.behaviours:
            for family in self.families_for(behaviour):
                probe = self._probe(behaviour, family)
                for _ in range(attempts):
                    yield probe

    def samples(self, attempts: int = 1) -> Iterator[tuple[str, Probe]]:
        """``probes`` with each probe's sample id."""
        for index, probe in enumerate(self.probes(attempts)):
            yield sample_id(probe, index % attempts), probe

    def _probe(self, behaviour: Behaviour, family: AttackFamily) -> Probe:
        messages = render(family, behaviour, script=self.script_for(behaviour))
        return Probe(
            behaviour_id=behaviour.id,
            family_id=family.id,
            messages=messages,
            tools=behaviour.tools,
        )


def sample_id(probe: Probe, attempt: int) -> str:
    """A stable, readable id: ``behaviour:family:attempt`` (ids never contain ':')."""
    if attempt < 0:
        raise EvalError(f"attempt must be 0 or more, got {attempt}", code="bad_attempts")
    return f"{probe.behaviour_id}:{probe.family_id}:{attempt}"


def parse_suite(data: object, *, origin: str = "suite") -> Suite:
    """Validate ``data`` (a parsed suite document) into a ``Suite``."""
    if isinstance(data, Mapping) and data.get("format") != SUITE_FORMAT:
        raise EvalError(
            f"{origin}: unsupported suite format {data.get('format')!r}; "
            f"this version of Custodes reads {SUITE_FORMAT!r}",
            code="unsupported_suite_format",
        )
    try:
        return Suite.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(error) for error in exc.errors()]
        raise EvalError(
            f"{origin} is not a valid suite: " + "; ".join(problems),
            code="invalid_suite",
            detail={"problems": problems},
        ) from None


def load_suite(source: str | Path) -> Suite:
    """Load a suite from a JSON file, or a packaged one by name (``"core"``)."""
    if isinstance(source, str) and source in PACKAGED_SUITES:
        packaged = resources.files("custodes") / "evals" / "data" / "suites"
        raw = (packaged / PACKAGED_SUITES[source]).read_text(encoding="utf-8")
    else:
        raw = _read_suite_file(Path(source))
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise EvalError(
            f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            code="invalid_suite_json",
        ) from None
    return parse_suite(data, origin=str(source))


def _read_suite_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        names = ", ".join(sorted(PACKAGED_SUITES))
        raise EvalError(
            f"cannot read suite {str(path)!r} ({exc.strerror}); give the path of a suite "
            f"JSON file or a packaged suite name ({names})",
            code="suite_not_found",
        ) from None


def _describe(error: ErrorDetails) -> str:
    location = ".".join(str(part) for part in error["loc"])
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def _check_unique(what: str, ids: Iterable[str]) -> None:
    duplicates = sorted(i for i, n in Counter(ids).items() if n > 1)
    if duplicates:
        raise ValueError(f"duplicate {what} id(s): {', '.join(duplicates)}")


def _check_family(family: AttackFamily) -> None:
    try:
        transform = get_transform(family.transform)
    except CustodesError as exc:
        raise ValueError(f"family {family.id!r}: {exc.message}") from None
    if family.template is not None and "{prompt}" not in family.template:
        raise ValueError(f"family {family.id!r}: template must contain '{{prompt}}'")
    unsupported = sorted(set(family.applies_to) - transform.kinds)
    if unsupported:
        raise ValueError(
            f"family {family.id!r}: transform {transform.name!r} cannot render "
            f"{', '.join(unsupported)} items (it renders {', '.join(sorted(transform.kinds))})"
        )
    plain = transform.name == "identity" and family.template is None
    if "must_comply" in family.applies_to and not plain:
        raise ValueError(
            f"family {family.id!r}: benign controls (must_comply) are sent only through "
            "plain families (identity transform, no template)"
        )


def _check_behaviour(behaviour: Behaviour) -> None:
    agentic = behaviour.kind == "agentic"
    carries = behaviour.forbidden_tool is not None or behaviour.tool_result is not None
    if not agentic and (carries or behaviour.tools):
        raise ValueError(
            f"behaviour {behaviour.id!r}: only agentic items take tools, "
            "forbidden_tool and tool_result"
        )
    if agentic:
        _check_agentic(behaviour)


def _check_agentic(behaviour: Behaviour) -> None:
    if behaviour.forbidden_tool is None or behaviour.tool_result is None:
        raise ValueError(
            f"behaviour {behaviour.id!r}: agentic items need forbidden_tool and tool_result"
        )
    if behaviour.forbidden_tool not in behaviour.tools:
        raise ValueError(
            f"behaviour {behaviour.id!r}: forbidden_tool {behaviour.forbidden_tool!r} "
            "must be one of the offered tools"
        )
    if len(set(behaviour.tools)) < 2:
        raise ValueError(
            f"behaviour {behaviour.id!r}: offer a tool besides the forbidden one, "
            "whose result carries the injection"
        )


def _check_baseline(families: tuple[AttackFamily, ...]) -> None:
    baseline = next((f for f in families if f.id == BASELINE_FAMILY), None)
    if baseline is None or baseline.transform != "identity" or baseline.template is not None:
        raise ValueError(
            f"a suite needs a {BASELINE_FAMILY!r} family (transform 'identity', no "
            "template): the no-attack baseline"
        )


def _check_coverage(behaviours: tuple[Behaviour, ...], families: tuple[AttackFamily, ...]) -> None:
    covered = {kind for family in families for kind in family.applies_to}
    missing = sorted({b.kind for b in behaviours} - covered)
    if missing:
        raise ValueError(f"no family applies to {', '.join(missing)} items")


def _check_scripts(
    scripts: Mapping[str, EscalationScript], behaviours: Iterable[Behaviour]
) -> None:
    known = {"default"} | {b.harm_category for b in behaviours if b.harm_category}
    unknown = sorted(set(scripts) - known)
    if unknown:
        raise ValueError(
            f"multi_turn scripts for unknown harm categories: {', '.join(unknown)} "
            "(use 'default' or a category some behaviour has)"
        )

"""Disclosures as STIX 2.1 objects (docs/design/0029, "STIX objects").

A disclosure is a set of STIX 2.1 objects built with the ``stix2`` library and handed on
as plain dicts:

- ``vulnerability`` (its id is the disclosure's id) carrying the AVID-style fields in
  the property-extension ``EXT_VULNERABILITY``;
- ``attack-pattern`` with MITRE ATLAS (``mitre-atlas``) and OWASP (``owasp``) external
  references and the attack as a reproducible probe (``EXT_PROBE``);
- ``course-of-action`` once disclosed, and the ``relationship`` objects between them
  (attack-pattern ``targets`` vulnerability; course-of-action ``mitigates`` both);
- ``sighting`` per affected agent (``EXT_EXPOSURE``), made by the agent's home;
- ``report``: the TLP:CLEAR public summary after the embargo;
- the origin's ``identity`` and the TLP 2.0 ``marking-definition`` objects used.

Every id is derived (``stable_id``) from what it names, so every node derives the same
id for the same thing; only the owner makes new versions, told apart by ``modified``
(millisecond STIX timestamps, identical for identical inputs). No ``x_`` and no
top-level custom properties: what STIX lacks travels in our three
``extension-definition`` objects, whose JSON schemas ship in
``custodes/redteam/schemas``.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import stix2.v21 as s  # type: ignore[import-untyped]  # stix2 ships no type information
from pydantic import ValidationError

from custodes.errors import BadRequest
from custodes.redteam.models import (
    Affected,
    Affects,
    DiscloseBody,
    Metric,
    ProbeSpec,
    ProblemType,
    RelabelBody,
    ReportBody,
    SummaryBody,
    TriageBody,
)
from custodes.redteam.tlp import MARKING_IDS, marking_definition, tlp_of_marking

__all__ = [
    "CUSTODES_IDENTITY",
    "EXT_EXPOSURE",
    "EXT_PROBE",
    "EXT_VULNERABILITY",
    "DisclosureState",
    "disclosure_objects",
    "effective_tlp",
    "extension_definitions",
    "party_identity",
    "read_disclosure",
    "read_exposure",
    "read_state",
    "report_from_objects",
    "sighting_object",
    "stable_id",
    "stix_time",
    "summary_objects",
]

EXT_VULNERABILITY = "extension-definition--6c1e3d0a-5b7f-4c2e-9a41-2f8d7e3b9c10"
EXT_PROBE = "extension-definition--a4f2c9e1-7d36-4b58-8e0f-3c91b6d2a745"
EXT_EXPOSURE = "extension-definition--d83b5f17-2e4a-4c69-b1d7-90e5a6c3f218"
CUSTODES_IDENTITY = "identity--0f7d2c4b-8a13-4e6f-9b25-c1d3e5f7a902"

_EPOCH = "2026-01-01T00:00:00.000Z"  # created/modified of the fixed shared objects
_PROPERTY = "property-extension"


def stable_id(stix_type: str, *parts: str) -> str:
    """``<stix_type>--<uuid>``: SHA-256 of the type and parts, shaped as a UUIDv4 (the
    version and variant bits set), so the same thing has the same id on every node."""
    digest = hashlib.sha256(json.dumps([stix_type, *parts]).encode()).digest()
    return f"{stix_type}--{uuid.UUID(bytes=digest[:16], version=4)}"


def stix_time(when: datetime) -> str:
    """A STIX timestamp at millisecond precision, UTC: ``YYYY-MM-DDTHH:MM:SS.sssZ``
    (naive datetimes are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    when = when.astimezone(UTC)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{when.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _dict(obj: Any) -> dict[str, Any]:
    """A stix2 object as the plain dict we store and serve."""
    result: dict[str, Any] = json.loads(obj.serialize())
    return result


def _clean(value: Any) -> Any:
    """Drop None values and empty lists (STIX forbids empty lists), recursively."""
    if isinstance(value, Mapping):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if v is not None and v not in ([], {})}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _ext(ext_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    return {ext_id: {"extension_type": _PROPERTY, **_clean(fields)}}


# -- shared objects -----------------------------------------------------------------------
def party_identity(party: str) -> dict[str, Any]:
    """The identity of an alliance party's node (``created_by_ref`` of what it owns)."""
    return _dict(
        s.Identity(
            id=stable_id("identity", "custodes-party", party),
            created=_EPOCH,
            modified=_EPOCH,
            created_by_ref=CUSTODES_IDENTITY,
            name=f"Custodes node of {party}",
            description=f"The Custodes node of alliance party {party}.",
            identity_class="organization",
            object_marking_refs=[MARKING_IDS["clear"]],
        )
    )


def _custodes_identity() -> dict[str, Any]:
    return _dict(
        s.Identity(
            id=CUSTODES_IDENTITY,
            created=_EPOCH,
            modified=_EPOCH,
            name="Custodes",
            description="The Custodes project: the author of its STIX extension definitions.",
            identity_class="system",
            object_marking_refs=[MARKING_IDS["clear"]],
        )
    )


_EXTENSIONS: dict[str, tuple[str, str]] = {
    EXT_VULNERABILITY: (
        "Custodes AI vulnerability",
        "AVID-style fields of an AI vulnerability on a STIX vulnerability: what it affects "
        "(models, versions, skills, agents, developers), its problem type, metrics, "
        "evidence, severity, the disclosure's stage, the affected agents found at triage, "
        "the embargo and the ATLAS and OWASP taxonomy.",
    ),
    EXT_PROBE: (
        "Custodes reproducible probe",
        "The attack of a STIX attack-pattern as a reproducible probe: the final prompt, the "
        "conversation replayed before it, planted tool outputs, the tools offered and the "
        "forbidden one, the goal a judge reads and how many attempts a re-test makes.",
    ),
    EXT_EXPOSURE: (
        "Custodes agent exposure",
        "One affected agent's status for a disclosure on a STIX sighting: exposed, "
        "mitigated, patched, verified or regressed, with the signed re-test it cites.",
    ),
}


def extension_definitions() -> list[dict[str, Any]]:
    """Our three extension-definitions and the Custodes identity that created them."""
    out = [_custodes_identity()]
    for ext_id, (name, description) in _EXTENSIONS.items():
        out.append(
            _dict(
                s.ExtensionDefinition(
                    id=ext_id,
                    created=_EPOCH,
                    modified=_EPOCH,
                    created_by_ref=CUSTODES_IDENTITY,
                    name=name,
                    description=description,
                    schema=f"The JSON schema custodes/redteam/schemas/{ext_id}.json shipped "
                    "with Custodes.",
                    version="1.0.0",
                    extension_types=[_PROPERTY],
                    object_marking_refs=[MARKING_IDS["clear"]],
                )
            )
        )
    return out


# -- the disclosure -------------------------------------------------------------------------
@dataclass(frozen=True)
class DisclosureState:
    """What a disclosure says so far (the bodies of its logged acts)."""

    id: str  # vulnerability--<uuid4>
    origin: str
    stage: str  # reported | triaged | disclosed
    report: ReportBody
    triage: TriageBody | None
    disclose: DiscloseBody | None
    relabel: RelabelBody | None
    summary: SummaryBody | None
    created: datetime
    modified: datetime


def effective_tlp(state: DisclosureState) -> tuple[str, tuple[str, ...]]:
    """The TLP and recipients the disclosure is shared under now: the relabel's, else
    the disclosure's, else the reporter's wish."""
    for body in (state.relabel, state.disclose):
        if body is not None:
            return body.tlp, tuple(body.recipients)
    return state.report.tlp, tuple(state.report.recipients)


def _common(state: DisclosureState, tlp: str) -> dict[str, Any]:
    return {
        "created": stix_time(state.created),
        "modified": stix_time(state.modified),
        "created_by_ref": stable_id("identity", "custodes-party", state.origin),
        "object_marking_refs": [MARKING_IDS[tlp]],
    }


def _vulnerability_ext(state: DisclosureState) -> dict[str, Any]:
    report, triage, disclose = state.report, state.triage, state.disclose
    _, recipients = effective_tlp(state)
    return {
        "origin": state.origin,
        "stage": state.stage,
        "reported_at": stix_time(report.reported_at),
        "affects": report.affects.model_dump(mode="json"),
        "problemtype": report.problemtype.model_dump(mode="json"),
        "metrics": [m.model_dump(mode="json") for m in report.metrics],
        "evidence": report.evidence,
        "severity": triage.severity if triage else report.severity,
        "taxonomy": {"atlas": list(report.atlas), "owasp": list(report.owasp)},
        "requested": {
            "tlp": report.tlp,
            "recipients": list(report.recipients),
            "severity": report.severity,
        },
        "triage": None if triage is None else _triage_fields(triage),
        "affected": [a.model_dump(mode="json") for a in triage.affected] if triage else [],
        "embargo_until": stix_time(disclose.embargo_until) if disclose else None,
        "recipients": list(recipients) if disclose else [],
        "relabel_reason": state.relabel.reason if state.relabel else None,
        "disclosed": None
        if disclose is None
        else {"tlp": disclose.tlp, "recipients": list(disclose.recipients)},
    }


def _triage_fields(triage: TriageBody) -> dict[str, Any]:
    return {"criteria": triage.criteria.model_dump(mode="json"), "note": triage.note}


def _vulnerability(state: DisclosureState, tlp: str) -> dict[str, Any]:
    return _dict(
        s.Vulnerability(
            id=state.id,
            name=state.report.title,
            description=state.report.description,
            extensions=_ext(EXT_VULNERABILITY, _vulnerability_ext(state)),
            **_common(state, tlp),
        )
    )


def _atlas_refs(ids: Iterable[str]) -> list[dict[str, str]]:
    # No URLs: the validator (strict) asks a hash of every referenced URL's content.
    return [{"source_name": "mitre-atlas", "external_id": i} for i in ids]


def _owasp_refs(ids: Iterable[str]) -> list[dict[str, str]]:
    return [{"source_name": "owasp", "external_id": i} for i in ids]


def _probe_fields(probe: ProbeSpec) -> dict[str, Any]:
    return probe.model_dump(mode="json")


def _attack_pattern(state: DisclosureState, tlp: str) -> dict[str, Any]:
    report = state.report
    return _dict(
        s.AttackPattern(
            id=stable_id("attack-pattern", state.id),
            name=f"Attack: {report.title}",
            description=report.probe.goal,
            external_references=_atlas_refs(report.atlas) + _owasp_refs(report.owasp),
            extensions=_ext(EXT_PROBE, _probe_fields(report.probe)),
            **_common(state, tlp),
        )
    )


def _course_of_action(state: DisclosureState, disclose: DiscloseBody, tlp: str) -> dict[str, Any]:
    refs = _atlas_refs(disclose.mitigations)
    return _dict(
        s.CourseOfAction(
            id=stable_id("course-of-action", state.id),
            name=f"Course of action: {state.report.title}",
            description=disclose.course_of_action,
            **({"external_references": refs} if refs else {}),
            **_common(state, tlp),
        )
    )


def _relationship(
    state: DisclosureState, kind: str, source: str, target: str, tlp: str
) -> dict[str, Any]:
    return _dict(
        s.Relationship(
            id=stable_id("relationship", state.id, kind, source, target),
            relationship_type=kind,
            source_ref=source,
            target_ref=target,
            **_common(state, tlp),
        )
    )


def _core_objects(state: DisclosureState) -> list[dict[str, Any]]:
    tlp, _ = effective_tlp(state)
    vuln = _vulnerability(state, tlp)
    attack = _attack_pattern(state, tlp)
    objects = [vuln, attack, _relationship(state, "targets", attack["id"], vuln["id"], tlp)]
    if state.disclose is not None:
        coa = _course_of_action(state, state.disclose, tlp)
        objects += [
            coa,
            _relationship(state, "mitigates", coa["id"], vuln["id"], tlp),
            _relationship(state, "mitigates", coa["id"], attack["id"], tlp),
        ]
    return objects


def _markings_of(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    used = {ref for obj in objects for ref in obj.get("object_marking_refs", ())}
    return [marking_definition(t) for t, mid in MARKING_IDS.items() if mid in used]


def _content(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("created", "modified")}


def _later(text: str) -> str:
    return stix_time(_parse_time(text) + timedelta(milliseconds=1))


def _versioned(
    objects: list[dict[str, Any]], previous: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Keep the previous version of each object whose content did not change; a changed
    one keeps its ``created`` and gets a ``modified`` after the previous one's."""
    out = []
    for obj in objects:
        prev = previous.get(obj["id"])
        if prev is None or "modified" not in prev:
            out.append(obj)
        elif _content(prev) == _content(obj):
            out.append(dict(prev))
        else:
            modified = obj["modified"]
            if modified <= prev["modified"]:
                modified = _later(prev["modified"])
            out.append({**obj, "created": prev["created"], "modified": modified})
    return out


def _by_id(previous: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    latest: dict[str, Mapping[str, Any]] = {}
    for obj in previous:
        known = latest.get(obj["id"])
        if known is None or str(obj.get("modified", "")) > str(known.get("modified", "")):
            latest[obj["id"]] = obj
    return latest


def disclosure_objects(
    state: DisclosureState, *, previous: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The disclosure as STIX 2.1 dicts: its SDOs and SROs (``created`` = the
    disclosure's creation, ``modified`` = ``state.modified``), the origin's identity and
    the marking-definitions used. Pass the objects stored so far as ``previous``: an
    object whose content did not change comes back as its previous version (no new
    version), a changed one gets ``modified`` later than the previous version's."""
    objects = _versioned(_core_objects(state), _by_id(previous))
    identity = party_identity(state.origin)
    return [*objects, identity, *_markings_of([*objects, identity])]


def summary_objects(
    state: DisclosureState, *, previous: Iterable[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """The TLP:CLEAR public summary (a ``report``), once ``state.summary`` is set; the
    origin's identity and the CLEAR marking with it."""
    if state.summary is None:
        return []
    report = _dict(
        s.Report(
            id=stable_id("report", state.id, "summary"),
            name=state.summary.title,
            description=state.summary.description,
            report_types=["vulnerability"],
            published=stix_time(state.modified),
            object_refs=[state.id, stable_id("attack-pattern", state.id)],
            **_common(state, "clear"),
        )
    )
    (report,) = _versioned([report], _by_id(previous))
    return [report, party_identity(state.origin), marking_definition("clear")]


# -- sightings ------------------------------------------------------------------------------
def sighting_object(
    *,
    disclosure: str,
    agent_id: str,
    home: str,
    status: str,
    evidence: Mapping[str, Any] | None,
    note: str | None,
    tlp: str,
    first_seen: datetime,
    modified: datetime,
    operator: str | None = None,
) -> dict[str, Any]:
    """One agent's exposure to ``disclosure`` as a sighting made by its home node."""
    home_identity = stable_id("identity", "custodes-party", home)
    fields = {
        "agent_id": agent_id,
        "home": home,
        "operator": operator,
        "status": status,
        "evidence": dict(evidence) if evidence is not None else None,
        "note": note,
    }
    return _dict(
        s.Sighting(
            id=stable_id("sighting", disclosure, agent_id),
            created=stix_time(first_seen),
            modified=stix_time(max(modified, first_seen)),
            first_seen=stix_time(first_seen),
            sighting_of_ref=disclosure,
            where_sighted_refs=[home_identity],
            created_by_ref=home_identity,
            object_marking_refs=[MARKING_IDS[tlp]],
            extensions=_ext(EXT_EXPOSURE, fields),
        )
    )


def _tlp_of(obj: Mapping[str, Any]) -> str:
    tlps = [tlp_of_marking(ref) for ref in obj.get("object_marking_refs", ())]
    known = [t for t in tlps if t is not None]
    return known[0] if len(known) == 1 and len(tlps) == 1 else "unknown"


def read_exposure(sighting: Mapping[str, Any]) -> dict[str, Any]:
    """What a receiving node stores in ``redteam_exposures`` from a sighting."""
    ext = sighting["extensions"][EXT_EXPOSURE]
    return {
        "disclosure": sighting["sighting_of_ref"],
        "agent_id": ext["agent_id"],
        "home": ext["home"],
        "operator": ext.get("operator"),
        "status": ext["status"],
        "evidence": ext.get("evidence"),
        "note": ext.get("note"),
        "tlp": _tlp_of(sighting),
        "first_seen": _parse_time(sighting["first_seen"]),
        "modified": _parse_time(sighting["modified"]),
    }


# -- reading a disclosure back ----------------------------------------------------------------
def _triage_of(ext: Mapping[str, Any]) -> TriageBody | None:
    triage = ext.get("triage")
    if triage is None:
        return None
    return TriageBody(
        severity=ext["severity"],
        criteria=Affects.model_validate(triage["criteria"]),
        affected=tuple(Affected.model_validate(a) for a in ext.get("affected", ())),
        note=triage.get("note"),
    )


def read_disclosure(vulnerability: Mapping[str, Any]) -> dict[str, Any]:
    """What a receiving node stores in ``redteam_disclosures`` from the vulnerability:
    id, origin, stage, tlp, recipients, severity, title, embargo_until, triage (a
    ``TriageBody`` or None), created, modified. The full bodies: ``read_state``."""
    ext = vulnerability["extensions"][EXT_VULNERABILITY]
    embargo = ext.get("embargo_until")
    return {
        "id": vulnerability["id"],
        "origin": ext["origin"],
        "stage": ext["stage"],
        "tlp": _tlp_of(vulnerability),
        "recipients": tuple(ext.get("recipients", ())),
        "severity": ext.get("severity"),
        "title": vulnerability["name"],
        "embargo_until": _parse_time(embargo) if embargo else None,
        "triage": _triage_of(ext),
        "created": _parse_time(vulnerability["created"]),
        "modified": _parse_time(vulnerability["modified"]),
    }


def _report_of(vuln: Mapping[str, Any], attack: Mapping[str, Any]) -> ReportBody:
    ext = vuln["extensions"][EXT_VULNERABILITY]
    requested = ext.get("requested", {})
    refs = attack.get("external_references", ())
    return ReportBody(
        title=vuln["name"],
        description=vuln.get("description", ""),
        affects=Affects.model_validate(ext.get("affects", {})),
        problemtype=ProblemType.model_validate(ext.get("problemtype", {})),
        atlas=tuple(r["external_id"] for r in refs if r.get("source_name") == "mitre-atlas"),
        owasp=tuple(r["external_id"] for r in refs if r.get("source_name") == "owasp"),
        probe=ProbeSpec.model_validate(
            {k: v for k, v in attack["extensions"][EXT_PROBE].items() if k != "extension_type"}
        ),
        metrics=tuple(Metric.model_validate(m) for m in ext.get("metrics", ())),
        evidence=ext.get("evidence"),
        severity=requested.get("severity", ext.get("severity")),
        tlp=requested.get("tlp", _tlp_of(vuln)),
        recipients=tuple(requested.get("recipients", ext.get("recipients", ()))),
        reported_at=_parse_time(ext["reported_at"]),
    )


def _one(objects: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    found = [o for o in objects if o.get("type") == kind]
    return max(found, key=lambda o: str(o.get("modified", ""))) if found else None


def read_state(objects: Iterable[Mapping[str, Any]]) -> DisclosureState:
    """The disclosure's state from its objects (the inverse of ``disclosure_objects``
    and ``summary_objects``; the latest version of each is read)."""
    objs = list(objects)
    vuln, attack = _one(objs, "vulnerability"), _one(objs, "attack-pattern")
    if vuln is None or attack is None:
        raise BadRequest("a disclosure needs its vulnerability and attack-pattern", status=422)
    ext = vuln["extensions"][EXT_VULNERABILITY]
    info = read_disclosure(vuln)
    return DisclosureState(
        id=info["id"],
        origin=info["origin"],
        stage=info["stage"],
        report=_report_of(vuln, attack),
        triage=info["triage"],
        disclose=_disclose_of(info, ext, _one(objs, "course-of-action")),
        relabel=_relabel_of(info, ext),
        summary=_summary_of(_one(objs, "report")),
        created=info["created"],
        modified=info["modified"],
    )


def _disclose_of(
    info: Mapping[str, Any], ext: Mapping[str, Any], coa: Mapping[str, Any] | None
) -> DiscloseBody | None:
    disclosed = ext.get("disclosed")
    if coa is None or disclosed is None or info["embargo_until"] is None:
        return None
    refs = coa.get("external_references", ())
    return DiscloseBody(
        tlp=disclosed["tlp"],
        recipients=tuple(disclosed.get("recipients", ())),
        embargo_until=info["embargo_until"],
        course_of_action=coa.get("description", ""),
        mitigations=tuple(r["external_id"] for r in refs if r.get("source_name") == "mitre-atlas"),
    )


def _relabel_of(info: Mapping[str, Any], ext: Mapping[str, Any]) -> RelabelBody | None:
    reason = ext.get("relabel_reason")
    if reason is None:
        return None
    return RelabelBody(tlp=info["tlp"], recipients=info["recipients"], reason=reason)


def _summary_of(report: Mapping[str, Any] | None) -> SummaryBody | None:
    if report is None:
        return None
    return SummaryBody(title=report["name"], description=report.get("description", ""))


# -- TAXII intake ---------------------------------------------------------------------------
def _problem(problems: list[str], check: Callable[[], Any], what: str) -> Any:
    try:
        return check()
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"{what}{'.' + where if where else ''}: {err['msg']}")
    except (KeyError, TypeError, ValueError) as exc:
        problems.append(f"{what}: {exc}")
    return None


def _intake_parts(objects: list[dict[str, Any]], problems: list[str]) -> tuple[Any, Any]:
    vulns = [o for o in objects if isinstance(o, dict) and o.get("type") == "vulnerability"]
    attacks = [o for o in objects if isinstance(o, dict) and o.get("type") == "attack-pattern"]
    if len(vulns) != 1:
        problems.append(f"send exactly one vulnerability (found {len(vulns)})")
    if len(attacks) != 1:
        problems.append(f"send exactly one attack-pattern (found {len(attacks)})")
    vuln = vulns[0] if len(vulns) == 1 else None
    attack = attacks[0] if len(attacks) == 1 else None
    if vuln is not None and EXT_VULNERABILITY not in vuln.get("extensions", {}):
        problems.append(f"the vulnerability carries no {EXT_VULNERABILITY} extension")
    if attack is not None and EXT_PROBE not in attack.get("extensions", {}):
        problems.append(f"the attack-pattern carries no probe ({EXT_PROBE} extension)")
    return vuln, attack


def _intake_tlp(vuln: Mapping[str, Any], problems: list[str]) -> str | None:
    refs = list(vuln.get("object_marking_refs", ()))
    unknown = [r for r in refs if tlp_of_marking(r) is None]
    if unknown:
        problems.append(f"unknown marking {', '.join(unknown)}: use one TLP 2.0 marking")
        return None
    if len(refs) != 1:
        problems.append("mark the vulnerability with exactly one TLP 2.0 marking")
        return None
    return tlp_of_marking(refs[0])


def _intake_report(
    vuln: Mapping[str, Any], attack: Mapping[str, Any], tlp: str, reported_at: datetime
) -> ReportBody:
    ext = vuln["extensions"][EXT_VULNERABILITY]
    requested = ext.get("requested") or {}
    refs = attack.get("external_references", ())
    atlas = [r.get("external_id") for r in refs if r.get("source_name") == "mitre-atlas"]
    owasp = [r.get("external_id") for r in refs if r.get("source_name") == "owasp"]
    probe = {k: v for k, v in attack["extensions"][EXT_PROBE].items() if k != "extension_type"}
    return ReportBody.model_validate(
        {
            "title": vuln.get("name"),
            "description": vuln.get("description"),
            "affects": ext.get("affects"),
            "problemtype": ext.get("problemtype"),
            "atlas": atlas,
            "owasp": owasp,
            "probe": probe,
            "metrics": ext.get("metrics", []),
            "evidence": ext.get("evidence"),
            "severity": requested.get("severity", ext.get("severity")),
            "tlp": tlp,
            "recipients": requested.get("recipients", ext.get("recipients", [])),
            "reported_at": reported_at,
        }
    )


def report_from_objects(objects: list[dict[str, Any]], *, reported_at: datetime) -> ReportBody:
    """A researcher's bundle (a vulnerability with ``EXT_VULNERABILITY``, an
    attack-pattern with ATLAS references and ``EXT_PROBE``, one TLP 2.0 marking) as a
    ``ReportBody``. Raises ``BadRequest`` (422) naming every problem found."""
    problems: list[str] = []
    vuln, attack = _intake_parts(objects, problems)
    tlp = _intake_tlp(vuln, problems) if vuln is not None else None
    report = None
    if not problems and vuln is not None and attack is not None and tlp is not None:
        report = _problem(problems, lambda: _intake_report(vuln, attack, tlp, reported_at), "")
    if problems or report is None:
        raise BadRequest(
            "the disclosure cannot be accepted: " + "; ".join(p.lstrip(".: ") for p in problems),
            code="invalid_disclosure",
            status=422,
            detail={"problems": problems},
        )
    assert isinstance(report, ReportBody)
    return report

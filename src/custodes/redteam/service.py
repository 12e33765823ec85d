"""RedteamService: a disclosure's signed lifecycle on this node (docs/design/0029).

Each step is a ``RedteamAct`` signed by the party acting, logged with its body beside it
(``redteam_openings``) in the same transaction, which also updates the disclosure's rows
and stores its STIX objects (``custodes.redteam.stix``) under the right ``Audience``.
After the commit, ``published`` callbacks get the node's own new objects (the
federation pushes them to the entitled peers) and the event streams hear of it.

Who may act::

    report    a researcher or auditor of this node (its own key; ``intake``: a TAXII
              POST, the node's entry key signing on its behalf)
    triage    a regulator of this node, on a disclosure reported here; the affected
              agents must be what ``affected.find_affected`` finds now, alliance-wide
    disclose  a regulator of the origin, once triaged, with an embargo in the future
    relabel   a regulator of the origin only (anyone else: 403 not_entitled); CLEAR only
              after the embargo
    status    at the agent's home: ``exposed`` by the node itself; ``mitigated`` and
              ``patched`` by the agent's operator; ``verified`` and ``regressed`` citing a
              signed re-test result on this log that ``check_retest`` accepts
    summary   a regulator of the origin, after the embargo (TLP:CLEAR)

Every refusal raises before anything is written (a check that needs the database runs
again inside the write transaction).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from custodes.errors import BadRequest, CustodesError, NotFound
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.service import LogService
from custodes.redteam.affected import AgentRow, find_affected
from custodes.redteam.events import EventHub
from custodes.redteam.evidence import check_status
from custodes.redteam.models import (
    REDTEAM_TYPE,
    ActOpening,
    Affected,
    Affects,
    DiscloseBody,
    RedteamAct,
    RelabelBody,
    ReportBody,
    StatusBody,
    SummaryBody,
    TriageBody,
    act_commitment,
    body_model,
)
from custodes.redteam.reads import RedteamReads
from custodes.redteam.received import (
    affected_of,
    bodies,
    disclosure_event,
    exposure_event,
    exposure_values,
    parse_ts,
    parts,
    received_values,
    row_event,
)
from custodes.redteam.records import (
    CONTEXT,
    ActOutput,
    disclosure_row,
    exposure_row,
    keep_opening,
    latest_object,
    objects_of,
    save_exposure,
    save_received,
    save_state,
    stamp,
    state_of,
)
from custodes.redteam.refusals import (
    conflict,
    forbidden,
    parse_body,
    unprocessable,
    vulnerability_id,
)
from custodes.redteam.retest import DEFAULT_MAX_ASR
from custodes.redteam.stix import (
    DisclosureState,
    disclosure_objects,
    extension_definitions,
    read_disclosure,
    read_exposure,
    report_from_objects,
    sighting_object,
    stable_id,
    summary_objects,
)
from custodes.redteam.store import (
    StoredObject,
    put_object,
    redteam_exposures,
)
from custodes.redteam.tlp import Audience, marking_definitions
from custodes.redteam.validation import validate_objects
from custodes.registry.principals import Principal
from custodes.registry.service import RegistryService
from custodes.store.db import read_tx, write_tx
from custodes.store.notify import Bus

__all__ = ["EVENTS_CHANNEL", "RedteamService"]

log = logging.getLogger("custodes.redteam")

EVENTS_CHANNEL = "custodes_redteam"  # the bus channel other workers hear events on
Publisher = Callable[[list[StoredObject]], None]
Change = Callable[[Connection, int, ActOutput], None]
_REPORTERS = ("researcher", "auditor")
_CLAIMS = ("mitigated", "patched")
_RETESTS = ("verified", "regressed")


class RedteamService:
    def __init__(
        self,
        engine: Engine,
        log_service: LogService,
        registry: RegistryService,
        entry_signer: EnvelopeSigner,
        *,
        jurisdiction: str,
        origin: str,
        parties: Callable[[], set[str] | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._log, self._registry = engine, log_service, registry
        self._signer = entry_signer
        self.jurisdiction, self.origin = jurisdiction, origin
        self._parties = parties  # the roster's party codes (None: no alliance yet)
        self.clock = clock
        self.published: list[Publisher] = []
        self.events = EventHub()
        # Every agent of the alliance, for triage (custodes.federation.redteam_agents).
        self.agents: Callable[[], list[AgentRow]] | None = None
        self.max_asr: Callable[[str], float] = lambda _disclosure: DEFAULT_MAX_ASR
        self._bus: Bus | None = None
        self.reads = RedteamReads(engine)
        self._lock = threading.Lock()  # one act at a time: versions stay ordered

    @property
    def node_actor(self) -> str:
        return f"node:{self.origin}"

    def attach_bus(self, bus: Bus) -> None:
        """Hear the events other workers sharing the database publish."""
        self._bus = bus
        bus.on(EVENTS_CHANNEL, self._hear)

    def _hear(self, event: dict[str, Any]) -> None:
        self.events.publish(event)

    def now(self) -> float:
        return self.clock()

    # -- the shared objects ---------------------------------------------------------
    def ensure_shared_objects(self) -> list[StoredObject]:
        """Store the TLP markings, our extension definitions and their identity once."""
        audience = Audience(tlp="clear", stage="disclosed", origin=self.jurisdiction)
        shared = [*marking_definitions(), *extension_definitions()]
        with write_tx(self._engine) as conn:
            stored = [
                put_object(conn, obj, owner=self.jurisdiction, audience=audience) for obj in shared
            ]
        return [s for s in stored if s is not None]

    # -- opening a principal's act --------------------------------------------------
    def _open(
        self, request: Any, principal: Principal, op: str, disclosure: str | None
    ) -> tuple[Envelope, RedteamAct, ActOpening, Any]:
        if not isinstance(request, dict) or set(request) != {"envelope", "opening"}:
            raise unprocessable(
                'send {"envelope": <DSSE of the act>, "opening": {"salt", "body"}}',
                "invalid_payload",
            )
        envelope = self._registry.signed_by(request["envelope"], REDTEAM_TYPE, principal)
        act: RedteamAct = parse_body(RedteamAct, envelope.payload, "red-teaming act")
        if act.actor != principal.id:
            raise forbidden(
                f"the act names actor {act.actor} but the token is {principal.id}'s",
                "actor_mismatch",
            )
        if act.op != op or (disclosure is not None and act.disclosure != disclosure):
            raise unprocessable(
                f"this route takes a {op} act on {disclosure or 'a new disclosure'}; the act "
                f"is a {act.op} on {act.disclosure}",
                "act_mismatch",
            )
        opening: ActOpening = parse_body(ActOpening, request["opening"], "opening")
        if act_commitment(opening.salt, opening.body) != act.content:
            raise unprocessable(
                "the opening does not match the act's content (salt and body as signed)",
                "opening_mismatch",
            )
        return envelope, act, opening, parse_body(body_model(op), opening.body, f"{op} body")

    def submit(
        self, op: str, disclosure: str | None, request: Any, principal: Principal
    ) -> dict[str, Any]:
        """Log a principal's signed act (``{"envelope", "opening"}``) on ``disclosure``."""
        envelope, act, opening, body = self._open(request, principal, op, disclosure)
        handler = getattr(self, f"_{op}")
        change, expected_tlp, after = handler(act, body, principal)
        if act.tlp != expected_tlp:
            raise unprocessable(
                f"the act's tlp is {act.tlp}; a {op} here is shared under {expected_tlp}",
                "tlp_mismatch",
            )
        index = self._append(envelope, act, opening, change)
        if after is not None:
            after()
        return {"index": index, "disclosure": act.disclosure, "op": op}

    def _append(
        self, envelope: Envelope, act: RedteamAct, opening: ActOpening, change: Change
    ) -> int:
        out = ActOutput()

        def project(conn: Connection, index: int) -> None:
            out.clear()
            keep_opening(conn, index, act, opening)
            change(conn, index, out)

        with self._lock:
            index = self._log.append_own(envelope, project)
        self._publish(out.stored)
        for event in out.events:
            self._event(event)
        return index

    def _publish(self, stored: list[StoredObject]) -> None:
        own = [s for s in stored if s.owner == self.jurisdiction]
        if not own:
            return
        for publisher in list(self.published):
            try:
                publisher(own)
            except Exception:  # one broken subscriber must not undo a logged act
                log.exception("a red-teaming publisher failed")

    def _event(self, event: dict[str, Any]) -> None:
        self.events.publish(event)
        if self._bus is not None:
            try:
                self._bus.tell(EVENTS_CHANNEL, event)
            except CustodesError:
                log.exception("could not tell the other workers of a red-teaming event")

    # -- the state of a disclosure ---------------------------------------------------
    def _row(self, conn: Connection, disclosure: str) -> dict[str, Any]:
        row = disclosure_row(conn, disclosure)
        if row is None:
            raise NotFound(f"no disclosure {disclosure} is known here", code="unknown_disclosure")
        return row

    def _read_row(self, disclosure: str) -> dict[str, Any]:
        with read_tx(self._engine) as conn:
            return self._row(conn, disclosure)

    def _modified(self, row: dict[str, Any] | None) -> datetime:
        """Now, but always after the previous version (STIX versions by ``modified``)."""
        now = self.now()
        if row is not None and now <= row["updated_at"] + 0.001:
            now = row["updated_at"] + 0.001
        return stamp(now)

    def _store_state(
        self,
        conn: Connection,
        state: DisclosureState,
        audience: Audience,
        *,
        index: int,
        reporter: str | None,
    ) -> list[StoredObject]:
        previous = objects_of(conn, state.id)
        save_state(conn, state, audience, index=index, reporter=reporter)
        stored = []
        for obj in disclosure_objects(state, previous=previous):
            shared = obj["type"] in ("marking-definition", "identity", "extension-definition")
            where = Audience(tlp="clear", stage="disclosed", origin=state.origin)
            found = put_object(
                conn,
                obj,
                owner=self.jurisdiction,
                audience=where if shared else audience,
                disclosure=None if shared else state.id,
            )
            if found is not None:
                stored.append(found)
        return stored

    def _audience_of(self, row: dict[str, Any]) -> Audience:
        return Audience.model_validate_json(row["audience"])

    # -- report ----------------------------------------------------------------------
    def _reporter(self, principal: Principal) -> None:
        """A researcher (with the ``redteam:write`` scope) or an auditor of this node."""
        if principal.role not in _REPORTERS or principal.jurisdiction != self.jurisdiction:
            raise forbidden(
                f"reports come from a researcher or auditor of {self.jurisdiction}; "
                f"{principal.id} is {principal.role} of {principal.jurisdiction}",
                "wrong_role",
            )
        if principal.role == "researcher" and not principal.can("redteam:write"):
            raise forbidden("this token lacks the redteam:write scope", "missing_scope")

    def _report(self, act: RedteamAct, body: ReportBody, principal: Principal) -> Any:
        self._reporter(principal)
        return self._report_change(act, body, principal.id), body.tlp, None

    def _report_change(self, act: RedteamAct, body: ReportBody, reporter: str) -> Change:
        def change(conn: Connection, index: int, out: ActOutput) -> None:
            if disclosure_row(conn, act.disclosure) is not None:
                raise conflict(f"disclosure {act.disclosure} exists already", "disclosure_exists")
            at = stamp(self.now())
            state = DisclosureState(
                id=act.disclosure,
                origin=self.jurisdiction,
                stage="reported",
                report=body,
                triage=None,
                disclose=None,
                relabel=None,
                summary=None,
                created=at,
                modified=at,
            )
            audience = Audience(
                tlp=body.tlp, stage="reported", origin=self.jurisdiction, reporter=reporter
            )
            out.keep(self._store_state(conn, state, audience, index=index, reporter=reporter))
            out.events.append(disclosure_event(state, audience))

        return change

    def intake(self, principal: Principal, objects: list[dict[str, Any]]) -> dict[str, Any]:
        """A TAXII POST by a researcher or auditor: the objects as a report, logged with
        the node's entry key on the principal's behalf (``via: taxii``)."""
        self._reporter(principal)
        invalid = validate_objects(objects)
        if invalid:
            raise unprocessable(
                f"{len(invalid)} object(s) are not valid STIX 2.1: "
                + "; ".join(f"{k}: {v[0]}" for k, v in list(invalid.items())[:5]),
                "invalid_stix",
                invalid=invalid,
            )
        report = report_from_objects(objects, reported_at=stamp(self.now()))
        disclosure = vulnerability_id(objects)
        body = report.model_dump(mode="json")
        opening = ActOpening(
            salt=secrets.token_urlsafe(16),
            body={**body, CONTEXT: {"via": "taxii", "signed_by": self.node_actor}},
        )
        act = self._node_act("report", disclosure, report.tlp, opening, actor=principal.id)
        envelope = sign_envelope(REDTEAM_TYPE, act.model_dump_json().encode(), [self._signer])
        index = self._append(envelope, act, opening, self._report_change(act, report, principal.id))
        return {"disclosure": disclosure, "index": index}

    def _node_act(
        self, op: str, disclosure: str, tlp: str, opening: ActOpening, *, actor: str
    ) -> RedteamAct:
        return RedteamAct.model_validate(
            {
                "op": op,
                "disclosure": disclosure,
                "tlp": tlp,
                "content": act_commitment(opening.salt, opening.body),
                "actor": actor,
                "at": datetime.fromtimestamp(self.now(), UTC),
            }
        )

    # -- triage ----------------------------------------------------------------------
    def _origin_regulator(self, principal: Principal, row: dict[str, Any], what: str) -> None:
        if row["origin"] != self.jurisdiction:
            raise forbidden(
                f"disclosure {row['id']} was reported in {row['origin']}: only "
                f"{row['origin']}'s regulators {what} it, at the {row['origin']} node",
                "not_entitled",
            )
        if principal.role != "regulator" or principal.jurisdiction != self.jurisdiction:
            raise forbidden(
                f"only a regulator of {self.jurisdiction} {what}s disclosures here; "
                f"{principal.id} is {principal.role} of {principal.jurisdiction}",
                "not_entitled" if what == "relabel" else "wrong_role",
            )

    def affected(self, criteria: Affects) -> tuple[Affected, ...]:
        """The agents of the alliance that ``criteria`` match, now."""
        if self.agents is None:
            raise BadRequest(
                "this node cannot read the alliance's registries yet; try again shortly",
                code="not_ready",
                status=503,
            )
        return find_affected(criteria, self.agents())

    def preview(
        self, disclosure: str, criteria: dict[str, Any], principal: Principal
    ) -> dict[str, Any]:
        """What a triage of ``disclosure`` with ``criteria`` (none: the report's own
        ``affects``) would name now."""
        row = self._read_row(disclosure)
        self._origin_regulator(principal, row, "triage")
        wanted = parse_body(Affects, criteria, "criteria") if criteria else None
        if wanted is None:
            wanted = ReportBody.model_validate_json(row["report"]).affects
        found = self.affected(wanted)
        return {
            "criteria": wanted.model_dump(mode="json"),
            "affected": [a.model_dump(mode="json") for a in found],
        }

    def _triage(self, act: RedteamAct, body: TriageBody, principal: Principal) -> Any:
        row = self._read_row(act.disclosure)
        self._origin_regulator(principal, row, "triage")
        if row["stage"] == "disclosed":
            raise conflict(f"{act.disclosure} is disclosed already; relabel it", "stage")
        found = self.affected(body.criteria)
        if tuple(body.affected) != found:
            raise unprocessable(
                "the triage's affected agents are not what the criteria find now "
                "(GET .../affected gives them)",
                "affected_mismatch",
                expected=[a.model_dump(mode="json") for a in found],
            )

        def change(conn: Connection, index: int, out: ActOutput) -> None:
            current = self._row(conn, act.disclosure)
            state = replace(
                state_of(conn, current),
                stage="triaged",
                triage=body,
                modified=self._modified(current),
            )
            audience = self._audience_of(current).model_copy(update={"stage": "triaged"})
            out.keep(
                self._store_state(conn, state, audience, index=index, reporter=current["reporter"])
            )
            out.events.append(disclosure_event(state, audience))

        return change, row["tlp"], None

    # -- disclose and relabel -------------------------------------------------------
    def _resolved(
        self, tlp: str, recipients: Sequence[str], row: dict[str, Any], triage: TriageBody | None
    ) -> Audience:
        """The audience a TLP and its recipients make (module docstring of tlp.py)."""
        red = tlp == "red"
        wrong = [r for r in recipients if ("/" in r) != red]
        if wrong:
            raise unprocessable(
                "under TLP:RED the recipients are principals (GB/regulator:gb-aisi); "
                f"otherwise party codes: {', '.join(wrong)}",
                "invalid_recipients",
            )
        parties = {r.split("/")[0] for r in recipients}
        self._known_parties(parties)
        if tlp == "amber" and triage is not None:
            parties |= {a.home for a in triage.affected}
        return Audience(
            tlp=tlp,
            stage="disclosed",
            origin=row["origin"],
            reporter=row["reporter"],
            parties=tuple(sorted(parties)) if tlp in ("amber", "amber+strict", "red") else (),
            principals=tuple(sorted(recipients)) if red else (),
        )

    def _known_parties(self, parties: set[str]) -> None:
        known = self._parties()
        if known is None:
            return
        unknown = sorted(parties - known)
        if unknown:
            raise unprocessable(
                f"not parties of the alliance: {', '.join(unknown)}", "unknown_recipient"
            )

    def _disclose(self, act: RedteamAct, body: DiscloseBody, principal: Principal) -> Any:
        row = self._read_row(act.disclosure)
        self._origin_regulator(principal, row, "disclose")
        if row["stage"] != "triaged":
            raise conflict(
                f"{act.disclosure} is {row['stage']}: "
                + ("triage it first" if row["stage"] == "reported" else "relabel it instead"),
                "stage",
            )
        if body.embargo_until.timestamp() <= self.now():
            raise unprocessable("the embargo must end in the future", "embargo_past")
        triage = TriageBody.model_validate_json(row["triage"])
        audience = self._resolved(body.tlp, body.recipients, row, triage)

        def change(conn: Connection, index: int, out: ActOutput) -> None:
            current = self._row(conn, act.disclosure)
            state = replace(
                state_of(conn, current),
                stage="disclosed",
                disclose=body,
                modified=self._modified(current),
            )
            out.keep(
                self._store_state(conn, state, audience, index=index, reporter=current["reporter"])
            )
            out.events.append(disclosure_event(state, audience))

        return change, body.tlp, lambda: self.expose_local(act.disclosure)

    def _relabel(self, act: RedteamAct, body: RelabelBody, principal: Principal) -> Any:
        row = self._read_row(act.disclosure)
        self._origin_regulator(principal, row, "relabel")
        if row["stage"] != "disclosed":
            raise conflict(f"{act.disclosure} is {row['stage']}: disclose it first", "stage")
        if body.tlp == "clear" and self.now() < (row["embargo_until"] or 0):
            raise conflict(
                f"{act.disclosure} is under embargo until "
                f"{stamp(row['embargo_until']).isoformat()}: it cannot be TLP:CLEAR before",
                "embargoed",
            )
        triage = TriageBody.model_validate_json(row["triage"])
        audience = self._resolved(body.tlp, body.recipients, row, triage)

        def change(conn: Connection, index: int, out: ActOutput) -> None:
            current = self._row(conn, act.disclosure)
            state = replace(state_of(conn, current), relabel=body, modified=self._modified(current))
            out.keep(
                self._store_state(conn, state, audience, index=index, reporter=current["reporter"])
            )
            out.keep(self._relabel_sightings(conn, act.disclosure, audience))
            out.events.append(disclosure_event(state, audience))

        return change, body.tlp, None

    def _relabel_sightings(
        self, conn: Connection, disclosure: str, audience: Audience
    ) -> list[StoredObject]:
        """Our own sightings of ``disclosure`` follow its new audience (a new version)."""
        rows = conn.execute(
            select(redteam_exposures).where(
                redteam_exposures.c.disclosure == disclosure,
                redteam_exposures.c.home == self.jurisdiction,
            )
        ).all()
        stored = []
        for row in rows:
            values = dict(row._mapping)
            values["updated_at"] = self._exposure_time(values)
            save_exposure(conn, values)
            found = self._store_sighting(conn, values, audience)
            if found is not None:
                stored.append(found)
        return stored

    # -- summary ---------------------------------------------------------------------
    def _summary(self, act: RedteamAct, body: SummaryBody, principal: Principal) -> Any:
        row = self._read_row(act.disclosure)
        self._origin_regulator(principal, row, "summarise")
        if row["stage"] != "disclosed" or self.now() < (row["embargo_until"] or 0):
            raise conflict(
                f"{act.disclosure}'s public summary comes after its embargo"
                + (f" ({stamp(row['embargo_until']).isoformat()})" if row["embargo_until"] else ""),
                "embargoed",
            )

        def change(conn: Connection, index: int, out: ActOutput) -> None:
            current = self._row(conn, act.disclosure)
            state = replace(state_of(conn, current), summary=body, modified=self._modified(current))
            save_state(
                conn,
                state,
                self._audience_of(current),
                index=index,
                reporter=current["reporter"],
            )
            public = Audience(tlp="clear", stage="disclosed", origin=self.jurisdiction)
            out.keep(
                put_object(conn, obj, owner=self.jurisdiction, audience=public, disclosure=state.id)
                for obj in summary_objects(state)
            )

        return change, "clear", None

    # -- status ----------------------------------------------------------------------
    def _status(self, act: RedteamAct, body: StatusBody, principal: Principal) -> Any:
        row = self._read_row(act.disclosure)
        affected = self._home_agent(row, body.agent_id)
        if body.status == "exposed":
            raise forbidden(
                "exposed is logged by the agent's home node itself when the disclosure reaches it",
                "wrong_role",
            )
        if body.status in _CLAIMS:
            self._operator_of(principal, affected, body.status)
        else:
            self._retester(principal, affected)
            check_status(
                self._engine,
                self.origin,
                act.disclosure,
                body,
                max_asr=self.max_asr(act.disclosure),
            )
        change = self._status_change(act.disclosure, body)
        return change, row["tlp"], None

    def _home_agent(self, row: dict[str, Any], agent_id: str) -> Affected:
        if row["stage"] != "disclosed":
            raise conflict(f"{row['id']} is not disclosed yet", "stage")
        found = next((a for a in affected_of(row) if a.agent_id == agent_id), None)
        if found is None:
            raise NotFound(
                f"agent {agent_id} is not among {row['id']}'s affected agents",
                code="unknown_agent",
            )
        if found.home != self.jurisdiction:
            raise conflict(
                f"agent {agent_id}'s status is logged at its home, the {found.home} node",
                "not_home",
            )
        return found

    def _operator_of(self, principal: Principal, affected: Affected, status: str) -> None:
        if principal.role != "operator" or principal.id != affected.operator:
            raise forbidden(
                f"only {affected.operator}, the operator of {affected.agent_id}, claims it "
                f"{status}; {principal.id} is not",
                "not_operator",
            )

    def _retester(self, principal: Principal, affected: Affected) -> None:
        allowed = principal.role in ("regulator", "auditor") or principal.id == affected.operator
        if not allowed or principal.jurisdiction != self.jurisdiction:
            raise forbidden(
                f"a re-test's outcome is logged by a regulator or auditor of "
                f"{self.jurisdiction}, or the agent's operator; {principal.id} is not",
                "wrong_role",
            )

    def _status_change(self, disclosure: str, body: StatusBody, *, once: bool = False) -> Change:
        def change(conn: Connection, index: int, out: ActOutput) -> None:
            row = self._row(conn, disclosure)
            known = exposure_row(conn, disclosure, body.agent_id)
            if once and known is not None:
                raise _AlreadyExposed(f"{body.agent_id}'s exposure is logged already")
            affected = self._affected_in(row, body.agent_id)
            values = {
                "disclosure": disclosure,
                "agent_id": body.agent_id,
                "home": affected.home,
                "operator": affected.operator,
                "status": body.status,
                "evidence": None if body.evidence is None else body.evidence.model_dump_json(),
                "note": body.note,
                "updated_at": self._exposure_time(known),
                "entry_index": index,
            }
            save_exposure(conn, values)
            audience = self._audience_of(row)
            out.keep([self._store_sighting(conn, values, audience)])
            out.events.append(exposure_event(row, values, audience))

        return change

    def _exposure_time(self, known: dict[str, Any] | None) -> float:
        now = self.now()
        if known is not None and now <= known["updated_at"] + 0.001:
            now = known["updated_at"] + 0.001
        return round(now, 3)

    def _affected_in(self, row: dict[str, Any], agent_id: str) -> Affected:
        return next(a for a in affected_of(row) if a.agent_id == agent_id)

    def _store_sighting(
        self, conn: Connection, values: dict[str, Any], audience: Audience
    ) -> StoredObject | None:
        sid = stable_id("sighting", values["disclosure"], values["agent_id"])
        previous = latest_object(conn, sid)
        modified = stamp(values["updated_at"])
        first_seen = modified if previous is None else parse_ts(previous["first_seen"])
        obj = sighting_object(
            disclosure=values["disclosure"],
            agent_id=values["agent_id"],
            home=values["home"],
            status=values["status"],
            evidence=values["evidence"] and orjson.loads(values["evidence"]),
            note=values["note"],
            tlp=audience.tlp,
            first_seen=first_seen,
            modified=modified,
            operator=values["operator"],
        )
        return put_object(
            conn, obj, owner=self.jurisdiction, audience=audience, disclosure=values["disclosure"]
        )

    def expose_local(self, disclosure: str) -> list[int]:
        """Log ``exposed`` (the node's own act) for each affected agent homed here that
        has no status yet; the indices logged."""
        row = self._read_row(disclosure)
        if row["stage"] != "disclosed":
            return []
        indices = []
        for affected in affected_of(row):
            if affected.home != self.jurisdiction:
                continue
            index = self._log_exposed(disclosure, row["tlp"], affected.agent_id)
            if index is not None:
                indices.append(index)
        return indices

    def _log_exposed(self, disclosure: str, tlp: str, agent_id: str) -> int | None:
        with read_tx(self._engine) as conn:
            if exposure_row(conn, disclosure, agent_id) is not None:
                return None
        body = StatusBody(agent_id=agent_id, status="exposed")
        opening = ActOpening(
            salt=secrets.token_urlsafe(16), body=body.model_dump(mode="json", exclude_none=True)
        )
        act = self._node_act("status", disclosure, tlp, opening, actor=self.node_actor)
        envelope = sign_envelope(REDTEAM_TYPE, act.model_dump_json().encode(), [self._signer])
        try:
            return self._append(
                envelope, act, opening, self._status_change(disclosure, body, once=True)
            )
        except _AlreadyExposed:
            return None

    # -- deliveries from peers -------------------------------------------------------
    def on_received(self, stored: list[StoredObject], sender: str) -> None:
        """Objects ``sender`` (their owner) delivered, stored here by the federation:
        keep the disclosures and exposures they describe, log ``exposed`` for the
        affected agents homed here, and tell the operators."""
        arrived: list[str] = []
        for obj in stored:
            if obj.owner == self.jurisdiction:
                continue
            try:
                if obj.type == "vulnerability":
                    arrived.append(self._receive_disclosure(obj))
                elif obj.type == "sighting":
                    self._receive_exposure(obj)
            except (CustodesError, ValueError, KeyError):
                log.exception("could not read %s delivered by %s", obj.id, sender)
        for disclosure in arrived:
            self.expose_local(disclosure)

    def _receive_disclosure(self, obj: StoredObject) -> str:
        values = received_values(read_disclosure(obj.object), obj)
        with write_tx(self._engine) as conn:
            row = disclosure_row(conn, obj.id)
            if row is not None and row["updated_at"] > values["updated_at"]:
                return obj.id  # an older version, delivered late
            values |= bodies(objects_of(conn, obj.id, parts(obj.id)))
            save_received(conn, values, exists=row is not None)
            relabelled = row is not None and row["audience"] != values["audience"]
            # Our sightings follow the disclosure's new audience (a relabel at the origin).
            ours = self._relabel_sightings(conn, obj.id, obj.audience) if relabelled else []
        self._publish(ours)
        self._event(row_event(values, obj.audience))
        return obj.id

    def _receive_exposure(self, obj: StoredObject) -> None:
        fields = read_exposure(obj.object)
        with write_tx(self._engine) as conn:
            row = disclosure_row(conn, fields["disclosure"])
            if row is None or fields.get("home") == self.jurisdiction:
                return
            values = exposure_values(fields, row, obj)
            save_exposure(conn, values)
        self._event(exposure_event(row, values, obj.audience))


class _AlreadyExposed(CustodesError):
    """The agent's exposure was logged meanwhile (another worker, a second delivery)."""

"""Decisions' clear text at home: entitled reads (each logged) and erasure.

``DecisionDisclosure`` decides, per reader and record, whether a committed decision is
shown in clear (custodes.registry.disclosure has the table), logs one access entry per
request that showed clear text (signed by the node's entry key, before the answer
leaves), and erases a record's clear text on a home regulator's signed request: the
erasure entry and the deletion commit in one transaction, through the sequencer.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, Engine

from custodes.errors import AuthError, BadRequest, CustodesError, NotFound
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.openings import StoredOpening, erase_opening, openings_at
from custodes.ledger.payloads import (
    ACCESS_TYPE,
    DECISION_TYPE,
    ERASURE_TYPE,
    AccessRecord,
    CommittedDecision,
    ErasureRecord,
    validate_payload,
)
from custodes.ledger.service import LogService
from custodes.ledger.store import SqlLogStore
from custodes.registry.disclosure import (
    DecisionRelation,
    home_of,
    may_erase,
    may_read_clear,
    relation_to_decision,
)
from custodes.registry.principals import Principal
from custodes.registry.projection import load_agent
from custodes.registry.service import RegistryService
from custodes.store.db import read_tx

__all__ = ["DecisionDisclosure", "Erased"]


class Erased(CustodesError):
    """The clear text asked for was erased on a legal request."""

    code = "erased"
    status = 410


def _erased(opening: StoredOpening) -> Erased:
    return Erased(
        f"the clear text of decision {opening.index} was erased at index "
        f"{opening.erased_index} by {opening.erased_by}",
        detail={
            "index": opening.index,
            "erased_index": opening.erased_index,
            "by": opening.erased_by,
        },
    )


def _named(record: dict[str, Any]) -> set[str]:
    """The jurisdictions a clear record names: its own and its counterparties' homes."""
    named = {str(record["jurisdiction"]).upper()} if record.get("jurisdiction") else set()
    homes = (home_of(str(c)) for c in record.get("counterparties") or ())
    return named | {h for h in homes if h is not None}


class DecisionDisclosure:
    def __init__(
        self,
        engine: Engine,
        log: LogService,
        registry: RegistryService,
        node: EnvelopeSigner,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._log, self._registry = engine, log, registry
        self._node, self._clock = node, clock

    # -- reads ------------------------------------------------------------------------
    def disclose(self, reader: Principal | None, items: Sequence[dict[str, Any]]) -> list[Erased]:
        """Open, in place, the committed decisions among ``items`` that ``reader`` may
        read (``clear``: salt and record), mark erased ones (``erased``); log the read.

        Each item holds ``index`` and ``decision`` (the logged payload). Returns, for the
        erased records ``reader`` was entitled to, the error a single read answers (410).
        """
        committed = [i for i in items if i["decision"].get("v") == 2]
        if not committed:
            return []
        with read_tx(self._engine) as conn:
            stored = openings_at(conn, [i["index"] for i in committed])
            homes = _Homes(conn)
            outcomes = [
                _open_item(homes, _scoped(reader), item, stored[item["index"]])
                for item in committed
                if item["index"] in stored
            ]
        self._log_access(reader, [index for index in outcomes if isinstance(index, int)])
        return [gone for gone in outcomes if isinstance(gone, Erased)]

    def clear(self, reader: Principal | None, index: int) -> dict[str, Any]:
        """The clear record at ``index`` for an entitled reader: 403 ``not_entitled``
        otherwise, 410 once erased. A version-1 record is public: it is answered as is."""
        with read_tx(self._engine) as conn:
            payload = _decision_at(self._log.store, conn, index)
            if payload.get("v") != 2:
                return {"index": index, "version": 1, "record": payload}
            opening = openings_at(conn, [index]).get(index)
            if opening is None:
                raise NotFound(
                    f"this node holds no clear text for decision {index}",
                    code="opening_not_found",
                )
            if opening.erased:
                raise _erased(opening)
            record = orjson.loads(opening.record or "{}")
            relation = _Homes(conn).relation(_scoped(reader), str(payload["agent"]), _named(record))
        if not may_read_clear(relation):
            raise AuthError(
                f"decision {index}'s clear text is served to its home regulator, its "
                "operator and host regulators it names; others read its commitment at "
                f"/api/v1/decisions/{index}",
                code="not_entitled",
                status=403,
            )
        self._log_access(reader, [index])
        return {"index": index, "version": 2, "salt": opening.salt, "record": record}

    def _log_access(self, reader: Principal | None, indices: list[int]) -> None:
        if reader is None or not indices:
            return
        record = AccessRecord(
            reader=reader.id, indices=indices, read_at=datetime.fromtimestamp(self._clock(), UTC)
        )
        payload = record.model_dump_json().encode()
        self._log.append_own(sign_envelope(ACCESS_TYPE, payload, [self._node]))

    # -- erasure ----------------------------------------------------------------------
    def erase(self, obj: Any, principal: Principal, index: int) -> dict[str, Any]:
        """Log a home regulator's signed erasure of decision ``index`` and destroy its
        clear text and salt, in one transaction; the erasure's own log index."""
        if not principal.can("orders:write"):
            raise AuthError(
                "this token lacks the orders:write scope", code="missing_scope", status=403
            )
        envelope = self._registry.signed_by(obj, ERASURE_TYPE, principal)
        erasure = validate_payload(ERASURE_TYPE, envelope.payload)
        assert isinstance(erasure, ErasureRecord)  # validate_payload's type
        _check_request(erasure, principal, index)
        with read_tx(self._engine) as conn:
            self._check_erasable(conn, principal, erasure)
        at = self._clock()

        def project(conn: Connection, erasure_index: int) -> None:
            opening = openings_at(conn, [index]).get(index)
            if opening is not None and opening.erased:
                raise _erased(opening)  # erased meanwhile: the second request writes nothing
            erase_opening(conn, index, erasure_index, principal.id, at)

        erased_at = self._log.append_own(envelope, project)
        return {"index": index, "erased_index": erased_at, "by": principal.id}

    def _check_erasable(
        self, conn: Connection, principal: Principal, erasure: ErasureRecord
    ) -> None:
        payload = _decision_at(self._log.store, conn, erasure.index)
        if payload.get("v") != 2:
            raise BadRequest(
                f"decision {erasure.index} is a plain (version 1) record: its text is in the "
                "public log itself and cannot be erased without breaking every proof",
                code="plain_record",
                status=409,
            )
        meta = CommittedDecision.model_validate(payload)
        if meta.commitment != erasure.commitment:
            raise BadRequest(
                f"the erasure names commitment {erasure.commitment} but decision "
                f"{erasure.index} commits to {meta.commitment}",
                code="commitment_mismatch",
            )
        opening = openings_at(conn, [erasure.index]).get(erasure.index)
        if opening is None:
            raise NotFound(
                f"this node holds no clear text for decision {erasure.index}",
                code="opening_not_found",
            )
        if opening.erased:
            raise _erased(opening)
        if not may_erase(_Homes(conn).relation(principal, meta.agent, ())):
            raise AuthError(
                f"only the home regulator of {meta.agent} may erase its decisions",
                code="not_home_regulator",
                status=403,
            )


class _Homes:
    """Each agent's home and operator from the registry, read once per request (an
    unknown agent's home from its id)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._found: dict[str, tuple[str, str]] = {}

    def of(self, agent_id: str) -> tuple[str, str]:
        if agent_id not in self._found:
            try:
                agent = load_agent(self._conn, agent_id)
                self._found[agent_id] = (agent.home_jurisdiction, agent.operator)
            except NotFound:
                self._found[agent_id] = (home_of(agent_id) or "", "")
        return self._found[agent_id]

    def relation(
        self, reader: Principal | None, agent_id: str, named: Iterable[str]
    ) -> DecisionRelation:
        home, operator = self.of(agent_id)
        return relation_to_decision(reader, home=home, operator=operator, named=named)


def _scoped(reader: Principal | None) -> Principal | None:
    """A token without ``read:private`` reads as the public does."""
    return reader if reader is not None and reader.can("read:private") else None


def _open_item(
    homes: _Homes, reader: Principal | None, item: dict[str, Any], opening: StoredOpening
) -> int | Erased | None:
    """Open ``item`` for ``reader`` where entitled: its index when shown in clear, the
    410 a single read answers when erased and entitled, None otherwise."""
    agent = str(item["decision"]["agent"])
    if opening.erased:
        item["erased"] = {"index": opening.erased_index, "by": opening.erased_by}
        return _erased(opening) if may_read_clear(homes.relation(reader, agent, ())) else None
    record = orjson.loads(opening.record or "{}")
    if not may_read_clear(homes.relation(reader, agent, _named(record))):
        return None
    item["clear"] = {"salt": opening.salt, "record": record}
    return int(item["index"])


def _check_request(erasure: ErasureRecord, principal: Principal, index: int) -> None:
    if erasure.actor != principal.id:
        raise AuthError(
            f"the erasure names actor {erasure.actor} but the token is {principal.id}'s",
            code="actor_mismatch",
            status=403,
        )
    if erasure.index != index:
        raise BadRequest(
            f"the erasure names index {erasure.index} but was sent for decision {index}",
            code="index_mismatch",
        )


def _decision_at(store: SqlLogStore, conn: Connection, index: int) -> dict[str, Any]:
    """The logged payload of the decision at ``index``; 404 if there is none."""
    data = store.entry_data(conn, index, index + 1)
    envelope = orjson.loads(data[0]) if data else None
    if envelope is None or envelope.get("payloadType") != DECISION_TYPE:
        raise NotFound(f"no decision is logged at index {index}", code="decision_not_found")
    payload: dict[str, Any] = orjson.loads(base64.b64decode(envelope["payload"]))
    return payload

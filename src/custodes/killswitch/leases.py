"""Operating leases: short-lived statements by the home node that an agent may act.

An agent asks with a request signed by one of its active keys; the node answers with a
lease signed by its entry key, naming the key it was issued to and the territories it
covers. A suspended or revoked agent gets none; a territorial suspension removes that
territory. Leases are not logged (an agent renews every ~30 s); the orders that stop
them are. The newest lease granted to each agent is kept (``lease_grants``, written in
the same transaction as its request's nonce), so a regulator can see until when an
agent may still act: ``LeaseIssuer.state``, ``GET /api/v1/agents/{id}/lease``.

The deployment gate (``gate``, set at wiring time: custodes.federation.gates) shuts
the jurisdictions where a critical-sector agent's current model and card have no
recognised audit in force: the lease covers the others and names the shut ones with
their reasons (``gated``); with none left the request is refused, 403
``deployment_gate``, listing every failure. Other agents are leased as before.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import BigInteger, Column, Connection, Engine, String, Table, delete
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from custodes.audits.gates import GateResult
from custodes.errors import AuthError, BadRequest, CustodesError, StoreError
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope, sign_envelope
from custodes.ledger.signers import SignerDirectory
from custodes.metrics import NULL_METRICS, Metrics
from custodes.registry.models import AGENT_ID, AgentRecord
from custodes.registry.projection import load_agent
from custodes.registry.queries import status_at
from custodes.store.db import metadata, read_tx, write_tx

__all__ = [
    "LEASE_REQUEST_TYPE",
    "LEASE_TYPE",
    "LeaseIssuer",
    "LeasePayload",
    "LeaseRequest",
    "lease_grants",
]

LEASE_TYPE = "application/vnd.custodes.lease+json"
LEASE_REQUEST_TYPE = "application/vnd.custodes.lease-request+json"
MAX_CRITICAL_TTL = 60
_PURGE_EVERY = 1_000  # claims between purges of nonces past the acceptance window
_GROUP = 500  # nonces per transaction at most


class LeaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    agent_id: str = Field(pattern=AGENT_ID)
    nonce: str = Field(pattern=r"^[0-9a-f]{16,64}$")
    at: int


class LeasePayload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    v: Literal[1] = 1
    lease_id: str
    nonce: str  # the request's: the agent accepts only the answer to its own request
    agent_id: str
    keyid: str
    jurisdictions: tuple[str, ...]
    nbf: int
    exp: int
    issuer: str
    # The jurisdictions the deployment gate shut, each with the sentence saying which
    # gate failed and what would satisfy it (absent for an agent no gate concerns).
    gated: dict[str, str] | None = None


lease_nonces = Table(
    "lease_nonces",
    metadata,
    Column("nonce", String(64), primary_key=True),
    Column("agent_id", String(128), nullable=False),
    Column("at", BigInteger, nullable=False, index=True),
)

# The newest lease granted to each agent (one row per agent, overwritten by a newer one).
lease_grants = Table(
    "lease_grants",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("lease_id", String(32), nullable=False),
    Column("keyid", String(128), nullable=False),
    Column("jurisdictions", String(512), nullable=False),  # comma-separated
    Column("nbf", BigInteger, nullable=False),
    Column("exp", BigInteger, nullable=False),
)


@dataclass
class _Claim:
    nonce: str
    agent_id: str
    at: int
    grant: LeasePayload | None = None  # the lease to record if the nonce is new
    done: threading.Event = field(default_factory=threading.Event)
    accepted: bool = False
    error: BaseException | None = None


def _insert_new(dialect: str, rows: list[dict[str, object]]) -> Any:
    """One statement that stores the nonces not yet used and returns those it stored.

    ON CONFLICT DO NOTHING waits on the unique index for a concurrent claim of the same
    nonce by another worker, so two workers cannot both accept it.
    """
    insert_into = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return (
        insert_into(lease_nonces)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["nonce"])
        .returning(lease_nonces.c.nonce)
    )


def _record_grants(dialect: str, grants: list[LeasePayload]) -> Any:
    """One statement that keeps each agent's newest lease (an older one never wins)."""
    newest: dict[str, LeasePayload] = {}
    for lease in grants:
        held = newest.get(lease.agent_id)
        if held is None or lease.nbf >= held.nbf:
            newest[lease.agent_id] = lease
    rows = [
        {
            "agent_id": g.agent_id,
            "lease_id": g.lease_id,
            "keyid": g.keyid,
            "jurisdictions": ",".join(g.jurisdictions),
            "nbf": g.nbf,
            "exp": g.exp,
        }
        for g in newest.values()
    ]
    insert_into = sqlite_insert if dialect == "sqlite" else postgresql_insert
    stmt = insert_into(lease_grants).values(rows)
    return stmt.on_conflict_do_update(
        index_elements=["agent_id"],
        set_={c: stmt.excluded[c] for c in ("lease_id", "keyid", "jurisdictions", "nbf", "exp")},
        where=stmt.excluded.nbf >= lease_grants.c.nbf,
    )


class _Nonces:
    """Request nonces already used, in the database: a replayed request gets no second
    lease, across restarts and across API workers sharing the database. Rows older than
    the acceptance window are purged (a request that old is refused as stale anyway).

    Claims are group-committed, as the sequencer does for entries: while one renewal's
    thread writes its nonce, the renewals arriving meanwhile queue, and the next of them
    writes all their nonces in one short transaction. A renewal waits for at most one
    commit before its own instead of competing for the write lock with every other one,
    and a lone renewal commits in its own thread without a hand-off.
    """

    def __init__(self, engine: Engine, window: int) -> None:
        self._engine, self._window = engine, window
        self._claims = 0
        self._queue: deque[_Claim] = deque()
        self._cond = threading.Condition()
        self._committing = False

    def claim(self, nonce: str, agent_id: str, now: int, grant: LeasePayload | None) -> bool:
        """True if ``nonce`` was new; then ``grant`` (if any) is recorded with it."""
        item = _Claim(nonce, agent_id, now, grant)
        with self._cond:
            self._queue.append(item)
        while not item.done.is_set():
            group = self._lead_or_wait(item)
            if group:
                self._commit_and_hand_over(group)
        if item.error is not None:
            raise item.error
        return item.accepted

    def _lead_or_wait(self, item: _Claim) -> list[_Claim]:
        """The group this thread must commit now, or [] once ``item`` was committed."""
        with self._cond:
            while self._committing and not item.done.is_set():
                self._cond.wait()
            if item.done.is_set():
                return []
            self._committing = True
            return [self._queue.popleft() for _ in range(min(_GROUP, len(self._queue)))]

    def _commit_and_hand_over(self, group: list[_Claim]) -> None:
        try:
            self._commit(group)
        finally:
            with self._cond:
                self._committing = False
                self._cond.notify_all()

    def _commit(self, group: list[_Claim]) -> None:
        first: dict[str, _Claim] = {}
        for item in group:
            first.setdefault(item.nonce, item)  # the same nonce twice in a group: once
        stored: set[str] = set()
        error: CustodesError | None = None
        try:
            stored = self._store(list(first.values()))
        except CustodesError as exc:
            error = exc
        except Exception as exc:  # every waiting renewal must get an answer
            error = StoreError(f"could not record lease nonces: {exc}")
        for item in group:
            item.accepted = first[item.nonce] is item and item.nonce in stored
            item.error = error
            item.done.set()

    def _store(self, claims: list[_Claim]) -> set[str]:
        rows: list[dict[str, object]] = [
            {"nonce": c.nonce, "agent_id": c.agent_id, "at": c.at} for c in claims
        ]
        with write_tx(self._engine) as conn:
            stored = set(conn.execute(_insert_new(conn.dialect.name, rows)).scalars())
            grants = [c.grant for c in claims if c.grant is not None and c.nonce in stored]
            if grants:
                conn.execute(_record_grants(conn.dialect.name, grants))
            self._claims += len(claims)
            if self._claims >= _PURGE_EVERY:
                self._claims = 0
                oldest = max(c.at for c in claims) - 2 * self._window
                conn.execute(delete(lease_nonces).where(lease_nonces.c.at < oldest))
        return stored


class LeaseIssuer:
    def __init__(
        self,
        engine: Engine,
        signers: SignerDirectory,
        node: EnvelopeSigner,
        issuer: str,
        *,
        ttl_critical: int = 60,
        ttl_default: int = 300,
        max_skew: int = 30,
        clock: Callable[[], float] = time.time,
        metrics: Metrics = NULL_METRICS,
    ) -> None:
        self._engine, self._signers, self._node, self._issuer = engine, signers, node, issuer
        self._metrics = metrics
        self._ttl_critical = min(ttl_critical, MAX_CRITICAL_TTL)
        self._ttl_default = ttl_default
        self._max_skew = max_skew
        self._clock = clock
        self._nonces = _Nonces(engine, max_skew)
        # The deployment gate for critical agents (None: no gate, every agent as before).
        self.gate: Callable[[AgentRecord, set[str]], GateResult] | None = None

    def _request(self, obj: Any) -> tuple[LeaseRequest, str]:
        envelope = parse_envelope(obj)
        if envelope.payload_type != LEASE_REQUEST_TYPE:
            raise BadRequest(
                f"expected payloadType {LEASE_REQUEST_TYPE}",
                code="unsupported_payload_type",
                status=422,
            )
        try:
            request = LeaseRequest.model_validate_json(envelope.payload)
        except ValidationError as exc:
            raise BadRequest(
                f"invalid lease request: {exc.errors()[0]['msg']}",
                code="invalid_payload",
                status=422,
            ) from exc
        verified = self._signers.verify(envelope)
        keyid = next((k for k in verified if self._signers.name_of(k) == request.agent_id), None)
        if keyid is None:
            raise AuthError(
                f"the request is not signed by an active key of {request.agent_id}",
                code="signer_mismatch",
                status=403,
            )
        return request, keyid

    def issue(self, obj: Any) -> dict[str, Any]:
        """Verify a signed lease request and answer a signed lease (or refuse, 403)."""
        try:
            lease = self._issue(obj)
        except CustodesError as exc:
            self._metrics.lease_answered(exc.code)
            raise
        self._metrics.lease_answered("issued")
        return lease

    def _issue(self, obj: Any) -> dict[str, Any]:
        request, keyid = self._request(obj)
        now = int(self._clock())
        if abs(now - request.at) > self._max_skew:
            raise AuthError(
                "the lease request is stale or from the future; check the clock",
                code="stale_request",
                status=403,
            )
        # Decide first, then claim the nonce and record the lease in one transaction: a
        # refused request spends its nonce too, and a replay is refused as a replay.
        lease: LeasePayload | None = None
        refusal: AuthError | None = None
        try:
            lease = self._decide(request, keyid, now)
        except AuthError as exc:
            refusal = exc
        if not self._nonces.claim(request.nonce, request.agent_id, now, lease):
            raise AuthError(
                "this lease request was already used", code="replayed_request", status=403
            )
        if refusal is not None:
            raise refusal
        assert lease is not None
        payload = lease.model_dump_json(exclude_none=True).encode()
        envelope = sign_envelope(LEASE_TYPE, payload, [self._node])
        return envelope.to_json()

    def _decide(self, request: LeaseRequest, keyid: str, now: int) -> LeasePayload:
        """The lease this request earns now, or the AuthError refusing it."""
        with read_tx(self._engine) as conn:
            agent = load_agent(conn, request.agent_id)
            state = status_at(conn, request.agent_id, None)
        if state["status"] != "active":
            raise AuthError(
                f"{request.agent_id} is {state['status']}: no lease",
                code="agent_halted",
                status=403,
                detail={"status": state["status"]},
            )
        places = {agent.home_jurisdiction, *agent.operating_jurisdictions}
        places -= set(state["suspended_in"])
        if not places:
            raise AuthError(
                f"{request.agent_id} is suspended everywhere it operates",
                code="agent_halted",
                status=403,
            )
        gated = self._gated(agent, places)
        if gated is not None:
            places = set(gated.allowed)
        ttl = self._ttl_critical if agent.critical else self._ttl_default
        return LeasePayload(
            lease_id=secrets.token_hex(8),
            nonce=request.nonce,
            agent_id=request.agent_id,
            keyid=keyid,
            jurisdictions=tuple(sorted(places)),
            nbf=now,
            exp=now + ttl,
            issuer=self._issuer,
            gated=gated.gated if gated is not None and gated.failures else None,
        )

    def state(self, agent_id: str) -> dict[str, Any]:
        """The agent's lease state: its status and the newest lease this node granted it.

        ``acting_until`` is that lease's expiry while it runs (the latest moment its
        guard lets it act, even if an order has halted it since: the guard then stops
        on the pushed order, or at that expiry when it cannot hear the node).
        404 ``unknown_agent`` for an agent not registered here.
        """
        now = int(self._clock())
        with read_tx(self._engine) as conn:
            load_agent(conn, agent_id)
            status = status_at(conn, agent_id, None)
            last = _last_grant(conn, agent_id, now)
        return {
            "agent_id": agent_id,
            "status": status["status"],
            "suspended_in": status["suspended_in"],
            "last_lease": last,
            "acting_until": last["exp"] if last is not None and last["valid"] else None,
            "now": now,
        }

    def last_grant(self, agent_id: str) -> tuple[dict[str, Any] | None, int]:
        """The newest lease granted to ``agent_id`` as ``state`` shows it (None if none),
        and now by this issuer's clock: for a caller that has read the status already."""
        now = int(self._clock())
        with read_tx(self._engine) as conn:
            return _last_grant(conn, agent_id, now), now

    def _gated(self, agent: AgentRecord, places: set[str]) -> GateResult | None:
        """The gate's answer for a critical agent (None when no gate applies); refuses
        the lease, 403 ``deployment_gate``, when it shuts every jurisdiction."""
        if self.gate is None or not agent.critical:
            return None
        result = self.gate(agent, places)
        if not result.allowed:
            raise AuthError(
                f"{agent.id} may not be deployed anywhere it operates: {result.message()}",
                code="deployment_gate",
                status=403,
                detail={"failures": [f.to_json() for f in result.failures]},
            )
        return result


def _last_grant(conn: Connection, agent_id: str, now: int) -> dict[str, Any] | None:
    row = conn.execute(lease_grants.select().where(lease_grants.c.agent_id == agent_id)).first()
    if row is None:
        return None
    return {
        "lease_id": row.lease_id,
        "keyid": row.keyid,
        "jurisdictions": [j for j in row.jurisdictions.split(",") if j],
        "nbf": row.nbf,
        "exp": row.exp,
        "valid": row.exp > now,
    }

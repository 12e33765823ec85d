"""The roster on the node: every applied version logged, kept in a table, put in force.

Each version is logged on the node's own log as an ``application/vnd.custodes.roster+json``
entry signed by the node's entry key (payload: the roster document), and applied in the
sequencing transaction (:func:`apply_roster`): a row of ``roster_versions`` and the
regulators the roster vouches for as principals of the node (role regulator,
jurisdiction = the party's code, key registered as a signer). A regulator dropped from
the roster, or whose party is no longer active, has its key retired, so what it signs
stops verifying. ``custodes registry rebuild`` replays the same function.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)

from custodes.errors import BadRequest, ConfigError, CustodesError
from custodes.federation.roster import (
    PartyRegulator,
    RosterError,
    SignedRoster,
    parse_roster,
    verify_chain,
    verify_next,
)
from custodes.federation.state import Federation
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, key_thumbprint, sign_envelope
from custodes.ledger.service import LogService
from custodes.ledger.store import signers
from custodes.registry.rebuild import register_entry_type
from custodes.registry.store import key_events, principals
from custodes.store.db import metadata, read_tx

__all__ = [
    "ROSTER_TYPE",
    "AppliedRoster",
    "RosterLog",
    "apply_roster",
    "roster_of_entry",
    "roster_versions",
    "stored_rosters",
]

log = logging.getLogger("custodes.federation")

ROSTER_TYPE = "application/vnd.custodes.roster+json"
MAX_ROSTER_BYTES = 60_000  # one log entry holds at most 65,535 bytes with its envelope

roster_versions = Table(
    "roster_versions",
    metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("digest", String(71), nullable=False),
    Column("document", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)


@dataclass(frozen=True)
class AppliedRoster:
    """What applying a version did: ``applied`` (logged now) or ``already_applied``."""

    status: str
    roster: SignedRoster
    index: int


# -- the projection (live and replayed) ------------------------------------------------
def _vouched(roster: SignedRoster | None) -> dict[str, tuple[str, PartyRegulator]]:
    """Regulators of active parties, by principal id, with their party's code."""
    if roster is None:
        return {}
    return {reg.id: (p.code, reg) for p in roster.body.parties if p.active for reg in p.regulators}


def _last(conn: Connection) -> SignedRoster | None:
    row = conn.execute(
        select(roster_versions.c.document).order_by(roster_versions.c.version.desc()).limit(1)
    ).first()
    return None if row is None else parse_roster(orjson.loads(row.document))


def _set_signer(conn: Connection, keyid: str, status: str, index: int, owner: str) -> None:
    row = conn.execute(select(signers.c.status).where(signers.c.keyid == keyid)).first()
    if row is None or row.status == status:
        return
    conn.execute(
        update(signers).where(signers.c.keyid == keyid).values(status=status, entry_index=index)
    )
    event = "retired" if status == "retired" else "added"
    conn.execute(
        insert(key_events).values(entry_index=index, keyid=keyid, agent_id=owner, event=event)
    )


def _add_key(conn: Connection, owner: str, public_key: bytes, index: int) -> str:
    keyid = key_thumbprint(public_key)
    row = conn.execute(select(signers.c.name).where(signers.c.keyid == keyid)).first()
    if row is not None and row.name != owner:
        raise BadRequest(
            f"the roster gives {owner} key {keyid[:16]}…, which this node knows as "
            f"{row.name}'s; one key signs for one principal",
            code="key_in_use",
            status=409,
        )
    if row is None:
        conn.execute(
            insert(signers).values(
                keyid=keyid, name=owner, public_key=public_key, status="active", entry_index=index
            )
        )
        conn.execute(
            insert(key_events).values(entry_index=index, keyid=keyid, agent_id=owner, event="added")
        )
    else:
        _set_signer(conn, keyid, "active", index, owner)
    return keyid


def _admit(conn: Connection, index: int, code: str, reg: PartyRegulator) -> None:
    keyid = _add_key(conn, reg.id, base64.b64decode(reg.public_key), index)
    row = conn.execute(select(principals.c.keyid).where(principals.c.id == reg.id)).first()
    values = {"role": "regulator", "jurisdiction": code, "name": reg.name, "keyid": keyid}
    if row is None:
        conn.execute(insert(principals).values(id=reg.id, entry_index=index, **values))
        return
    if row.keyid != keyid:  # the roster rotated its key: the old one stops signing
        _set_signer(conn, row.keyid, "retired", index, reg.id)
    conn.execute(
        update(principals).where(principals.c.id == reg.id).values(entry_index=index, **values)
    )


def _drop(conn: Connection, index: int, principal_id: str) -> None:
    row = conn.execute(select(principals.c.keyid).where(principals.c.id == principal_id)).first()
    if row is not None:
        _set_signer(conn, row.keyid, "retired", index, principal_id)


def apply_roster(conn: Connection, index: int, roster: SignedRoster) -> None:
    """Record ``roster`` (the next version) and bring the regulators in line with it."""
    previous = _last(conn)
    expected = 1 if previous is None else previous.version + 1
    if roster.version != expected:
        raise RosterError(
            f"roster version {roster.version} does not follow the stored version {expected - 1}",
            code="roster_version",
            detail={"stored": expected - 1, "version": roster.version},
        )
    conn.execute(
        insert(roster_versions).values(
            version=roster.version,
            digest=roster.digest(),
            document=roster.to_bytes().decode(),
            entry_index=index,
        )
    )
    old, new = _vouched(previous), _vouched(roster)
    for principal_id in sorted(old.keys() - new.keys()):
        _drop(conn, index, principal_id)
    for principal_id in sorted(new):
        code, reg = new[principal_id]
        if old.get(principal_id) != (code, reg) or previous is None:
            _admit(conn, index, code, reg)


def stored_rosters(conn: Connection) -> list[tuple[int, str, dict[str, Any], int]]:
    """Every stored version: (version, digest, document, log index), oldest first."""
    rows = conn.execute(select(roster_versions).order_by(roster_versions.c.version)).all()
    return [(r.version, r.digest, orjson.loads(r.document), r.entry_index) for r in rows]


# -- the service ----------------------------------------------------------------------
class RosterLog:
    """Applies roster versions on this node: verified, logged, stored, put in force."""

    def __init__(
        self,
        engine: Engine,
        log: LogService,
        node: EnvelopeSigner,
        federation: Federation,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._engine = engine
        self._log = log
        self._node = node
        self.federation = federation
        self._clock = clock
        self._lock = threading.RLock()  # apply reloads under it
        self._applied: list[Callable[[SignedRoster], None]] = []

    def on_applied(self, listener: Callable[[SignedRoster], None]) -> None:
        """Call ``listener`` with each version this node applies from now on (not loads)."""
        self._applied.append(listener)

    def chain(self) -> list[tuple[int, str, dict[str, Any], int]]:
        with read_tx(self._engine) as conn:
            return stored_rosters(conn)

    def version(self, version: int) -> tuple[int, str, dict[str, Any], int] | None:
        return next((v for v in self.chain() if v[0] == version), None)

    def load(self, genesis: SignedRoster | None) -> None:
        """Put in force the stored chain (checked from its genesis, which must be
        ``genesis`` when one is configured), else ``genesis`` itself (logged at start)."""
        chain = self.chain()
        if chain:
            self._install_stored(chain, genesis)
        elif genesis is not None:
            self.federation.install(genesis)

    def persist_genesis(self) -> None:
        """Log the genesis in force if this node's log holds no roster yet."""
        roster = self.federation.roster
        if roster is None or roster.version != 1 or self.chain():
            return
        try:
            self._append(roster)
        except RosterError:  # another worker sharing the database logged it first
            if not self.chain():
                raise

    def _install_stored(
        self, chain: list[tuple[int, str, dict[str, Any], int]], genesis: SignedRoster | None
    ) -> None:
        if genesis is not None and chain[0][1] != genesis.digest():
            raise ConfigError(
                f"this node's database holds a roster chain founded on genesis {chain[0][1]}, "
                f"but CUSTODES_ROSTER_FILE is genesis {genesis.digest()}: point the setting "
                "at the genesis this node joined, or use a new data directory"
            )
        try:  # expiry is the node's to act on later, not a reason to refuse to start
            last = verify_chain([c[2] for c in chain], now=datetime.min.replace(tzinfo=UTC))
        except RosterError as exc:
            raise ConfigError(f"the roster chain stored on this node fails: {exc}") from exc
        self.federation.install(last)

    def reload(self) -> bool:
        """Put in force a newer version another worker stored; whether one was found."""
        with self._lock:
            current = self.federation.roster
            chain = self.chain()
            if not chain or (current is not None and chain[-1][0] <= current.version):
                return False
            documents = [c[2] for c in chain if current is None or c[0] > current.version]
            last = verify_chain(documents, trusted=current, now=datetime.min.replace(tzinfo=UTC))
            self.federation.install(last)
            return True

    def apply(self, document: Any) -> AppliedRoster:
        """Apply the next version: verified against the one in force, logged, installed."""
        with self._lock:
            self.reload()  # another worker sharing the database may have applied one
            current = self.federation.roster
            if current is None:
                raise BadRequest(
                    "this node has no roster in force; start it with CUSTODES_ROSTER_FILE "
                    "set to the alliance's genesis roster",
                    code="no_roster",
                    status=409,
                )
            new = parse_roster(document)
            held = self._held(current, new)
            if held is not None:
                return held
            new = verify_next(current, document)
            self._check_fresh(new)
            index = self._append(new, current)
            self.federation.install(new)
        for listener in self._applied:
            listener(new)
        return AppliedRoster("applied", new, index)

    def _held(self, current: SignedRoster, new: SignedRoster) -> AppliedRoster | None:
        if new.version > current.version:
            return None
        stored = self.version(new.version)
        if stored is not None and stored[1] == new.digest():
            return AppliedRoster("already_applied", new, stored[3])
        raise RosterError(
            f"roster version {new.version} differs from the version {new.version} this node "
            f"applied ({stored[1] if stored else 'unknown'}): a fork of the roster chain",
            code="roster_fork",
            status=409,
            detail={"held": stored[1] if stored else None, "offered": new.digest()},
        )

    def _check_fresh(self, roster: SignedRoster) -> None:
        if roster.expires <= self._clock():
            raise RosterError(
                f"roster version {roster.version} expired at "
                f"{roster.expires:%Y-%m-%dT%H:%M:%SZ}; its signers must issue a fresh one",
                code="roster_expired",
            )
        if len(roster.to_bytes()) > MAX_ROSTER_BYTES:
            raise RosterError(
                f"roster version {roster.version} is larger than one log entry holds "
                f"({MAX_ROSTER_BYTES} bytes)",
                code="roster_too_large",
                status=413,
            )

    def _append(self, roster: SignedRoster, previous: SignedRoster | None = None) -> int:
        envelope = sign_envelope(ROSTER_TYPE, canonical_dumps(roster.document), [self._node])
        index = self._log.append_own(envelope, lambda c, i: apply_roster(c, i, roster))
        # Cached keys of regulators added, rotated or dropped are looked up afresh.
        for _, reg in [*_vouched(previous).values(), *_vouched(roster).values()]:
            self._log.signers.forget(key_thumbprint(base64.b64decode(reg.public_key)))
        return index


def roster_of_entry(payload: bytes) -> SignedRoster:
    """The roster a logged entry holds (parsed, not re-verified: it was when logged)."""
    try:
        return parse_roster(orjson.loads(payload))
    except orjson.JSONDecodeError as exc:
        raise CustodesError(f"a roster entry is not JSON: {exc}", code="corrupt_entry") from exc


def _replay(conn: Connection, index: int, payload: bytes) -> None:
    apply_roster(conn, index, roster_of_entry(payload))


register_entry_type(ROSTER_TYPE, _replay, ("roster_versions",))

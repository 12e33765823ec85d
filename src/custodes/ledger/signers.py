"""SignerDirectory: the keys allowed to sign entries, a projection of signer entries.

Until the registry exists, a node's operator registers signer keys (an admin command or
the admin-token API). Each registration is an entry the node signs and appends; the
``signers`` table changes in the same transaction, so the table can always be rebuilt
from the log.
"""

from __future__ import annotations

import base64
import threading
import time

from sqlalchemy import Connection, Engine, insert, select, update

from custodes.errors import BadRequest
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    key_thumbprint,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.ed25519 import check_public_key
from custodes.ledger.errors import EnvelopeError
from custodes.ledger.payloads import SIGNER_TYPE, SignerRecord
from custodes.ledger.store import Projector, signers
from custodes.store.db import read_tx
from custodes.store.notify import Bus

__all__ = ["SignerDirectory", "apply_signer", "signer_entry"]


# How long a key looked up stays trusted without asking the database again. A key
# retired through any worker is forgotten by every worker at once (``SIGNERS_CHANNEL``);
# this bound is for what no bus reaches (a SQLite file shared with a CLI process).
CACHE_SECONDS = 2.0
SIGNERS_CHANNEL = "custodes_signers"


class SignerDirectory:
    """Looks up active signer keys by key id, caching what it has read (briefly)."""

    def __init__(self, engine: Engine, bus: Bus | None = None) -> None:
        self._engine = engine
        self._cache: dict[str, tuple[str, bytes, float]] = {}
        self._lock = threading.Lock()
        self._bus = bus or Bus()
        self._bus.on(SIGNERS_CHANNEL, lambda message: self._drop(str(message["keyid"])))
        self._bus.on_resync(self._drop_all)  # a retirement may have been missed meanwhile

    def _load(self, keyid: str) -> tuple[str, bytes] | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(keyid)
        if hit is not None and now - hit[2] < CACHE_SECONDS:
            return hit[0], hit[1]
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(signers.c.name, signers.c.public_key).where(
                    signers.c.keyid == keyid, signers.c.status == "active"
                )
            ).one_or_none()
        if row is None:
            return None
        found = (str(row.name), bytes(row.public_key))
        with self._lock:
            self._cache[keyid] = (*found, now)
        return found

    def public_key(self, keyid: str) -> bytes | None:
        found = self._load(keyid)
        return None if found is None else found[1]

    def name_of(self, keyid: str) -> str | None:
        found = self._load(keyid)
        return None if found is None else found[0]

    def verify(self, envelope: Envelope) -> list[str]:
        """The key ids whose signatures verify (``verify_envelope`` over the active keys);
        an envelope signed only by retired keys is told when they were retired."""
        try:
            return verify_envelope(envelope, self.public_key)
        except EnvelopeError as exc:
            if exc.code != "unknown_signer":
                raise
            raise self._retired(envelope) or exc from None

    def _retired(self, envelope: Envelope) -> EnvelopeError | None:
        keyids = [s.keyid for s in envelope.signatures]
        with read_tx(self._engine) as conn:
            row = conn.execute(
                select(signers.c.keyid, signers.c.name, signers.c.entry_index)
                .where(signers.c.keyid.in_(keyids), signers.c.status == "retired")
                .order_by(signers.c.entry_index.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return EnvelopeError(
            f"key {row.keyid[:16]}… of {row.name} was retired at log index "
            f"{row.entry_index}; sign with its current key (`custodes registry agent show` "
            "lists an agent's keys), or add a new one with `custodes registry agent "
            "rotate-key`",
            code="unknown_signer",
            status=403,
            detail={"keyids": keyids, "retired_keyid": row.keyid, "retired_at": row.entry_index},
        )

    def forget(self, keyid: str) -> None:
        """Stop trusting a cached ``keyid`` (retired, or changed) here and in every worker."""
        self._drop(keyid)
        self._bus.tell(SIGNERS_CHANNEL, {"keyid": keyid})

    def _drop(self, keyid: str) -> None:
        with self._lock:
            self._cache.pop(keyid, None)

    def _drop_all(self) -> None:
        with self._lock:
            self._cache.clear()

    def list(self) -> list[dict[str, object]]:
        with read_tx(self._engine) as conn:
            rows = conn.execute(select(signers).order_by(signers.c.entry_index)).all()
        return [
            {
                "keyid": r.keyid,
                "name": r.name,
                "public_key": base64.b64encode(r.public_key).decode(),
                "status": r.status,
                "entry_index": r.entry_index,
            }
            for r in rows
        ]


def signer_entry(
    name: str, public_key: bytes, node: EnvelopeSigner, status: str = "active"
) -> tuple[Envelope, Projector]:
    """The node-signed entry registering (or retiring) a key, and its projection."""
    if len(public_key) != 32:
        raise BadRequest(
            "a signer's public key is the raw 32-byte Ed25519 key, base64-encoded",
            code="bad_public_key",
        )
    if status == "active":  # a weak key registered before it was refused can still retire
        check_public_key(public_key, what="signer's public key")
    keyid = key_thumbprint(public_key)
    record = SignerRecord(
        name=name, keyid=keyid, public_key=base64.b64encode(public_key).decode(), status=status
    )
    envelope = sign_envelope(SIGNER_TYPE, record.model_dump_json().encode(), [node])

    return envelope, lambda conn, index: apply_signer(conn, index, record)


def apply_signer(conn: Connection, index: int, record: SignerRecord) -> None:
    """Project a node-issued signer entry (register or retire a key)."""
    public_key = base64.b64decode(record.public_key)
    existing = conn.execute(
        select(signers.c.status).where(signers.c.keyid == record.keyid).with_for_update()
    ).scalar_one_or_none()
    if existing is None:
        conn.execute(
            insert(signers).values(
                keyid=record.keyid,
                name=record.name,
                public_key=public_key,
                status=record.status,
                entry_index=index,
            )
        )
    elif existing == record.status:
        raise BadRequest(
            f"key {record.keyid[:16]}… is already {record.status}", code="signer_exists", status=409
        )
    else:
        conn.execute(
            update(signers)
            .where(signers.c.keyid == record.keyid)
            .values(status=record.status, entry_index=index)
        )

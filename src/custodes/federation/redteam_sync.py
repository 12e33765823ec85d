"""Red-teaming objects across the alliance: push at once, pull to catch up (docs/design/0029).

A **delivery** is a DSSE envelope of ``DELIVERY_TYPE`` signed by the sending node's entry
key (the roster's), over::

    {"v": 1, "message_id": "<uuid>", "from": "FR", "to": "GB", "sent_at": <Unix s>,
     "objects": [{"object": <STIX dict>, "audience": <Audience>, "disclosure": ...}],
     "reached": <the sender's seq, pull answers only>, "more": false}

``open_delivery`` is its parser: an ``OpenedDelivery`` exists only once the sender is an
active party (member or partner) of the roster in force here, its entry key signed the
message and the message is addressed to this party. ``RedteamReceiver.store`` then checks
each object against this node's table in the transaction that stores it: this party is
entitled to it (``tlp.can_read`` for this node: the sender must not have sent it
otherwise), and its id is not held here from another owner (ids never fork; an identical
copy of a shared object, a TLP marking say, is a no-op). Any refusal is a 4xx and stores
nothing; a delivery stored twice stores nothing new.

**Push** (``RedteamPusher``): the service's ``published`` hook hands it the node's own
objects just stored; each entitled active peer gets them at once from a small thread
pool, with a bounded timeout. A failed push is left to the pull.

**Pull** (``RedteamPuller``, leading worker): at start and every
``CUSTODES_REDTEAM_PULL_INTERVAL`` seconds, this node asks each active peer for the
peer's own objects after the last seq it pulled (``redteam_sync``), with a request
(``PULL_TYPE``: ``{v, from, to, after, at}``) signed by its entry key, fresh within
``PULL_FRESHNESS`` seconds. The peer answers a signed delivery of up to
``CUSTODES_REDTEAM_PULL_BATCH`` objects this party is entitled to (``pull_answer``) and
the seq it reached; both are stored and advanced in one transaction. ``reached`` stops
before rows younger than ``SETTLE`` seconds, so a transaction that commits out of seq
order (several workers on PostgreSQL) is pulled next time; those recent rows come again,
and store nothing twice.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import httpx
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from custodes.errors import AuthError, BadRequest, CustodesError
from custodes.federation.roster import Party
from custodes.federation.state import Federation
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    key_thumbprint,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import EnvelopeError
from custodes.redteam.models import DISCLOSURE_ID
from custodes.redteam.stix import extension_definitions
from custodes.redteam.store import (
    StoredObject,
    put_object,
    redteam_sync,
    stix_objects,
    stored_object,
)
from custodes.redteam.tlp import Audience, Reader, can_read, marking_definitions
from custodes.redteam.validation import validate_objects
from custodes.store.db import read_tx, write_tx

if TYPE_CHECKING:
    from custodes.node import Node

__all__ = [
    "DELIVERIES_PATH",
    "DELIVERY_TYPE",
    "PULL_PATH",
    "PULL_TYPE",
    "DeliveredObject",
    "Delivery",
    "OpenedDelivery",
    "PullRequest",
    "RedteamPuller",
    "RedteamPusher",
    "RedteamReceiver",
    "RedteamSync",
    "last_pulled",
    "open_delivery",
    "open_pull",
    "open_redteam_sync",
    "pull_answer",
    "sign_delivery",
    "sign_pull",
]

log = logging.getLogger("custodes.federation.redteam")

DELIVERY_TYPE = "application/vnd.custodes.redteam-delivery+json"
PULL_TYPE = "application/vnd.custodes.redteam-pull+json"
DELIVERIES_PATH = "/api/v1/federation/redteam/deliveries"
PULL_PATH = "/api/v1/federation/redteam/pull"
MAX_OBJECTS = 1000  # per delivery
PULL_FRESHNESS = 120.0  # seconds either side of this node's clock
SETTLE = 5.0  # seconds before a pulled row counts as reached (see the module docstring)
_SCAN = 2000  # rows read per pull answer, at most
# Every node stores these itself, alike (RedteamService.ensure_shared_objects): the TLP
# markings, our extension-definitions and the Custodes identity that made them. Never
# sent, so two nodes of different releases never block each other's deliveries on them.
_SHARED_IDS = frozenset(o["id"] for o in [*marking_definitions(), *extension_definitions()])
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_CODE = r"^[A-Z]{2}$"

M = TypeVar("M", bound="_Message")
Validate = Callable[[list[dict[str, Any]]], dict[str, list[str]]]
Received = Callable[[list[StoredObject], str], None]


# -- the messages ---------------------------------------------------------------------------
class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class DeliveredObject(_Message):
    """One STIX object version, with who may read it and its disclosure."""

    object: dict[str, Any]
    audience: Audience
    disclosure: str | None = Field(default=None, pattern=DISCLOSURE_ID)

    @field_validator("object")
    @classmethod
    def _stix(cls, obj: dict[str, Any]) -> dict[str, Any]:
        kind, oid = obj.get("type"), obj.get("id")
        if not isinstance(kind, str) or not isinstance(oid, str):
            raise ValueError("a STIX object needs a string type and id")
        if not oid.startswith(f"{kind}--") or len(oid) > 128:
            raise ValueError(f"the id {oid[:80]!r} is not <type>--<uuid> for type {kind!r}")
        if obj.get("spec_version") != "2.1":
            raise ValueError(f"{oid} is not STIX 2.1 (spec_version must be '2.1')")
        return obj


class Delivery(_Message):
    """What a delivery's envelope signs (see the module docstring)."""

    v: Literal[1] = 1
    message_id: str = Field(pattern=_UUID)
    sender: str = Field(alias="from", pattern=_CODE)
    to: str = Field(pattern=_CODE)
    sent_at: float = Field(ge=0)
    objects: list[DeliveredObject] = Field(max_length=MAX_OBJECTS)
    reached: int | None = Field(default=None, ge=0)  # pull answers: the sender's seq
    more: bool = False


class PullRequest(_Message):
    """A node's request for a peer's own objects after ``after`` (the peer's seq)."""

    v: Literal[1] = 1
    sender: str = Field(alias="from", pattern=_CODE)
    to: str = Field(pattern=_CODE)
    after: int = Field(ge=0)
    at: float = Field(ge=0)


def _signed(payload_type: str, message: _Message, node: EnvelopeSigner) -> Envelope:
    return sign_envelope(payload_type, orjson.dumps(message.model_dump(by_alias=True)), [node])


def sign_delivery(delivery: Delivery, node: EnvelopeSigner) -> Envelope:
    return _signed(DELIVERY_TYPE, delivery, node)


def sign_pull(request: PullRequest, node: EnvelopeSigner) -> Envelope:
    return _signed(PULL_TYPE, request, node)


def _delivered(stored: StoredObject) -> DeliveredObject:
    return DeliveredObject.model_construct(
        object=stored.object, audience=stored.audience, disclosure=stored.disclosure
    )


# -- opening what arrives -------------------------------------------------------------------
@dataclass(frozen=True)
class OpenedDelivery:
    """A delivery whose sender, signature and recipient checked out."""

    sender: Party
    delivery: Delivery


def _envelope(obj: Any, payload_type: str) -> Envelope:
    try:
        envelope = parse_envelope(obj)
    except EnvelopeError as exc:
        raise BadRequest(exc.message, code=exc.code, status=422) from exc
    if envelope.payload_type != payload_type:
        raise BadRequest(
            f"expected payloadType {payload_type}", code="unsupported_payload_type", status=422
        )
    return envelope


def _parse(model: type[M], payload: bytes, what: str) -> M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "payload"
        raise BadRequest(
            f"the {what} is invalid at {where}: {first['msg']}", code="invalid_payload", status=422
        ) from exc


def _party(federation: Federation, code: str) -> Party:
    party = federation.party(code)
    if party is None:
        raise AuthError(
            f"{code} is not a party on the alliance roster in force here",
            code="unknown_party",
            status=403,
        )
    if not party.active:
        raise AuthError(
            f"{code} is {party.status} on the roster and shares nothing until restored",
            code="party_not_active",
            status=403,
        )
    return party


def _check_signer(envelope: Envelope, party: Party) -> None:
    public_key = party.entry_public_key()
    keyid = key_thumbprint(public_key)
    try:
        verify_envelope(envelope, lambda kid: public_key if kid == keyid else None)
    except EnvelopeError as exc:
        raise AuthError(
            f"the message is not signed by the {party.code} node's entry key (the roster's)",
            code="bad_signature",
            status=403,
        ) from exc


def _addressed(sender: str, to: str, here: str) -> None:
    if to != here or sender == here:
        raise BadRequest(
            f"this message is from {sender} to {to}; this is the {here} node",
            code="wrong_recipient",
            status=422,
        )


def open_delivery(obj: Any, federation: Federation, *, sender: str | None = None) -> OpenedDelivery:
    """Check a delivery (see the module docstring); ``sender``: the party it must be from."""
    envelope = _envelope(obj, DELIVERY_TYPE)
    delivery = _parse(Delivery, envelope.payload, "delivery")
    _addressed(delivery.sender, delivery.to, federation.jurisdiction)
    if sender is not None and delivery.sender != sender:
        raise AuthError(
            f"asked {sender}, but the answer is from {delivery.sender}",
            code="wrong_sender",
            status=403,
        )
    party = _party(federation, delivery.sender)
    _check_signer(envelope, party)
    return OpenedDelivery(party, delivery)


def open_pull(obj: Any, federation: Federation, now: float) -> PullRequest:
    """Check a pull request: an active party's node signed it, to this party, fresh."""
    envelope = _envelope(obj, PULL_TYPE)
    request = _parse(PullRequest, envelope.payload, "pull request")
    _addressed(request.sender, request.to, federation.jurisdiction)
    _check_signer(envelope, _party(federation, request.sender))
    if abs(now - request.at) > PULL_FRESHNESS:
        raise AuthError(
            f"the pull request was signed at {request.at:.0f}, more than "
            f"{PULL_FRESHNESS:.0f} s from this node's clock ({now:.0f}); check both clocks",
            code="stale_request",
            status=403,
        )
    return request


# -- storing what arrives -------------------------------------------------------------------
def _entitled(item: DeliveredObject, here: str) -> None:
    if not can_read(item.audience, Reader.node(here)):
        raise AuthError(
            f"{item.object['id']} is not for this party ({here}) under its audience "
            f"(TLP {item.audience.tlp}, {item.audience.stage}); the sender must not send it",
            code="not_entitled",
            status=403,
        )


def _conflict(conn: Connection, item: DeliveredObject, sender: str) -> bool:
    """Whether the object is an identical copy of a version held from another owner (a
    no-op); 409 when its id is held from another owner otherwise, or its version here
    has other content."""
    obj = item.object
    rows = conn.execute(
        select(stix_objects.c.owner, stix_objects.c.modified, stix_objects.c.object).where(
            stix_objects.c.id == obj["id"]
        )
    ).all()
    version = str(obj.get("modified") or obj.get("created") or "1970-01-01T00:00:00.000Z")
    same = [r for r in rows if r.modified == version]
    if same and orjson.loads(same[0].object) != obj:
        raise BadRequest(
            f"{obj['id']} version {version} is held here with other content; a version "
            "never changes (make a new one with a later modified)",
            code="version_conflict",
            status=409,
        )
    others = {r.owner for r in rows} - {sender}
    if others and not same:
        raise BadRequest(
            f"{obj['id']} is held here from {', '.join(sorted(others))}, its owner; only "
            f"the owner makes its versions, not {sender}",
            code="owned_elsewhere",
            status=409,
        )
    return bool(others)


def _advance(conn: Connection, party: str, reached: int, now: float) -> None:
    found = conn.execute(
        select(redteam_sync.c.last_seq).where(redteam_sync.c.party == party)
    ).scalar()
    if found is None:
        values = {"party": party, "last_seq": reached, "updated_at": now}
        conn.execute(insert(redteam_sync).values(**values))
    elif reached > found:
        conn.execute(
            update(redteam_sync)
            .where(redteam_sync.c.party == party)
            .values(last_seq=reached, updated_at=now)
        )


def last_pulled(engine: Engine, party: str) -> int:
    """The seq of ``party``'s own objects this node has pulled up to (0: none)."""
    with read_tx(engine) as conn:
        found = conn.execute(
            select(redteam_sync.c.last_seq).where(redteam_sync.c.party == party)
        ).scalar()
    return int(found or 0)


class RedteamReceiver:
    """Stores deliveries (pushed or pulled), then tells the service what arrived."""

    def __init__(
        self,
        engine: Engine,
        federation: Federation,
        *,
        validate: Validate | None = None,
        on_received: Received | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._federation = engine, federation
        self._validate, self.on_received, self._clock = validate, on_received, clock

    def receive(self, obj: Any) -> dict[str, Any]:
        """A pushed delivery: checked, stored once; what was new and what was known."""
        opened = open_delivery(obj, self._federation)
        stored = self.store(opened)
        delivery = opened.delivery
        return {
            "message_id": delivery.message_id,
            "from": delivery.sender,
            "stored": len(stored),
            "known": len(delivery.objects) - len(stored),
        }

    def store(self, opened: OpenedDelivery, *, pulled: bool = False) -> list[StoredObject]:
        """Check and store every object in one transaction (all or nothing), advance the
        pull mark for a pull answer, then call ``on_received`` with what is new."""
        self._check_stix(opened.delivery.objects)
        try:
            stored = self._store_once(opened, pulled)
        except IntegrityError:  # a concurrent delivery stored a version first: once more
            stored = self._store_once(opened, pulled)
        if stored and self.on_received is not None:
            try:
                self.on_received(stored, opened.sender.code)
            except Exception:  # stored and acknowledged; the service logs its own failure
                log.exception(
                    "the red-teaming service failed on a delivery from %s", opened.sender.code
                )
        return stored

    def _check_stix(self, items: Sequence[DeliveredObject]) -> None:
        if self._validate is None or not items:
            return
        invalid = self._validate([i.object for i in items])
        if invalid:
            oid, problems = next(iter(invalid.items()))
            raise BadRequest(
                f"{oid} is not valid STIX 2.1: {problems[0] if problems else 'invalid'}",
                code="invalid_stix",
                status=422,
                detail={"invalid": invalid},
            )

    def _store_once(self, opened: OpenedDelivery, pulled: bool) -> list[StoredObject]:
        here, sender = self._federation.jurisdiction, opened.sender.code
        delivery = opened.delivery
        stored: list[StoredObject] = []
        with write_tx(self._engine) as conn:
            for item in delivery.objects:
                _entitled(item, here)
                if _conflict(conn, item, sender):
                    continue
                put = put_object(
                    conn,
                    item.object,
                    owner=sender,
                    audience=item.audience,
                    disclosure=item.disclosure,
                )
                if put is not None:
                    stored.append(put)
            if pulled and delivery.reached is not None:
                _advance(conn, sender, delivery.reached, self._clock())
        return stored


# -- answering a pull -----------------------------------------------------------------------
def pull_answer(
    conn: Connection, owner: str, reader: str, after: int, *, limit: int, now: float
) -> tuple[list[StoredObject], int, bool]:
    """``owner``'s objects after seq ``after`` that ``reader``'s node may hold (at most
    ``limit``), the seq reached (see SETTLE) and whether more rows remain."""
    rows = conn.execute(
        select(stix_objects)
        .where(stix_objects.c.owner == owner, stix_objects.c.seq > after)
        .order_by(stix_objects.c.seq)
        .limit(_SCAN)
    ).all()
    found: list[StoredObject] = []
    reached, settled, more = after, True, len(rows) == _SCAN
    for row in rows:
        item = stored_object(row)
        if item.id not in _SHARED_IDS and can_read(item.audience, Reader.node(reader)):
            if len(found) == limit:
                more = True
                break
            found.append(item)
        settled = settled and item.date_added <= now - SETTLE
        if settled:
            reached = item.seq
    return found, reached, more


# -- pushing --------------------------------------------------------------------------------
def _batches(objects: Sequence[StoredObject], budget: int) -> Iterable[list[StoredObject]]:
    """``objects`` in runs of at most MAX_OBJECTS whose JSON fits ``budget`` bytes."""
    batch: list[StoredObject] = []
    size = 0
    for item in objects:
        weight = len(orjson.dumps(item.object)) + 512
        if batch and (size + weight > budget or len(batch) == MAX_OBJECTS):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += weight
    if batch:
        yield batch


class RedteamPusher:
    """Sends this node's newly stored objects to every entitled peer, off the caller's
    thread, each peer at once; what fails is left to the pull."""

    def __init__(
        self,
        federation: Federation,
        node: EnvelopeSigner,
        *,
        timeout: float,
        budget: int,
        workers: int = 8,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._federation, self._node, self._budget, self._clock = federation, node, budget, clock
        self.http = httpx.Client(timeout=timeout)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="redteam-push")
        self._closed = False

    def push(self, stored: list[StoredObject]) -> None:
        """The service's ``published`` hook: queue a delivery to each entitled peer."""
        here = self._federation.jurisdiction
        own = [s for s in stored if s.owner == here and s.id not in _SHARED_IDS]
        for peer in self._federation.peers():
            entitled = [s for s in own if can_read(s.audience, Reader.node(peer.code))]
            for batch in _batches(entitled, self._budget):
                if not self._closed:
                    self.pool.submit(self._deliver_logged, peer, batch)

    def deliver(self, peer: Party, batch: Sequence[StoredObject]) -> httpx.Response:
        """One delivery of ``batch`` to ``peer``; its answer (httpx errors raised)."""
        delivery = Delivery(
            message_id=str(uuid.uuid4()),
            sender=self._federation.jurisdiction,
            to=peer.code,
            sent_at=self._clock(),
            objects=[_delivered(s) for s in batch],
        )
        envelope = sign_delivery(delivery, self._node)
        return self.http.post(
            peer.url + DELIVERIES_PATH,
            content=envelope.to_bytes(),
            headers={"Content-Type": "application/json"},
        )

    def _deliver_logged(self, peer: Party, batch: Sequence[StoredObject]) -> None:
        try:
            response = self.deliver(peer, batch)
        except httpx.HTTPError as exc:
            log.info(
                "pushing %d objects to %s failed (%s); the pull catches up",
                len(batch),
                peer.code,
                exc,
            )
            return
        if response.status_code >= 300:
            log.warning(
                "%s refused %d red-teaming objects: HTTP %d %s",
                peer.code,
                len(batch),
                response.status_code,
                response.text[:300],
            )

    def close(self) -> None:
        self._closed = True
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.http.close()


# -- pulling --------------------------------------------------------------------------------
class RedteamPuller:
    """The leader's catch-up: each active peer's own objects since the last pull."""

    def __init__(
        self,
        engine: Engine,
        federation: Federation,
        node: EnvelopeSigner,
        receiver: RedteamReceiver,
        pusher: RedteamPusher,
        *,
        interval: float,
        leading: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.time,
        max_pages: int = 20,
    ) -> None:
        self._engine, self._federation, self._node = engine, federation, node
        self._receiver, self._pusher = receiver, pusher
        self.interval, self._leading, self._clock = interval, leading, clock
        self._max_pages = max_pages
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redteam-pull", daemon=True)

    def start(self) -> None:
        if self.interval > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._leading():
                try:
                    self.pull_all()
                except Exception:  # a transient database error: the next round retries
                    log.exception("pulling red-teaming objects failed; retrying")
            self._stop.wait(self.interval)

    def pull_all(self) -> int:
        """Pull from every active peer at once; how many objects were new here."""
        peers = self._federation.peers()
        return sum(self._pusher.pool.map(self._pull_logged, peers))

    def _pull_logged(self, peer: Party) -> int:
        try:
            return self.pull_from(peer)
        except (httpx.HTTPError, CustodesError) as exc:
            log.info("pulling red-teaming objects from %s failed: %s", peer.code, exc)
            return 0

    def pull_from(self, peer: Party) -> int:
        """Pull ``peer``'s own objects until it has no more (bounded); how many were new."""
        new = 0
        for _page in range(self._max_pages):
            opened = self._ask(peer, last_pulled(self._engine, peer.code))
            new += len(self._receiver.store(opened, pulled=True))
            if not opened.delivery.more or self._stop.is_set():
                break
        return new

    def _ask(self, peer: Party, after: int) -> OpenedDelivery:
        me = self._federation.jurisdiction
        request = PullRequest(sender=me, to=peer.code, after=after, at=self._clock())
        response = self._pusher.http.post(
            peer.url + PULL_PATH,
            content=sign_pull(request, self._node).to_bytes(),
            headers={"Content-Type": "application/json"},
        )
        if response.status_code != 200:
            raise BadRequest(
                f"{peer.code} answered the pull with HTTP {response.status_code}: "
                f"{response.text[:300]}",
                code="pull_refused",
                status=502,
            )
        return open_delivery(response.json(), self._federation, sender=peer.code)


# -- the node's part ------------------------------------------------------------------------
class RedteamSync:
    """The receiver, pusher and puller of one node, and the pull answers it gives."""

    def __init__(
        self,
        engine: Engine,
        federation: Federation,
        node: EnvelopeSigner,
        *,
        pull_interval: float,
        pull_batch: int,
        push_timeout: float,
        max_bytes: int,
        leading: Callable[[], bool] = lambda: True,
        validate: Validate | None = None,
        on_received: Received | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine, self._federation, self._node = engine, federation, node
        self._pull_batch, self._clock = pull_batch, clock
        budget = max(max_bytes // 2, 16 * 1024)
        self.receiver = RedteamReceiver(
            engine, federation, validate=validate, on_received=on_received, clock=clock
        )
        self.pusher = RedteamPusher(
            federation, node, timeout=push_timeout, budget=budget, clock=clock
        )
        self.puller = RedteamPuller(
            engine,
            federation,
            node,
            self.receiver,
            self.pusher,
            interval=pull_interval,
            leading=leading,
            clock=clock,
        )

    def answer_pull(self, obj: Any) -> dict[str, Any]:
        """A peer's pull request checked and answered: a signed delivery (JSON)."""
        now = self._clock()
        request = open_pull(obj, self._federation, now)
        me = self._federation.jurisdiction
        with read_tx(self._engine) as conn:
            found, reached, more = pull_answer(
                conn, me, request.sender, request.after, limit=self._pull_batch, now=now
            )
        delivery = Delivery(
            message_id=str(uuid.uuid4()),
            sender=me,
            to=request.sender,
            sent_at=now,
            objects=[_delivered(s) for s in found],
            reached=reached,
            more=more,
        )
        return sign_delivery(delivery, self._node).to_json()

    def start(self) -> None:
        self.puller.start()

    def stop(self) -> None:
        self.puller.stop()
        self.pusher.close()


def open_redteam_sync(node: Node) -> RedteamSync:
    """The node's red-teaming delivery, hooked to its service (``node.redteam``): the
    service's newly published objects are pushed, and what arrives is checked with
    stix2-validator and handed to it."""
    settings = node.settings
    sync = RedteamSync(
        node.engine,
        node.federation,
        node.entry_signer,
        pull_interval=settings.redteam_pull_interval,
        pull_batch=settings.redteam_pull_batch,
        push_timeout=settings.redteam_push_timeout,
        max_bytes=settings.max_body_bytes,
        leading=lambda: node.is_leader,
        validate=validate_objects,
        on_received=node.redteam.on_received,
    )
    node.redteam.published.append(sync.pusher.push)
    return sync

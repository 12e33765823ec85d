"""Request bodies: bounded while they stream in, parsed off the event loop, few large at once.

Every limit is checked against Content-Length first and again while the body streams in
(a chunked upload has no Content-Length). An envelope, i.e. any body that is not an
``{"entries": [...]}`` batch, can be no larger than one log entry (``MAX_ENTRY_SIZE``),
so it is refused past that size before it is parsed. Larger bodies are batches: at most
``max_large_bodies`` are read and parsed at once; the next is answered 503 with
Retry-After instead of queueing memory and CPU without bound. A refusal sent before the
body was read closes the connection, so the rest of the body is never drained.

Parsing runs in a worker thread; a large body's parsing and checks run one body at a
time (they hold the GIL, so two would only take turns with every other request). For
a batch, the order keeps hostile input cheap: JSON (orjson), the batch's
size, each envelope's shape, and only then the RFC 8785 check. An envelope holds only
strings, so that check is orjson's fast path; a body of floats is refused before it
could reach the slow reference canonicaliser that stalled the node.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import orjson
from fastapi import Request
from starlette.requests import ClientDisconnect

from custodes.errors import BadRequest, Overloaded
from custodes.ledger.canonical import MAX_DEPTH, canonical_dumps
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.errors import EnvelopeError
from custodes.ledger.tiles import MAX_ENTRY_SIZE

__all__ = [
    "BodiesBusy",
    "BodyGate",
    "BodyLimit",
    "BodyRefused",
    "ClientGone",
    "Slot",
    "body_gate",
    "parse_entries",
    "parse_envelope_body",
    "parse_registry_body",
    "read_body",
    "read_json",
    "read_registry_change",
]

log = logging.getLogger("custodes.api")
T = TypeVar("T")
_BATCH_HEAD = b'{"entries":['


class BodyRefused(BadRequest):
    """A body refused before it was read in full; the connection closes after the answer."""

    close_connection = True


class BodiesBusy(Overloaded):
    """Every slot for large bodies is taken; the connection closes after the answer."""

    close_connection = True


class ClientGone(BadRequest):
    """The client went away before sending its whole body (nobody reads the answer)."""

    code = "client_disconnected"
    close_connection = True


@dataclass(frozen=True)
class BodyLimit:
    """How large a body may grow: ``envelope`` bytes, or ``batch`` for an entries batch."""

    envelope: int
    batch: int | None = None

    @property
    def most(self) -> int:
        return max(self.envelope, self.batch or 0)

    def for_head(self, head: bytes) -> int:
        """The limit for a body that starts with ``head``."""
        if self.batch is None:
            return self.envelope
        if len(head) < len(_BATCH_HEAD):
            return self.most  # too early to tell
        return self.batch if head.startswith(_BATCH_HEAD) else self.envelope


def _refused(size: int, limit: int) -> BodyRefused:
    if limit == MAX_ENTRY_SIZE:
        return BodyRefused(
            f"the body is at least {size} bytes; an entry is at most {MAX_ENTRY_SIZE} bytes "
            'of canonical JSON (send several envelopes as {"entries": [...]})',
            code="entry_too_large",
            status=413,
        )
    return BodyRefused(
        f"the body is at least {size} bytes; the limit is {limit} (split the batch)",
        code="body_too_large",
        status=413,
    )


class BodyGate:
    """Admits at most ``slots`` large bodies at once (a non-blocking semaphore), and runs
    the work on large bodies in a worker thread, one at a time (``heavy``).

    Only the event loop's thread touches the count, so it needs no lock. Small bodies
    (leases, registry changes) never wait behind a large one.
    """

    def __init__(self, slots: int, threshold: int = MAX_ENTRY_SIZE) -> None:
        self.threshold = threshold
        self.free = slots
        self._parser: anyio.CapacityLimiter | None = None  # made on the serving loop

    async def run(self, function: Callable[..., T], *args: Any, heavy: bool = False) -> T:
        """``function(*args)`` in a worker thread; a heavy one waits for the others."""
        if not heavy:
            return await anyio.to_thread.run_sync(function, *args)
        if self._parser is None:
            self._parser = anyio.CapacityLimiter(1)
        return await anyio.to_thread.run_sync(function, *args, limiter=self._parser)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[Slot]:
        """A slot claimed only if the body turns out large; released on leaving."""
        held = Slot(self)
        try:
            yield held
        finally:
            held.release()


class Slot:
    """One request's claim on a ``BodyGate``, taken only once its body proves large."""

    def __init__(self, gate: BodyGate) -> None:
        self._gate = gate
        self.claimed = False

    def need(self, size: int) -> None:
        """Claim the slot once ``size`` passes the gate's threshold; 503 if none is free."""
        if self.claimed or size <= self._gate.threshold:
            return
        if self._gate.free <= 0:
            raise BodiesBusy("the node is reading as many large bodies as it allows; retry")
        self._gate.free -= 1
        self.claimed = True

    def release(self) -> None:
        if self.claimed:
            self._gate.free += 1
            self.claimed = False


def _declared(request: Request) -> int | None:
    declared = request.headers.get("content-length")
    return int(declared) if declared is not None and declared.isdigit() else None


async def read_body(request: Request, limit: BodyLimit | int, slot: Slot | None = None) -> bytes:
    """The body, refused (413) as soon as it passes its limit; ``slot`` admits large ones."""
    limits = limit if isinstance(limit, BodyLimit) else BodyLimit(limit)
    declared = _declared(request)
    if declared is not None and declared > limits.most:
        raise _refused(declared, limits.most)
    if slot is not None and declared is not None:
        slot.need(declared)
    chunks: list[bytes] = []
    head = b""  # the body's first bytes, enough to tell a batch from an envelope
    size = 0
    try:
        async for chunk in request.stream():
            chunks.append(chunk)
            size += len(chunk)
            if len(head) < len(_BATCH_HEAD):
                head = (head + chunk)[: len(_BATCH_HEAD)]
            allowed = limits.for_head(head)
            if size > allowed:
                raise _refused(size, allowed)
            if slot is not None:
                slot.need(size)
    except ClientDisconnect:
        log.debug("a client went away after sending %d bytes of its body", size)
        raise ClientGone("the client closed the connection before sending its body") from None
    return b"".join(chunks)


# --- parsing (in a worker thread) ----------------------------------------------------------


def _loads(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(
            f"body is not valid JSON: {exc}", code="malformed_json", status=400
        ) from exc
    except RecursionError as exc:  # orjson refuses past 1024 levels
        raise _too_deep() from exc


def _too_deep() -> EnvelopeError:
    return EnvelopeError(f"JSON is nested deeper than {MAX_DEPTH} levels", code="json_too_deep")


def _first_chain_depth(value: Any) -> int:
    """Nesting depth along the first container at each level: cheap on any body, and
    enough to tell a deep body from a merely wrong one (either way a 422)."""
    depth = 0
    while isinstance(value, list | dict) and depth <= MAX_DEPTH:
        depth += 1
        items = value.values() if isinstance(value, dict) else value
        value = next((v for v in items if isinstance(v, list | dict)), None)
    return depth


def _entries_of(body: Any, max_entries: int) -> list[Any]:
    if isinstance(body, dict) and set(body) == {"entries"}:
        batch = body["entries"]
        if not isinstance(batch, list):
            raise BadRequest('"entries" must be a list of DSSE envelopes', code="invalid_batch")
        if len(batch) > max_entries:
            raise BadRequest(
                f"batch has {len(batch)} entries; send at most {max_entries} per request",
                code="batch_too_large",
                status=413,
            )
        return batch
    return [body]


def _envelope_of(entry: Any) -> Any:
    """An append item's envelope: the item, or its ``envelope`` when it carries an opening."""
    if isinstance(entry, dict) and "envelope" in entry:
        return entry["envelope"]
    return entry


def _check_shapes(body: Any, entries: list[Any]) -> None:
    for position, entry in enumerate(entries):
        try:
            parse_envelope(_envelope_of(entry))
        except EnvelopeError as exc:
            if exc.code == "invalid_envelope" and _first_chain_depth(body) > MAX_DEPTH:
                raise _too_deep() from None
            if len(entries) > 1:
                exc.detail = {**exc.detail, "entry": position}
                exc.message = f"entry {position}: {exc.message}"
                exc.args = (exc.message,)
            raise


def _check_canonical(body: Any, raw: bytes) -> None:
    # Envelope-shaped values hold only strings: canonical_dumps takes orjson's fast path.
    if _openings_canonical(body, raw):
        return
    if canonical_dumps(body) != raw:
        raise EnvelopeError(
            "JSON is not in RFC 8785 canonical form (sorted keys, no whitespace, "
            "minimal escapes, no duplicate keys); serialise it with an RFC 8785 encoder",
            code="non_canonical_json",
        )


def _hollow(item: Any) -> Any:
    """``item`` with its opening's record left out (a shallow copy)."""
    opening = item.get("opening") if isinstance(item, dict) else None
    if not (isinstance(opening, dict) and isinstance(opening.get("record"), dict)):
        return item
    return {**item, "opening": {**opening, "record": {}}}


def _openings_canonical(body: Any, raw: bytes) -> bool:
    """True when a batch carrying openings is canonical, proven without walking the
    openings' records: orjson's sorted bytes are the body, and the rest of the body is
    what canonical_dumps writes the same way. A record is then proven by its validation
    (custodes.ledger.commitments: strings, and an int ``v``, whose orjson bytes are
    RFC 8785). False: not proven, the full check decides."""
    items = body.get("entries") if isinstance(body, dict) else None
    if not isinstance(items, list) or not any(_hollow(i) is not i for i in items):
        return False
    try:
        if orjson.dumps(body, option=orjson.OPT_SORT_KEYS) != raw:
            return False
    except TypeError:  # a lone surrogate: the full check names it
        return False
    hollow = {**body, "entries": [_hollow(i) for i in items]}
    return canonical_dumps(hollow) == orjson.dumps(hollow, option=orjson.OPT_SORT_KEYS)


def _check_form(body: Any, raw: bytes, entries: list[Any]) -> None:
    """Canonical form and envelope shapes. Up to one entry's size the canonical check
    comes first, as it always has; past it (a batch), shapes first, so the canonical
    check never needs the slow path. Either order refuses the same bodies, with a 4xx."""
    if len(raw) <= MAX_ENTRY_SIZE:
        _check_canonical(body, raw)
        _check_shapes(body, entries)
    else:
        _check_shapes(body, entries)
        _check_canonical(body, raw)


def parse_entries(raw: bytes, max_entries: int) -> list[Any]:
    """The items of an entries body (one, or a batch), checked for shape and form: each
    an envelope, or ``{"envelope", "opening"}`` for a committed decision."""
    body = _loads(raw)
    entries = _entries_of(body, max_entries)
    _check_form(body, raw, entries)
    return entries


def parse_envelope_body(raw: bytes) -> Any:
    """One canonical DSSE envelope's JSON (shape checked, content not yet)."""
    body = _loads(raw)
    _check_form(body, raw, [body])
    return body


# Room beside a registry change's envelope for the clear text of its private fields.
_PRIVATE_ROOM = 16 * 1024


def parse_registry_body(raw: bytes) -> Any:
    """A registry change: one canonical DSSE envelope, or ``{"envelope", "private"}``."""
    body = _loads(raw)
    _check_canonical(body, raw)
    envelope = body.get("envelope") if isinstance(body, dict) and "private" in body else body
    _check_shapes(envelope, [envelope])
    return body


def body_gate(request: Request) -> BodyGate:
    gate: BodyGate = request.app.state.bodies
    return gate


async def read_json(request: Request, limit: int = MAX_ENTRY_SIZE) -> Any:
    """A canonical DSSE envelope body of at most ``limit`` bytes, parsed off the loop."""
    raw = await read_body(request, min(limit, MAX_ENTRY_SIZE))
    return await body_gate(request).run(parse_envelope_body, raw)


async def read_registry_change(request: Request) -> Any:
    """A registry change body (see ``parse_registry_body``), parsed off the loop."""
    raw = await read_body(request, MAX_ENTRY_SIZE + _PRIVATE_ROOM)
    return await body_gate(request).run(parse_registry_body, raw)

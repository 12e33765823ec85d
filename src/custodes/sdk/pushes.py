"""Pushed kill orders, as the guard reads them: server-sent events countersigned by the node.

The guard opens each kill-order stream with a fresh random ``nonce``. The node answers
every ``order`` event with a ``push``: a DSSE envelope (``ORDER_PUSH_TYPE``) signed by its
entry key — the key the guard already checks leases with — over::

    {"v": 1, "event": "order", "stream": <the nonce>, "seq": 1, 2, ..., "at": <Unix s>,
     "agent_id": <the order's agent>, "index": <the order's log index>, "order": {...}}

``verify_push`` is the parser: a ``PushedOrder`` exists only once the signature, the
stream nonce (so an event captured from another stream or an earlier connection does not
replay), a sequence number above the last one accepted (so events cannot be replayed or
re-ordered within the stream) and the agent have checked out. The event's unsigned
``index`` / ``order`` fields, kept for readers, are never used. ``UnverifiedPush`` is
what the guard ignores (it never moves its horizon on one).

An order by selector reaches a one-agent stream as an order naming that agent (the node
vouches that the selector covers it). A fleet's stream (``?operator=``: many agents in
one process) receives each order once, its signed push listing the covered agents
(``"agents": [...]``); ``verify_fleet_push`` reads it and ``custodes.sdk.fleet`` hands
the order to each listed agent's ``GuardState``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from custodes.errors import CustodesError
from custodes.ledger.dsse import key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.errors import EnvelopeError

__all__ = [
    "ORDER_PUSH_TYPE",
    "FleetPush",
    "LogThrottle",
    "PushedOrder",
    "UnverifiedPush",
    "sse_events",
    "stream_nonce",
    "verify_fleet_push",
    "verify_push",
]

ORDER_PUSH_TYPE = "application/vnd.custodes.order-push+json"


class UnverifiedPush(CustodesError):
    """A pushed event the guard cannot verify as its node's, for this stream and agent."""

    code = "unverified_push"
    status = 403


@dataclass(frozen=True)
class PushedOrder:
    """A kill order the home node pushed on this stream, verified."""

    order: Mapping[str, Any]
    index: int
    seq: int


def stream_nonce() -> str:
    """A fresh challenge for one stream connection (16 random bytes, hex)."""
    return secrets.token_hex(16)


def _push_envelope(data: str) -> Any:
    try:
        message = orjson.loads(data)
        return parse_envelope(message["push"])
    except (orjson.JSONDecodeError, KeyError, TypeError, EnvelopeError) as exc:
        raise UnverifiedPush("the event carries no countersignature by the node") from exc


def _signed_payload(data: str, node_public_key: bytes) -> dict[str, Any]:
    envelope = _push_envelope(data)
    if envelope.payload_type != ORDER_PUSH_TYPE:
        raise UnverifiedPush(f"the event is a {envelope.payload_type!r}, not an order push")
    keyid = key_thumbprint(node_public_key)
    try:
        verify_envelope(envelope, lambda kid: node_public_key if kid == keyid else None)
        payload = orjson.loads(envelope.payload)
    except (EnvelopeError, orjson.JSONDecodeError) as exc:
        raise UnverifiedPush("the event is not signed by the home node's entry key") from exc
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise UnverifiedPush("the signed push is not a version-1 push object")
    return payload


def _integer(payload: Mapping[str, Any], name: str) -> int:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UnverifiedPush(f"the signed push's {name!r} must be a non-negative integer")
    return value


def _check_binding(payload: Mapping[str, Any], agent_id: str, stream: str) -> None:
    if payload.get("event") != "order":
        raise UnverifiedPush("the signed push is not an order event")
    if payload.get("stream") != stream:
        raise UnverifiedPush("the push was signed for another stream (a replay)")
    order = payload.get("order")
    if payload.get("agent_id") != agent_id or not isinstance(order, dict):
        raise UnverifiedPush("the push was signed for another agent")
    if order.get("agent_id") != agent_id:
        raise UnverifiedPush("the pushed order names another agent")


@dataclass(frozen=True)
class FleetPush:
    """A kill order the home node pushed on a fleet's stream, with the agents it covers."""

    order: Mapping[str, Any]
    index: int
    seq: int
    agents: tuple[str, ...]

    def for_agent(self, agent_id: str) -> dict[str, Any]:
        """The order as one covered agent's guard reads it (``GuardState.on_order``)."""
        return dict(self.order) | {"agent_id": agent_id}


def _agents(payload: Mapping[str, Any]) -> tuple[str, ...]:
    agents = payload.get("agents")
    if not isinstance(agents, list) or not all(isinstance(a, str) and a for a in agents):
        raise UnverifiedPush("the signed push lists no covered agents")
    return tuple(agents)


def verify_fleet_push(
    data: str, *, node_public_key: bytes, stream: str, after_seq: int
) -> FleetPush:
    """The order and covered agents in an ``order`` event of a fleet's stream (one
    operator's agents: ``?operator=``), or UnverifiedPush.

    One countersignature covers every agent listed, however many a selector order halts;
    the checks are those of ``verify_push``, with the listed agents in place of one.
    """
    payload = _signed_payload(data, node_public_key)
    if payload.get("event") != "order":
        raise UnverifiedPush("the signed push is not an order event")
    if payload.get("stream") != stream:
        raise UnverifiedPush("the push was signed for another stream (a replay)")
    order = payload.get("order")
    if not isinstance(order, dict):
        raise UnverifiedPush("the signed push carries no order")
    seq = _integer(payload, "seq")
    if seq <= after_seq:
        raise UnverifiedPush(f"push {seq} arrived after push {after_seq} (a replay)")
    return FleetPush(order, _integer(payload, "index"), seq, _agents(payload))


def verify_push(
    data: str, *, node_public_key: bytes, agent_id: str, stream: str, after_seq: int
) -> PushedOrder:
    """The order in an ``order`` event's ``data``, or UnverifiedPush (see the docstring).

    ``after_seq`` is the sequence number of the last push accepted on this stream (0
    before the first).
    """
    payload = _signed_payload(data, node_public_key)
    _check_binding(payload, agent_id, stream)
    seq = _integer(payload, "seq")
    if seq <= after_seq:
        raise UnverifiedPush(f"push {seq} arrived after push {after_seq} (a replay)")
    return PushedOrder(payload["order"], _integer(payload, "index"), seq)


class _SSEParser:
    """Server-sent events, line by line: yields (event, data) at each blank line."""

    def __init__(self) -> None:
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> tuple[str, str] | None:
        if not line:
            found = (self._event, "\n".join(self._data)) if self._data else None
            self._event, self._data = "message", []
            return found
        if line.startswith(":"):  # a comment: the node's heartbeat
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None


def sse_events(lines: Iterable[str]) -> Iterator[tuple[str, str] | None]:
    """Each line's event (or None), so the reader can stop between heartbeats."""
    parser = _SSEParser()
    for line in lines:
        yield parser.feed(line)


class LogThrottle:
    """Log a recurring problem once, then at most once every ``every`` seconds, with the
    number of occurrences not logged meanwhile: a flood of forged events fills no disk."""

    def __init__(
        self,
        logger: logging.Logger,
        every: float = 60.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log, self._every, self._clock = logger, every, clock
        self._next = float("-inf")
        self._quiet = 0

    def warning(self, message: str, *args: object) -> None:
        now = self._clock()
        if now < self._next:
            self._quiet += 1
            return
        if self._quiet:
            message += f" ({self._quiet} more since the last such warning)"
        self._log.warning(message, *args)
        self._next, self._quiet = now + self._every, 0

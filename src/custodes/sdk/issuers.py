"""IssuerKeys: the guard checks who signed a kill order, not only the channel it came on.

The home node countersigns every order it pushes (``custodes.sdk.pushes``): that proves
the node sent it on this stream, not that a regulator ordered it. Each pushed event also
carries the order's logged envelope, signed by its issuer. ``IssuerKeys.verify`` checks
that signature against keys the guard knows on its own terms:

- a regulator's key from the alliance roster (a ``SignedRoster`` whose chain the caller
  verified from its genesis): the regulators every *member* vouches for (partners issue
  no orders);
- an operator's key (an operator may suspend its own agents) from the node's registry of
  signers, looked up by the order's ``actor`` and cached.

Without a roster, every issuer is looked up in the registry. The envelope must say what
the countersigned push says (order id, operation, scope, territory, the order lifted,
actor, and the agent unless a selector names it). ``UnverifiedOrder`` is what the guard
ignores, logged (throttled), whatever the push's countersignature.
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from custodes.errors import CustodesError
from custodes.federation.roster import SignedRoster
from custodes.ledger.dsse import key_thumbprint, parse_envelope, verify_envelope
from custodes.ledger.errors import EnvelopeError

__all__ = ["ORDER_TYPE", "IssuerKeys", "UnverifiedOrder", "registry_lookup"]

ORDER_TYPE = "application/vnd.custodes.kill-order+json"
_SAME = ("order_id", "op", "scope", "territory", "lifts", "actor")
_MISS_TTL = 5.0  # seconds before an unknown issuer is looked up in the registry again

# The active keys the node's registry holds for a principal id (raw Ed25519 each).
RegistryLookup = Callable[[str], list[bytes]]


class UnverifiedOrder(CustodesError):
    """A pushed order whose issuer signature the guard cannot verify."""

    code = "unverified_order"
    status = 403


def registry_lookup(signers: Callable[[], list[dict[str, Any]]]) -> RegistryLookup:
    """A lookup over ``signers()`` (``Client.signers``: the node's registered keys)."""

    def lookup(name: str) -> list[bytes]:
        found = []
        for row in signers():
            if row.get("name") == name and row.get("status") == "active":
                try:
                    found.append(base64.b64decode(str(row.get("public_key")), validate=True))
                except (binascii.Error, ValueError):
                    continue
        return found

    return lookup


class IssuerKeys:
    def __init__(
        self,
        roster: SignedRoster | None = None,
        registry: RegistryLookup | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._registry, self._clock = registry, clock
        self._roster: dict[str, bytes] = {}
        self.roster = roster
        if roster is not None:
            for party in roster.body.members():
                for regulator in party.regulators:
                    self._roster[regulator.id] = base64.b64decode(regulator.public_key)
        self._lock = threading.Lock()
        self._known: dict[str, list[bytes]] = {}
        self._missed: dict[str, float] = {}

    def verify(self, envelope: Any, order: Mapping[str, Any]) -> str:
        """The issuer of ``order`` (as pushed) once its ``envelope`` checks out."""
        parsed, payload = _open(envelope)
        _same(payload, order)
        actor = str(payload.get("actor"))
        keys = self._keys(actor)
        if not keys:
            raise UnverifiedOrder(f"the guard knows no key for the order's issuer {actor}")
        if any(_signed(parsed, key) for key in keys):
            return actor
        raise UnverifiedOrder(f"the order is not signed by {actor}'s known key")

    def _keys(self, actor: str) -> list[bytes]:
        if actor in self._roster:
            return [self._roster[actor]]
        if self.roster is not None and actor.startswith("regulator:"):
            return []  # with a roster, regulators are the roster's alone
        return self._from_registry(actor)

    def _from_registry(self, actor: str) -> list[bytes]:
        if self._registry is None:
            return []
        now = self._clock()
        with self._lock:
            if actor in self._known:
                return self._known[actor]
            if now - self._missed.get(actor, float("-inf")) < _MISS_TTL:
                return []
        try:
            keys = self._registry(actor)
        except CustodesError:
            keys = []
        with self._lock:
            if keys:
                self._known[actor] = keys
            else:
                self._missed[actor] = now
        return keys


def _signed(envelope: Any, key: bytes) -> bool:
    keyid = key_thumbprint(key)
    try:
        verify_envelope(envelope, lambda kid: key if kid == keyid else None)
    except EnvelopeError:
        return False
    return True


def _open(envelope: Any) -> tuple[Any, dict[str, Any]]:
    if envelope is None:
        raise UnverifiedOrder("the pushed event carries no signed order envelope")
    try:
        parsed = parse_envelope(envelope)
        payload = orjson.loads(parsed.payload)
    except (EnvelopeError, orjson.JSONDecodeError) as exc:
        raise UnverifiedOrder("the pushed order envelope cannot be read") from exc
    if parsed.payload_type != ORDER_TYPE or not isinstance(payload, dict):
        raise UnverifiedOrder("the pushed envelope is not a kill order")
    return parsed, payload


def _same(payload: Mapping[str, Any], order: Mapping[str, Any]) -> None:
    differ = [k for k in _SAME if payload.get(k) != order.get(k)]
    named = payload.get("agent_id")
    if named is not None and named != order.get("agent_id"):
        differ.append("agent_id")
    if named is None and payload.get("selector") is None and payload.get("op") != "reinstate":
        differ.append("agent_id")
    if differ:
        raise UnverifiedOrder(
            f"the signed order and the pushed one differ in {', '.join(sorted(differ))}"
        )

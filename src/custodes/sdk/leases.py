"""Leases: short-lived, node-signed permissions to act (docs/design/0004).

An agent asks its home node for a lease with a request signed by its own key; the node
answers a lease envelope signed by its entry key. ``verify_lease`` is the parser: a
``Lease`` exists only once its signature, payload type, agent and key id have checked
out, so the guard never re-checks them::

    CustodesError
    ├── LeaseError     the node's answer is not a valid lease for this agent (403)
    └── LeaseRefused   the node refused a lease: suspended, revoked, unknown (403)
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from custodes.client import Client, NodeUnreachable
from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import (
    Envelope,
    EnvelopeSigner,
    key_thumbprint,
    parse_envelope,
    sign_envelope,
    verify_envelope,
)
from custodes.ledger.errors import EnvelopeError

__all__ = [
    "LEASE_REQUEST_TYPE",
    "LEASE_TYPE",
    "Lease",
    "LeaseError",
    "LeaseRefused",
    "lease_request",
    "request_lease",
    "verify_lease",
]

LEASE_TYPE = "application/vnd.custodes.lease+json"
LEASE_REQUEST_TYPE = "application/vnd.custodes.lease-request+json"


class LeaseError(CustodesError):
    """What the node answered is not a valid lease for this agent and key."""

    code = "bad_lease"
    status = 403


class LeaseRefused(CustodesError):
    """The node refused to issue a lease (the agent is suspended, revoked or unknown)."""

    code = "lease_refused"
    status = 403


@dataclass(frozen=True)
class Lease:
    """A verified lease: the agent may act in ``jurisdictions`` from ``nbf`` until ``exp``."""

    lease_id: str
    agent_id: str
    keyid: str
    jurisdictions: frozenset[str]
    nbf: float
    exp: float
    issuer: str
    nonce: str = ""  # the request it answers
    # Jurisdictions the deployment gate shut, each with the node's sentence: which gate
    # failed and what would satisfy it (empty for an agent no gate concerns).
    gated: Mapping[str, str] = field(default_factory=dict)

    @property
    def lifetime(self) -> float:
        return self.exp - self.nbf


def lease_request(signer: EnvelopeSigner, agent_id: str, now: float) -> Envelope:
    """A lease request signed by the agent's key, with a fresh 16-byte nonce."""
    payload = {"v": 1, "agent_id": agent_id, "nonce": secrets.token_hex(16), "at": int(now)}
    return sign_envelope(LEASE_REQUEST_TYPE, canonical_dumps(payload), [signer])


def _load(envelope_json: bytes | str | dict[str, Any]) -> Envelope:
    try:
        obj = envelope_json if isinstance(envelope_json, dict) else orjson.loads(envelope_json)
        return parse_envelope(obj)
    except (orjson.JSONDecodeError, EnvelopeError) as exc:
        raise LeaseError(f"the node's lease is not a DSSE envelope: {exc}") from exc


def _check_signature(envelope: Envelope, node_public_key: bytes) -> None:
    if envelope.payload_type != LEASE_TYPE:
        raise LeaseError(
            f"expected a {LEASE_TYPE} envelope, got {envelope.payload_type!r}",
            detail={"payloadType": envelope.payload_type},
        )
    node_keyid = key_thumbprint(node_public_key)
    try:
        verify_envelope(envelope, lambda kid: node_public_key if kid == node_keyid else None)
    except EnvelopeError as exc:
        raise LeaseError(
            "the lease is not signed by the home node's entry key; check node_public_key",
            detail={"expected_keyid": node_keyid, "reason": exc.code},
        ) from exc


def _number(payload: dict[str, Any], name: str) -> float:
    value = payload.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise LeaseError(f"lease field {name!r} must be a number of Unix seconds")
    return float(value)


def _string(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise LeaseError(f"lease field {name!r} must be a non-empty string")
    return value


def _jurisdictions(payload: dict[str, Any]) -> frozenset[str]:
    value = payload.get("jurisdictions")
    if not isinstance(value, list) or not all(isinstance(j, str) for j in value):
        raise LeaseError("lease field 'jurisdictions' must be a list of strings")
    return frozenset(value)


def _gated(payload: dict[str, Any]) -> dict[str, str]:
    value = payload.get("gated") or {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise LeaseError("lease field 'gated' must map jurisdictions to reasons")
    return dict(value)


def _parse_payload(raw: bytes) -> Lease:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise LeaseError("the lease payload is not JSON") from exc
    if not isinstance(payload, dict) or payload.get("v") != 1:
        raise LeaseError("the lease payload is not a version-1 lease object")
    lease = Lease(
        lease_id=_string(payload, "lease_id"),
        agent_id=_string(payload, "agent_id"),
        keyid=_string(payload, "keyid"),
        jurisdictions=_jurisdictions(payload),
        nbf=_number(payload, "nbf"),
        exp=_number(payload, "exp"),
        issuer=_string(payload, "issuer"),
        nonce=str(payload.get("nonce", "")),
        gated=_gated(payload),
    )
    if lease.exp <= lease.nbf:
        raise LeaseError("the lease expires before it becomes valid", detail=_times(lease))
    return lease


def _times(lease: Lease) -> dict[str, Any]:
    return {"lease_id": lease.lease_id, "nbf": lease.nbf, "exp": lease.exp}


def _check_binding(lease: Lease, agent_id: str, keyid: str, now: float | None) -> None:
    if lease.agent_id != agent_id:
        raise LeaseError(
            f"the lease is for agent {lease.agent_id!r}, not {agent_id!r}",
            detail={"lease_agent_id": lease.agent_id, "agent_id": agent_id},
        )
    if lease.keyid != keyid:
        raise LeaseError(
            "the lease names another key of this agent; renew with the active key",
            detail={"lease_keyid": lease.keyid, "keyid": keyid},
        )
    if now is not None and lease.exp <= now:
        raise LeaseError(
            "the lease has already expired (a replayed or stale lease)", detail=_times(lease)
        )


def verify_lease(
    envelope_json: bytes | str | dict[str, Any],
    *,
    node_public_key: bytes,
    agent_id: str,
    keyid: str,
    now: float | None = None,
) -> Lease:
    """Parse and verify a lease envelope for ``agent_id`` and ``keyid``, or raise LeaseError.

    With ``now``, a lease that has already expired is refused too (a replay).
    """
    envelope = _load(envelope_json)
    _check_signature(envelope, node_public_key)
    lease = _parse_payload(envelope.payload)
    _check_binding(lease, agent_id, keyid, now)
    return lease


def request_lease(
    node: Client,
    signer: EnvelopeSigner,
    agent_id: str,
    *,
    node_public_key: bytes,
    now: float,
    timeout: float = 10.0,
) -> Lease:
    """Ask the home node for a lease and verify it.

    A request sent on a kept-alive connection the node was closing meets a reset; it is
    asked once more at once, as a fresh request (new nonce: the node refuses a nonce it
    has seen, and may have seen the first). Raises LeaseRefused when the node says no
    (403), LeaseError when its answer is not a valid lease, NodeUnreachable when the node
    does not answer, and the node's own error otherwise.
    """
    try:
        return _ask(node, signer, agent_id, key=node_public_key, now=now, timeout=timeout)
    except NodeUnreachable as exc:
        if not exc.stale:
            raise
    return _ask(node, signer, agent_id, key=node_public_key, now=now, timeout=timeout)


def _ask(
    node: Client,
    signer: EnvelopeSigner,
    agent_id: str,
    *,
    key: bytes,
    now: float,
    timeout: float,
) -> Lease:
    """One lease request (fresh nonce) and its verified answer."""
    request = lease_request(signer, agent_id, now)
    try:
        answer = node.lease(request, timeout=timeout)
    except CustodesError as exc:
        if exc.status != 403:  # a refusal, whatever the node's code for it
            raise
        raise LeaseRefused(exc.message, code=exc.code, detail=exc.detail) from exc
    lease = verify_lease(answer, node_public_key=key, agent_id=agent_id, keyid=signer.keyid)
    return _own_clock(lease, orjson.loads(request.payload)["nonce"], now)


def _own_clock(lease: Lease, nonce: str, asked_at: float) -> Lease:
    """The lease, timed on this agent's clock from the moment it asked.

    The lease answers this request (its nonce), so it cannot be older than ``asked_at``;
    counting its lifetime from there bounds acting at the lifetime whatever the skew
    between the agent's and the node's clocks (a slow agent clock could otherwise
    stretch a 60-second lease).
    """
    if lease.nonce != nonce:
        raise LeaseError(
            "the node's lease answers another request (a replayed lease?)",
            detail={"lease_id": lease.lease_id},
        )
    return replace(lease, nbf=asked_at, exp=asked_at + lease.lifetime)

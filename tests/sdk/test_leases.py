"""verify_lease is the parser: only a lease the home node signed for this agent and key
gets through; lease_request is what the node's lease endpoint reads."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import orjson
import pytest

from custodes.client import Client
from custodes.demo.fakes import FakeNode
from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope, verify_envelope
from custodes.sdk.leases import (
    LEASE_REQUEST_TYPE,
    LEASE_TYPE,
    Lease,
    LeaseError,
    lease_request,
    request_lease,
    verify_lease,
)
from tests.sdk.support import AGENT

NODE = EnvelopeSigner.generate()
AGENT_KEY = EnvelopeSigner.generate()
NOW = 1_750_000_000


def payload(**changes: Any) -> dict[str, Any]:
    base = {
        "v": 1,
        "lease_id": "7f3a",
        "agent_id": AGENT,
        "keyid": AGENT_KEY.keyid,
        "jurisdictions": ["FR", "GB"],
        "nbf": NOW,
        "exp": NOW + 60,
        "issuer": "gb.custodes.example",
    }
    return {k: v for k, v in (base | changes).items() if v is not None}


def lease_json(body: Any, signer: EnvelopeSigner = NODE, kind: str = LEASE_TYPE) -> bytes:
    raw = body if isinstance(body, bytes) else canonical_dumps(body)
    return sign_envelope(kind, raw, [signer]).to_bytes()


def verify(envelope: bytes | str | dict[str, Any], now: float | None = None) -> Any:
    return verify_lease(
        envelope, node_public_key=NODE.public_key, agent_id=AGENT, keyid=AGENT_KEY.keyid, now=now
    )


def test_a_lease_signed_by_the_home_node_verifies() -> None:
    lease = verify(lease_json(payload()), now=NOW + 1)
    assert lease.agent_id == AGENT
    assert lease.keyid == AGENT_KEY.keyid
    assert lease.jurisdictions == frozenset({"GB", "FR"})
    assert (lease.nbf, lease.exp, lease.lifetime) == (NOW, NOW + 60, 60)
    assert lease.issuer == "gb.custodes.example"


def test_the_envelope_may_come_parsed_or_as_text() -> None:
    raw = lease_json(payload())
    assert verify(orjson.loads(raw)) == verify(raw.decode()) == verify(raw)


@pytest.mark.parametrize(
    ("name", "envelope"),
    [
        ("signed by another key", lease_json(payload(), signer=EnvelopeSigner.generate())),
        ("for another agent", lease_json(payload(agent_id="urn:custodes:gb:agent:other"))),
        ("for another key of the agent", lease_json(payload(keyid="ab" * 32))),
        ("another payload type", lease_json(payload(), kind=LEASE_REQUEST_TYPE)),
        ("not JSON", b"{not json"),
        ("not an envelope", b'{"lease": 1}'),
        ("payload not JSON", lease_json(b"lease")),
        ("payload version 2", lease_json(payload(v=2))),
        ("no expiry", lease_json(payload(exp=None))),
        ("expiry as text", lease_json(payload(exp="soon"))),
        ("expires before it starts", lease_json(payload(exp=NOW - 1))),
        ("jurisdictions not a list", lease_json(payload(jurisdictions="GB"))),
        ("empty lease id", lease_json(payload(lease_id=""))),
    ],
)
def test_anything_but_a_valid_lease_for_this_agent_is_refused(name: str, envelope: bytes) -> None:
    with pytest.raises(LeaseError) as caught:
        verify(envelope)
    assert (caught.value.code, caught.value.status) == ("bad_lease", 403), name


def test_a_tampered_payload_fails_the_signature() -> None:
    envelope = orjson.loads(lease_json(payload()))
    good = orjson.loads(lease_json(payload(exp=NOW + 9999)))
    envelope["payload"] = good["payload"]
    with pytest.raises(LeaseError):
        verify(envelope)


def test_a_replayed_lease_that_has_expired_is_refused_given_the_time() -> None:
    old = lease_json(payload())
    assert verify(old).exp == NOW + 60  # without a time it is only checked for origin
    with pytest.raises(LeaseError, match="expired"):
        verify(old, now=NOW + 60)


def test_a_lease_request_is_signed_by_the_agent_and_fresh_each_time() -> None:
    first = lease_request(AGENT_KEY, AGENT, NOW + 0.7)
    second = lease_request(AGENT_KEY, AGENT, NOW + 0.7)
    assert first.payload_type == LEASE_REQUEST_TYPE
    assert verify_envelope(first, {AGENT_KEY.keyid: AGENT_KEY.public_key}.get) == [AGENT_KEY.keyid]
    body = orjson.loads(first.payload)
    assert set(body) == {"v", "agent_id", "nonce", "at"}
    assert (body["v"], body["agent_id"], body["at"]) == (1, AGENT, NOW)
    assert len(bytes.fromhex(body["nonce"])) == 16
    assert body["nonce"] != orjson.loads(second.payload)["nonce"]


def test_the_node_issuers_lease_payload_verifies() -> None:
    # The node's own model (custodes.killswitch.leases), so the two sides cannot drift.
    from custodes.killswitch.leases import LeasePayload  # noqa: PLC0415

    node_lease = LeasePayload(
        lease_id="1a2b",
        nonce="ab" * 16,
        agent_id=AGENT,
        keyid=AGENT_KEY.keyid,
        jurisdictions=("GB",),
        nbf=NOW,
        exp=NOW + 300,
        issuer="gb",
    )
    signed = sign_envelope(LEASE_TYPE, node_lease.model_dump_json().encode(), [NODE])
    assert verify(signed.to_json()).jurisdictions == frozenset({"GB"})


# -- asking for a lease over a kept-alive connection ----------------------------------


class ClosingNode:
    """A fake node behind a connection that fails the first ``failures`` requests with
    ``error`` — after the node has seen them, so a retry with the same nonce would be
    refused as a replay."""

    def __init__(self, error: type[httpx.TransportError], failures: int = 1) -> None:
        self.node = FakeNode(lambda: float(NOW), lease_ttl=60)
        self.node.register_agent(AGENT, AGENT_KEY.public_key, ["GB"])
        self.error, self.failures = error, failures
        self.nonces: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        envelope = orjson.loads(request.content)
        payload = orjson.loads(base64.b64decode(envelope["payload"]))
        self.nonces.append(payload["nonce"])
        answer = self.node.transport.handle_request(request)
        if len(self.nonces) <= self.failures:
            raise self.error("the node closed the connection", request=request)
        return answer

    def ask(self) -> Lease:
        http = httpx.Client(transport=httpx.MockTransport(self.handle))
        node = Client(self.node.url, http=http)
        return request_lease(node, AGENT_KEY, AGENT, node_public_key=self.node.public_key, now=NOW)


@pytest.mark.parametrize("error", [httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError])
def test_a_renewal_reset_by_a_closing_connection_is_asked_again_at_once(
    error: type[httpx.TransportError],
) -> None:
    closing = ClosingNode(error)
    lease = closing.ask()
    assert len(closing.nonces) == 2
    first, second = closing.nonces
    assert first != second  # a fresh request: the node refuses a nonce it has seen
    assert lease.nonce == second
    assert lease.jurisdictions == frozenset({"GB"})


def test_a_renewal_is_retried_once_only() -> None:
    closing = ClosingNode(httpx.RemoteProtocolError, failures=2)
    with pytest.raises(CustodesError) as caught:
        closing.ask()
    assert (caught.value.code, caught.value.status) == ("node_unreachable", 503)
    assert len(closing.nonces) == 2


def test_a_node_that_cannot_be_reached_is_not_asked_twice() -> None:
    closing = ClosingNode(httpx.ConnectError)
    with pytest.raises(CustodesError) as caught:
        closing.ask()
    assert caught.value.code == "node_unreachable"
    assert len(closing.nonces) == 1

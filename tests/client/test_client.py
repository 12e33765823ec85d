"""The client against real nodes: typed answers, pinned keys, errors from the node itself."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.client import Client
from custodes.errors import AuthError, NotFound
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import NoteError, VerificationError
from custodes.node import Node
from custodes.sdk.bootstrap import bootstrap, enrol_agent
from custodes.sdk.decisions import sign_decision
from tests.databases import node_settings

URL = "http://testserver"


def _app(base: Path) -> TestClient:
    return TestClient(create_app(node_settings(base, f"sqlite:///{base / 'custodes.db'}")))


def _node(app: TestClient) -> Node:
    node: Node = app.app.state.node  # type: ignore[attr-defined]
    return node


class Switch:
    """A transport that sends each request to whichever node is ``current``: a node
    restarted under other keys, or an attacker answering in its place."""

    def __init__(self, current: TestClient) -> None:
        self.current = current

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self._forward))

    def _forward(self, request: httpx.Request) -> httpx.Response:
        answer = self.current.request(
            request.method, str(request.url), content=request.read(), headers=request.headers
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[TestClient, TestClient]]:
    with _app(tmp_path / "a") as a, _app(tmp_path / "b") as b:
        yield a, b


def test_node_info_is_typed_and_pinning_keeps_its_keys(
    nodes: tuple[TestClient, TestClient],
) -> None:
    a, _ = nodes
    client = Client.pinned(URL, http=a)
    info = client.node_info()
    node = _node(a)
    assert info.log_vkey == node.log_signer.vkey()
    assert info.node_entry_public_key == node.entry_signer.public_key
    assert client.pins is not None
    assert client.pins.log_vkey == info.log_vkey
    assert node.log.wait_for_checkpoint(1, timeout=10)
    assert client.checkpoint().origin == node.settings.origin


def test_a_pinned_client_refuses_a_node_that_presents_other_keys(
    nodes: tuple[TestClient, TestClient],
) -> None:
    a, b = nodes
    switch = Switch(a)
    client = Client.pinned(URL, http=switch.client())
    assert _node(b).log.wait_for_checkpoint(1, timeout=10)
    switch.current = b
    with pytest.raises(VerificationError, match="other keys than the ones pinned"):
        client.node_info()
    with pytest.raises(NoteError):
        client.checkpoint()  # signed, but not by the pinned log key


def test_pinning_to_a_given_log_key_refuses_a_node_with_another(
    nodes: tuple[TestClient, TestClient],
) -> None:
    a, b = nodes
    with pytest.raises(VerificationError, match="another key than the one given"):
        Client.pinned(URL, http=a, log_vkey=_node(b).log_signer.vkey())


def test_appends_read_back_with_their_proof(nodes: tuple[TestClient, TestClient]) -> None:
    a, _ = nodes
    authorities = bootstrap(URL, _node(a).settings.admin_token, "ZZ", client=a)
    key = EnvelopeSigner.generate()
    agent_id = enrol_agent(authorities, key, "reader")
    client = Client(URL, http=a)
    [index] = client.append([sign_decision(key, agent_id, "buy", "cheap")])
    assert client.entry(index)["entry"]["payloadType"].endswith("decision+json")
    assert _node(a).log.wait_for_checkpoint(index + 1, timeout=10)
    proof = client.inclusion(index)
    assert proof["index"] == index
    decisions = list(client.decisions_between(index, index + 1))
    assert [(d.agent, d.action) for d in decisions] == [(agent_id, "buy")]


def test_the_node_itself_answers_with_typed_errors(nodes: tuple[TestClient, TestClient]) -> None:
    a, _ = nodes
    with pytest.raises(NotFound) as missing:
        Client(URL, http=a).entry(10_000)
    assert missing.value.code == "entry_not_found"
    stranger = Client(URL, principal="regulator:zz", token="not-a-token", http=a)
    with pytest.raises(AuthError):
        stranger.acting_as("regulator:zz", "not-a-token", EnvelopeSigner.generate()).order(
            "suspend", "urn:custodes:zz:agent:nobody", "test"
        )

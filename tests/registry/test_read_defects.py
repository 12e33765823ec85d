"""Registry reads that used to mislead: an ``as_of`` past the log's end answered the
current state, a global suspension showed ``"suspended_in": []``, and a retired key was
told to "register the signer first"."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import AgentRotateKey
from custodes.registry.queries import NODE
from tests.registry.support import World, b64, decision, now, order, register_agent, submit


def test_an_as_of_beyond_the_log_is_refused_with_the_logs_size(
    app_client: TestClient, app_world: World
) -> None:
    agent_id = register_agent(app_world, EnvelopeSigner.generate())
    size = app_world.node.store.sequenced_size()
    for path in (f"agents/{agent_id}", "operators/operator:acme"):
        response = app_client.get(f"/api/v1/registry/{path}", params={"as_of": size + 5})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "as_of_beyond_log"
        assert error["message"].startswith(f"as-of {size + 5} is beyond the log's size ")
        assert error["detail"]["as_of"] == size + 5
        assert error["detail"]["size"] >= size
    last = app_client.get(f"/api/v1/registry/agents/{agent_id}", params={"as_of": size - 1})
    assert last.status_code == 200, last.text


def test_a_global_suspension_applies_everywhere(app_world: World) -> None:
    agent_id = register_agent(app_world, EnvelopeSigner.generate(), operating_jurisdictions=("FR",))
    order(app_world.node, app_world.host, "suspend", agent_id, territory="FR")
    _, global_order = order(app_world.node, app_world.home, "suspend", agent_id)
    answer = app_world.node.queries.agent(agent_id, reader=None)  # the public view too
    assert (answer["status"], answer["suspended_in"]) == ("suspended", ["*", "FR"])
    order(app_world.node, app_world.home, "reinstate", agent_id, lifts=global_order.order_id)
    answer = app_world.node.queries.agent(agent_id, reader=NODE)
    assert (answer["status"], answer["suspended_in"]) == ("active", ["FR"])


def test_a_retired_key_is_told_when_it_was_retired(app_world: World) -> None:
    old, new = EnvelopeSigner.generate(), EnvelopeSigner.generate()
    agent_id = register_agent(app_world, old)
    rotated = submit(
        app_world.node,
        app_world.acme,
        AgentRotateKey(
            actor=app_world.acme.id,
            at=now(),
            agent_id=agent_id,
            add=(b64(new),),
            retire=(old.keyid,),
        ),
    )
    with pytest.raises(CustodesError) as caught:
        app_world.node.log.append([decision(old, agent_id)])
    assert (caught.value.status, caught.value.code) == (403, "unknown_signer")
    assert f"retired at log index {rotated}" in caught.value.message
    assert "register the signer" not in caught.value.message
    assert caught.value.detail["retired_at"] == rotated
    stranger = EnvelopeSigner.generate()  # a key never registered keeps the old answer
    with pytest.raises(CustodesError) as unknown:
        app_world.node.log.append([decision(stranger, agent_id)])
    assert "register the signer" in unknown.value.message

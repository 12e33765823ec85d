"""Cross-border kill orders between real node processes: FR's regulator suspends a GB
agent in France at the FR node; the GB node logs the regulator's own order and the
agent's guard halts in France only. A home node that is down gets its orders, exactly
once, when it returns, even after the sender was killed meanwhile."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from custodes.client import Client
from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import enrol_agent
from custodes.sdk.issuers import IssuerKeys, registry_lookup
from tests.integration.alliance import Alliance, running_alliance
from tests.integration.nodes import GuardedAgent
from tests.integration.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

THREE = {"GB": "member", "FR": "member", "AU": "partner"}
FAST_RELAY = {"forward_retry_initial": "0.2", "forward_retry_max": "1.0"}


@contextlib.contextmanager
def guarded(alliance: Alliance, tmp_path: Path, slug: str) -> Iterator[GuardedAgent]:
    gb = alliance["GB"]
    signer = EnvelopeSigner.generate()
    agent_id = enrol_agent(gb.bootstrap(), signer, slug, operating=["FR"])
    registry = Client(gb.url, timeout=5.0)
    issuers = IssuerKeys(alliance.roster, registry_lookup(registry.signers))
    agent = GuardedAgent.start(
        gb.url,
        gb.party.entry_public_key(),
        agent_id,
        signer,
        tmp_path / f"spool-{slug}",
        issuers=issuers,
    )
    try:
        assert agent.guard.wait_for_lease(15.0), "the agent got no lease"
        wait_until("the guard's order stream", lambda: agent.guard.stream_connected, 15)
        yield agent
    finally:
        agent.close()
        registry.close()


def test_a_host_regulator_suspends_a_foreign_agent_in_its_territory(tmp_path: Path) -> None:
    with running_alliance(tmp_path, parties=THREE, witnessing=False) as alliance:
        fr = alliance["FR"].bootstrap()
        with guarded(alliance, tmp_path, "trader") as agent:
            answer = fr.regulator.order(
                "suspend", agent.agent_id, "market abuse in France", territory="FR"
            )
            assert (answer["forwarded_to"], answer["state"]) == ("GB", "delivered")
            wait_until("the guard refuses in FR", lambda: not agent.allowed("FR"), 15)
            assert agent.allowed("GB")
            with Client(alliance["GB"].url, timeout=5.0) as gb:
                entry = gb._json("GET", f"/api/v1/entries/{answer['index']}")["entry"]
            fr_key = alliance["FR"].regulator_key.keyid
            assert [s["keyid"] for s in entry["signatures"]] == [fr_key]
            assert fr.regulator.forwarded(answer["message_id"])["state"] == "delivered"


def test_the_homes_refusal_and_a_partners_order_come_back_as_4xx(tmp_path: Path) -> None:
    with running_alliance(tmp_path, parties=THREE, witnessing=False) as alliance:
        fr = alliance["FR"].bootstrap()
        au = alliance["AU"].bootstrap()
        signer = EnvelopeSigner.generate()
        agent_id = enrol_agent(alliance["GB"].bootstrap(), signer, "fund", operating=["FR"])
        with pytest.raises(CustodesError) as refused:
            fr.regulator.order("suspend", agent_id, "everywhere")  # global: the home's call
        assert refused.value.status == 403
        assert "GB node" in refused.value.message
        with pytest.raises(CustodesError) as partner:
            au.regulator.order("suspend", agent_id, "in Australia", territory="AU")
        assert (partner.value.status, partner.value.code) == (403, "partner_no_orders")
        with Client(alliance["GB"].url, timeout=5.0) as gb:
            assert gb.kill_orders(agent_id) == []


def test_orders_for_a_node_that_is_down_wait_and_arrive_once(tmp_path: Path) -> None:
    parties = {"GB": "member", "FR": "member"}
    with running_alliance(
        tmp_path, parties=parties, witnessing=False, settings=FAST_RELAY
    ) as alliance:
        fr = alliance["FR"].bootstrap()
        signer = EnvelopeSigner.generate()
        agent_id = enrol_agent(alliance["GB"].bootstrap(), signer, "desk", operating=["FR"])
        alliance["GB"].process.stop()
        answer = fr.regulator.order("suspend", agent_id, "while GB is down", territory="FR")
        assert answer["state"] == "queued"
        alliance["FR"].process.kill()  # SIGKILL: the outbox row is all that is left
        alliance["FR"].process.start()
        alliance["GB"].process.start()

        def delivered() -> bool:
            return fr.regulator.forwarded(answer["message_id"])["state"] == "delivered"

        wait_until("the queued order delivered", delivered, 60)
        with Client(alliance["GB"].url, timeout=5.0) as gb:
            orders = gb.kill_orders(agent_id)
        assert [(o["authority"], o["territory"]) for o in orders] == [("regulator:fr", "FR")]


def test_the_rest_of_the_alliance_carries_on_while_a_member_is_down(tmp_path: Path) -> None:
    parties = {"GB": "member", "FR": "member", "DE": "member"}
    with running_alliance(tmp_path, parties=parties, witnessing=False) as alliance:
        fr = alliance["FR"].bootstrap()
        signer = EnvelopeSigner.generate()
        de_agent = enrol_agent(alliance["DE"].bootstrap(), signer, "bot", operating=["FR"])
        alliance["GB"].process.stop()
        answer = fr.regulator.order("suspend", de_agent, "in France", territory="FR")
        assert (answer["forwarded_to"], answer["state"]) == ("DE", "delivered")
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{alliance['GB'].url}/api/v1/node", timeout=1.0)

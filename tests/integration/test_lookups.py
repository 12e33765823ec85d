"""Cross-border look-ups between real node processes: mirrored, proven, stale when down."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from custodes.client import Client
from custodes.errors import CustodesError
from custodes.ledger.dsse import EnvelopeSigner
from custodes.sdk.bootstrap import enrol_agent
from tests.cli.test_cli import assert_one_line_error, custodes
from tests.integration.alliance import running_alliance
from tests.integration.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

THREE = {"GB": "member", "DE": "member", "FR": "member"}
# Seconds: the staleness bound. Short enough for the test to see it pass once GB is down,
# long enough that a busy machine's slower mirror rounds never age a live mirror past it
# (3 s did: the look-up then asked GB itself and the mirror was never the source).
BOUND = 10.0


def _look_up(client: Client, agent_id: str) -> dict[str, Any]:
    return client.alliance_agent(agent_id)


def test_a_member_answers_for_another_members_agent_and_says_when_its_data_is_stale(
    tmp_path: Path,
) -> None:
    settings = {"lookup_stale_after": str(BOUND), "mirror_timeout": "1"}
    with running_alliance(tmp_path, parties=THREE, settings=settings) as alliance:
        gb, de = alliance["GB"], alliance["DE"]
        authorities = gb.bootstrap()
        agent_id = enrol_agent(authorities, EnvelopeSigner.generate(), "payments", operating=["FR"])
        with Client(de.url, timeout=10) as at_de, Client(gb.url, timeout=10) as at_gb:
            own = at_gb.alliance_agent(agent_id, alliance.roster)
            assert (own["source"], own["status"]) == ("self", "active")

            mirrored = wait_until(
                "DE's mirror holds GB's agent",
                lambda: _mirrored(at_de, agent_id),
                60,
            )
            wait_until(
                "GB's checkpoint, as DE mirrors it, carries DE's and FR's cosignatures",
                lambda: {"DE", "FR"} <= set(_look_up(at_de, agent_id)["cosigners"]),
                60,
            )
            checked = at_de.alliance_agent(agent_id, alliance.roster)
            cosigners = checked["verified"]["cosigners"]
            assert {"DE", "FR"} <= set(cosigners)
            assert checked["final"] == (len(cosigners) >= 3)  # a quorum of three members
            assert (checked["status"], checked["stale"]) == ("active", False)
            assert checked["verified"]["checkpoint_size"] >= mirrored["entry_index"] + 1

            authorities.regulator.order("suspend", agent_id, "unsafe trades", territory="FR")
            wait_until(
                "DE's look-up shows the GB regulator's suspension in France",
                lambda: _look_up(at_de, agent_id)["suspended_in"] == ["FR"],
                30,
            )
            orders = _look_up(at_de, agent_id)["orders"]
            assert [(o["op"], o["territory"]) for o in orders] == [("suspend", "FR")]
            shown = _cli(tmp_path, agent_id, de.url, "--roster", str(alliance.roster_file))
            assert "active, suspended in FR" in shown
            assert "proof, checkpoint signature and cosignatures" in shown
            assert_one_line_error(
                custodes("alliance", "agent", "gb-payments", "--node", de.url, cwd=tmp_path),
                "urn:custodes:<jurisdiction>:agent:<slug>",
            )

            gb.process.stop()
            stale = wait_until(
                "DE answers for GB's agent from its mirror, marked stale",
                lambda: _stale(at_de, agent_id),
                90,
            )
            assert (stale["source"], stale["suspended_in"]) == ("mirror", ["FR"])
            assert stale["age_s"] > BOUND
            assert "STALE" in _cli(tmp_path, agent_id, de.url)
            listed = custodes(
                "alliance", "mirrors", "--node", de.url, "--output", "json", cwd=tmp_path
            )
            assert {s["party"]: s["stale"] for s in json.loads(listed.stdout)} == {
                "GB": True,
                "FR": False,
            }
            states = {s["party"]: s for s in at_de.alliance_mirrors()}
            assert states["GB"]["stale"]
            assert not states["FR"]["stale"]  # the rest of the alliance carries on


def test_past_the_bound_a_look_up_asks_the_home_node_and_verifies_its_answer(
    tmp_path: Path,
) -> None:
    slow = {"DE": {"mirror_interval": "600"}}  # DE reads GB's log once, at its start
    settings = {"lookup_stale_after": "1"}
    parties = {"GB": "member", "DE": "member"}
    with running_alliance(tmp_path, parties=parties, settings=settings, per_node=slow) as alliance:
        gb, de = alliance["GB"], alliance["DE"]
        agent_id = enrol_agent(gb.bootstrap(), EnvelopeSigner.generate(), "late")
        with Client(de.url, timeout=10) as at_de:
            wait_until(
                "DE's mirror of GB passes the bound",
                lambda: all(s["stale"] for s in at_de.alliance_mirrors()),
                30,
            )
            answer = at_de.alliance_agent(agent_id, alliance.roster)
        assert (answer["source"], answer["status"], answer["stale"]) == ("home", "active", False)
        assert answer["verified"]["checkpoint_size"] > answer["entry_index"]


def _cli(cwd: Path, agent_id: str, url: str, *args: str) -> str:
    done = custodes("alliance", "agent", agent_id, "--node", url, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())  # the table wraps long cells


def _mirrored(client: Client, agent_id: str) -> dict[str, Any] | None:
    try:
        answer = _look_up(client, agent_id)
    except CustodesError:  # not mirrored yet (404) while DE catches up
        return None
    return answer if answer["source"] == "mirror" else None


def _stale(client: Client, agent_id: str) -> dict[str, Any] | None:
    answer = _look_up(client, agent_id)
    return answer if answer["stale"] else None

"""RedteamService: a disclosure's life on one node, its refusals, intake and deliveries."""

from __future__ import annotations

from tests.redteam.world import MODEL_AGENT, SKILL_AGENT, World


def test_a_disclosure_goes_from_report_to_exposed(world: World) -> None:
    disclosure = world.disclosed()
    shown = world.get("regulator:gb", f"/api/v1/redteam/disclosures/{disclosure}")
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["stage"] == "disclosed"
    assert {e["agent_id"]: e["status"] for e in body["exposures"]} == {
        MODEL_AGENT: "exposed",
        SKILL_AGENT: "exposed",
    }

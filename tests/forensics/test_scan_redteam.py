"""Red-teaming acts as forensic evidence: a log entry names a disclosure, never its agents.

The slice finds every act of the disclosures an asked agent is exposed to, through the
node's exposures, as the reader may see them: the home regulator sees an embargoed
(TLP:AMBER) disclosure's acts for the agents it affects; the public sees none of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from custodes.forensics.models import Slice
from custodes.redteam.models import REDTEAM_TYPE
from tests.databases import database_url, node_settings
from tests.redteam.world import MODEL_AGENT, OTHER_AGENT, REGULATOR, SKILL_AGENT, World, world_for


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def disclosed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[World, str, datetime]]:
    base: Path = tmp_path_factory.mktemp("forensics-redteam")
    settings = node_settings(base, database_url(request, base, "forensics_rt_"))
    with world_for(settings) as world:
        start = datetime.now(UTC) - timedelta(seconds=1)
        disclosure = world.disclosed()  # reported, triaged (model and skill), disclosed
        node = world.node
        assert node.log.wait_for_checkpoint(node.store.sequenced_size(), timeout=30)
        yield world, disclosure, start


def _slice(world: World, who: str | None, agents: list[str], start: datetime) -> Slice:
    body: dict[str, Any] = {
        "agents": agents,
        "start": start.isoformat(),
        "end": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
    }
    headers = {} if who is None else world.auth(who)
    answer = world.http.post("/api/v1/forensics/slice", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return Slice.model_validate(answer.json())


def _acts(found: Slice) -> list[tuple[str, str, list[str]]]:
    return [
        (e.record["op"], e.record["disclosure"], e.agents)
        for e in found.events
        if e.payload_type == REDTEAM_TYPE
    ]


def test_the_regulator_finds_every_act_of_a_disclosure_affecting_the_agent(
    disclosed: tuple[World, str, datetime],
) -> None:
    world, disclosure, start = disclosed
    found = _slice(world, REGULATOR, [MODEL_AGENT], start)
    acts = _acts(found)
    ops = [op for op, _, _ in acts]
    assert ops[:3] == ["report", "triage", "disclose"]
    # then the node's exposure status of each affected agent (an act names no agent, so
    # the skill agent's status is among them: the disclosure concerns the model agent)
    assert ops[3:] == ["status", "status"]
    assert {d for _, d, _ in acts} == {disclosure}
    assert all(agents == [MODEL_AGENT] for _, _, agents in acts)
    assert {e.kind for e in found.events if e.payload_type == REDTEAM_TYPE} == {"disclosure"}
    both = _acts(_slice(world, REGULATOR, [MODEL_AGENT, SKILL_AGENT], start))
    assert all(agents == [MODEL_AGENT, SKILL_AGENT] for _, _, agents in both)


def test_an_unaffected_agent_has_no_disclosure_evidence(
    disclosed: tuple[World, str, datetime],
) -> None:
    world, _, start = disclosed
    assert _acts(_slice(world, REGULATOR, [OTHER_AGENT], start)) == []


def test_the_public_sees_no_act_of_an_embargoed_disclosure(
    disclosed: tuple[World, str, datetime],
) -> None:
    world, _, start = disclosed
    public = _slice(world, None, [MODEL_AGENT], start)
    assert _acts(public) == []
    assert any(e.kind == "registry" for e in public.events)  # the slice itself was served

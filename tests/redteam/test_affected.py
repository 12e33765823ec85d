"""Which agents a triage's criteria match: by model (id or name), version, skill (id or
tag) and agents named, each agent once, with what matched."""

from __future__ import annotations

import pytest

from custodes.redteam.affected import AgentRow, find_affected
from custodes.redteam.models import Affects

ROWS = [
    AgentRow("urn:custodes:gb:agent:a", "GB", "operator:acme", "model:llama-x", "llama-x", "3.1"),
    AgentRow("urn:custodes:fr:agent:b", "FR", "operator:fr", "model:llama-x", "llama-x", "3.0"),
    AgentRow("urn:custodes:de:agent:c", "DE", "operator:de", "model:mistral", "Mistral", "1"),
    AgentRow(
        "urn:custodes:gb:agent:d", "GB", "operator:acme", skills=frozenset({"web-browse", "search"})
    ),
    AgentRow("urn:custodes:ca:agent:e", "CA", "operator:ca"),
]


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (Affects(models=("model:llama-x",)), {"a": ("model",), "b": ("model",)}),
        (Affects(models=("LLAMA-X",)), {"a": ("model",), "b": ("model",)}),  # by name
        (Affects(models=("llama-x",), versions=("3.1",)), {"a": ("model", "version")}),
        (Affects(models=("mistral",), versions=("3.1",)), {}),
        (Affects(skills=("search",)), {"d": ("skill",)}),  # a tag
        (Affects(agents=("urn:custodes:ca:agent:e",)), {"e": ("named",)}),
        (
            Affects(
                models=("llama-x",), skills=("web-browse",), agents=("urn:custodes:gb:agent:a",)
            ),
            {"a": ("model", "named"), "b": ("model",), "d": ("skill",)},
        ),
        (Affects(models=("model:unknown",)), {}),
    ],
)
def test_criteria_match_by_model_version_skill_and_name(
    criteria: Affects, expected: dict[str, tuple[str, ...]]
) -> None:
    found = find_affected(criteria, ROWS)
    assert {a.agent_id.rsplit(":", 1)[1]: a.matched for a in found} == expected


def test_each_agent_once_in_id_order_with_its_home_and_operator() -> None:
    found = find_affected(Affects(models=("llama-x",)), [*ROWS, ROWS[0]])
    assert [a.agent_id for a in found] == sorted({ROWS[0].agent_id, ROWS[1].agent_id})
    assert (found[1].home, found[1].operator, found[1].model_version) == (
        "GB",
        "operator:acme",
        "3.1",
    )

"""``custodes kill`` by selector: the option reads key=value pairs into the order's
selector, and a mistake in it is one line naming the keys it takes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.test_cli import assert_one_line_error, custodes

from custodes.cli.kill import outcome

_ACTING = ("--as", "regulator:gb", "--token", "t", "--key", "missing.key", "--reason", "r")


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ("colour=red", "keys among operator, sector, jurisdiction, model, model_version, skill"),
        ("sector", "key=value pairs"),
        ("jurisdiction=france", "--selector jurisdiction"),
    ],
)
def test_a_bad_selector_is_one_line(tmp_path: Path, selector: str, fragment: str) -> None:
    done = custodes("kill", "suspend", "--selector", selector, *_ACTING, cwd=tmp_path)
    assert_one_line_error(done, fragment)


def test_one_agent_and_a_selector_together_are_refused(tmp_path: Path) -> None:
    done = custodes(
        "kill",
        "suspend",
        "urn:custodes:gb:agent:a",
        "--selector",
        "sector=finance",
        *_ACTING,
        cwd=tmp_path,
    )
    assert_one_line_error(done, "not both")


def test_a_territorial_selector_order_is_told_without_a_status_it_does_not_have() -> None:
    answer = {
        "index": 9,
        "order_id": "o-1",
        "agent_id": None,
        "agents": 3,
        "status": "suspended in FR",
    }
    said = outcome("suspend", answer, "FR")
    assert said.startswith("suspended 3 agents in FR: order o-1 at log index 9")
    assert "status" not in said
    single = {"index": 4, "order_id": "o-2", "agent_id": "urn:a", "status": "active"}
    assert outcome("suspend", single, "FR").endswith("; status elsewhere active")

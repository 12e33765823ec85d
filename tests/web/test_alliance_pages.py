"""The overview and a foreign agent's page on a node with a roster: a member (ZZ, this
node) and a peer (YY) whose node never answers (tests/api/test_alliance.py's alliance)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from custodes.ledger.dsse import EnvelopeSigner
from tests.api.support import node_of
from tests.api.test_alliance import _roster
from tests.enrol import enrol

__all__: list[str] = []


@pytest.fixture
def alliance(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "roster.json"
    path.write_bytes(orjson.dumps(_roster(settings, tmp_path).document))
    with TestClient(create_app(settings.model_copy(update={"roster_file": path}))) as client:
        enrol(node_of(client), EnvelopeSigner.from_seed(bytes(range(32))))
        node_of(client).log.integrate()
        yield client


def _rows(html: str, caption: str) -> list[list[str]]:
    table = html.split(caption, 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, flags=re.S)
    cells = [re.findall(r"<td>(.*?)</td>", r, flags=re.S) for r in rows]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in row] for row in cells if row]


def test_the_overview_names_the_members_and_judges_each_logs_finality(
    alliance: TestClient,
) -> None:
    html = alliance.get("/ui/").text
    assert "test alliance, roster version 1" in html
    members = _rows(html, "The parties of the roster in force")
    assert [(m[0], m[1], m[2]) for m in members] == [
        ("ZZ", "Zedland", "member"),
        ("YY", "Whyland", "member"),
    ]
    logs = _rows(html, "Each log this node follows")
    (own,) = [row for row in logs if row[0] == "ZZ"]
    assert own[1] == "this node"
    assert own[2] == f"{node_of(alliance).store.tree_size()[0]:,}"
    assert "of 2 needed" in own[4]  # a quorum of two members: this node alone is not final
    assert own[5] == "not final"
    (peer,) = [row for row in logs if row[0] == "YY"]
    assert peer[1:4] == ["mirror", "0", "no checkpoint yet"]
    assert peer[6].startswith("stale")


def test_a_foreign_agent_whose_home_cannot_be_reached_is_an_error_page(
    alliance: TestClient,
) -> None:
    answer = alliance.get("/ui/agents/urn%3Acustodes%3Ayy%3Aagent%3Afar-away")
    assert answer.status_code >= 400
    assert answer.headers["content-type"].startswith("text/html")
    assert "home_unreachable" in answer.text
    assert "Traceback" not in answer.text


def test_a_foreign_agent_is_shown_from_the_look_up_with_its_source_and_age(
    alliance: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """YY's node never answers here, so its answer is faked (a peer is outside the node):
    shaped as the real look-up answers, from this node's own agent's real answer."""
    lookups = alliance.app.state.lookups  # type: ignore[attr-defined]
    real = lookups.agent("urn:custodes:zz:agent:agent-1", None)
    far = "urn:custodes:yy:agent:far-away"
    record = {**real["record"], "id": far, "name": "far-away", "home_jurisdiction": "YY"}
    answer = {**real, "agent_id": far, "home": "YY", "source": "mirror", "record": record}
    answer |= {"age_s": 42.0, "stale": True, "final": False}
    asked = []

    def look_up(agent_id: str, reader: object) -> dict[str, object]:
        asked.append((agent_id, reader))
        return answer

    monkeypatch.setattr(lookups, "agent", look_up)
    html = alliance.get("/ui/agents/urn%3Acustodes%3Ayy%3Aagent%3Afar-away").text
    assert asked == [(far, None)]  # the public asked: no reader
    assert "<h1>far-away" in html
    assert "source <strong>mirror</strong>" in html
    assert "data 42 s old" in html
    assert "its home could not confirm it" in html
    assert "not final" in html
    assert 'id="decisions"' not in html  # decisions stay home: not shown for a foreign agent

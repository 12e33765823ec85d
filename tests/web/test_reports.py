"""/ui/forensics on one node of a one-member alliance: a regulator builds a report, sees
it listed, reads it and downloads its bundle, which verifies offline; another
investigator never sees it; an operator and a bad window are refused with nothing kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from custodes.forensics.bundle import read_bundle
from custodes.forensics.verify import verify_bundle
from tests.audits.node_world import AUDITOR, NodeWorld, node_world
from tests.databases import node_settings


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeWorld]:
    base: Path = tmp_path_factory.mktemp("reports")
    settings = node_settings(base, f"sqlite:///{base / 'custodes.db'}")
    with node_world(settings, base) as made:
        yield made


def _csrf(browser: TestClient, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get(path).text)
    assert found is not None
    return found.group(1)


def _signed_in(world: NodeWorld, who: str) -> TestClient:
    browser = TestClient(world.http.app, raise_server_exceptions=False)
    answer = browser.post(
        "/ui/signin",
        data={"csrf": _csrf(browser, "/ui/signin"), "token": world.tokens[who]},
    )
    assert answer.status_code == 200, answer.text
    return browser


def _window(world: NodeWorld, **changes: str) -> dict[str, str]:
    now = datetime.now(UTC)
    fields = {
        "agents": world.agent_id,
        "depth": "1",
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": (now + timedelta(minutes=5)).isoformat(),
    }
    return fields | changes


def _kept(world: NodeWorld) -> list[Path]:
    return sorted((Path(world.node.settings.data_dir) / "forensics").rglob("*.json"))


def test_a_regulator_builds_reads_and_downloads_its_report(world: NodeWorld) -> None:
    browser = _signed_in(world, "regulator:gb")
    built = browser.post(
        "/ui/forensics", data={"csrf": _csrf(browser, "/ui/forensics")} | _window(world)
    )
    assert built.status_code == 200, built.text
    assert "script-src" not in built.headers["content-security-policy"]
    assert world.agent_id in built.text
    report_id = str(built.url).rsplit("/", 1)[-1]
    listed = browser.get("/ui/forensics").text
    assert f'href="/ui/forensics/{report_id}"' in listed
    bundle = browser.get(f"/ui/forensics/{report_id}/bundle.json")
    assert bundle.status_code == 200
    timeline = read_bundle(bundle.content)
    assert timeline.asked_by == "regulator:gb"
    assert verify_bundle(timeline).events == len(timeline.events) > 0

    other = _signed_in(world, AUDITOR)  # an investigator too, but not its asker
    assert report_id not in other.get("/ui/forensics").text
    for path in (f"/ui/forensics/{report_id}", f"/ui/forensics/{report_id}/bundle.json"):
        answer = other.get(path)
        assert answer.status_code == 404
        assert "unknown_report" in answer.text


def test_refusals_keep_nothing(world: NodeWorld) -> None:
    before = _kept(world)
    operator = _signed_in(world, "operator:acme")
    csrf = _csrf(operator, "/ui/forensics")
    refused = operator.post("/ui/forensics", data={"csrf": csrf} | _window(world))
    assert refused.status_code == 403
    assert "regulators and auditors" in refused.text
    regulator = _signed_in(world, "regulator:gb")
    csrf = _csrf(regulator, "/ui/forensics")
    now = datetime.now(UTC).isoformat()
    backwards = regulator.post(
        "/ui/forensics", data={"csrf": csrf} | _window(world, start=now, end=now)
    )
    assert backwards.status_code == 422
    assert "bad_window" in backwards.text
    no_csrf = regulator.post("/ui/forensics", data=_window(world))
    assert no_csrf.status_code == 403
    for bad in ("../../etc/passwd", "20261204T000000Z-zzzzzzzz"):
        assert regulator.get(f"/ui/forensics/{bad}").status_code == 404
    assert _kept(world) == before

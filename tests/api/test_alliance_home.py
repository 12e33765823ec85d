"""Past the bound a look-up asks the home node, and trusts it only if its log extends the
tree mirrored here; otherwise the mirror answers, marked stale."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.config import Settings
from custodes.federation.lookup_service import AllianceLookups
from custodes.federation.mirror import PeerMirror
from custodes.federation.mirrors import Mirrors
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import Party, found_roster
from custodes.ledger.dsse import EnvelopeSigner
from tests.api.support import node_of
from tests.enrol import enrol

KEY = EnvelopeSigner.from_seed(bytes(range(32)))
OTHER = EnvelopeSigner.from_seed(bytes(range(1, 33)))
AGENT = "urn:custodes:yy:agent:agent-1"


def _home_settings(settings: Settings, data_dir: Path) -> Settings:
    return settings.model_copy(
        update={
            "data_dir": data_dir,
            "database_url": f"sqlite:///{data_dir / 'c.db'}",
            "origin": "yy.example/log",
            "jurisdiction": "YY",
        }
    )


def _party(data_dir: Path, code: str, origin: str, url: str) -> Party:
    return node_party(data_dir, code=code, name=code, status="member", urls=[url], origin=origin)


def _fetcher(client: TestClient) -> Callable[[Sequence[str]], list[bytes]]:
    return lambda paths: [client.get(f"/log/{p}").content for p in paths]


def _mirror_of(client: TestClient, party: Party, path: Path) -> None:
    """Mirror the log ``client`` serves into ``path`` (as YY's follower would)."""
    node_of(client).log.integrate()
    mirror = PeerMirror(party, path)
    try:
        mirror.advance(client.get("/log/checkpoint").content, _fetcher(client))
    finally:
        mirror.close()


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[dict[str, object]]:
    """The asking node (ZZ), YY's home node, and a twin of YY (YY's log key, another
    history), with a roster naming ZZ and YY (YY's node at the test client's URL)."""
    home_dir, twin_dir = tmp_path / "yy", tmp_path / "twin"
    yy = _party(home_dir, "YY", "yy.example/log", "http://testserver")
    zz = _party(settings.data_dir, "ZZ", settings.origin, "http://127.0.0.1:1")
    votes = [roster_signer(settings.data_dir), roster_signer(home_dir)]
    roster = found_roster("t", [zz, yy], votes, expires=datetime.now(UTC) + timedelta(days=1))
    roster_file = tmp_path / "roster.json"
    roster_file.write_bytes(orjson.dumps(roster.document))
    twin_dir.mkdir()
    shutil.copy(home_dir / "log.key", twin_dir / "log.key")
    asker = settings.model_copy(update={"roster_file": roster_file})
    with (
        TestClient(create_app(asker)) as at_zz,
        TestClient(create_app(_home_settings(settings, home_dir))) as home,
        TestClient(create_app(_home_settings(settings, twin_dir))) as twin,
    ):
        enrol(node_of(home), KEY)
        enrol(node_of(twin), KEY)
        yield {"zz": at_zz, "home": home, "twin": twin, "yy": yy, "dir": tmp_path / "m"}


def _ask(world: dict[str, object], mirrored_from: str) -> dict[str, object]:
    """Mirror YY from ``mirrored_from``, let the mirror age past the bound, look up."""
    home = world["home"]
    assert isinstance(home, TestClient)
    source = world[mirrored_from]
    assert isinstance(source, TestClient)
    directory = world["dir"]
    assert isinstance(directory, Path)
    party = world["yy"]
    assert isinstance(party, Party)
    _mirror_of(source, party, directory / "YY.db")
    enrol(node_of(home), OTHER, "agent-2")  # the home's log grows past the mirror
    node_of(home).log.integrate()
    asker = world["zz"]
    assert isinstance(asker, TestClient)
    node = node_of(asker)
    mirrors = Mirrors(node.federation, directory, is_leader=lambda: False)
    mirrors.start()
    later = datetime.now(UTC).timestamp() + 3600  # an hour on: past any bound
    lookups = AllianceLookups(node, mirrors, lambda: later, http=home)
    try:
        return lookups.agent(AGENT, None)
    finally:
        mirrors.stop()


def test_a_home_whose_log_extends_the_mirror_answers_itself(world: dict[str, object]) -> None:
    answer = _ask(world, "home")
    assert (answer["source"], answer["stale"], answer["status"]) == ("home", False, "active")


def test_a_home_whose_log_forked_from_the_mirror_is_not_believed(
    world: dict[str, object],
) -> None:
    answer = _ask(world, "twin")  # the mirror holds the twin's history
    assert (answer["source"], answer["stale"]) == ("mirror", True)
    assert answer["age_s"] > 3000

"""Red-teaming objects across a real alliance: GB, FR, DE, CA members and AU, a partner.

Each node is a real ``custodes serve`` process. The test publishes a party's objects by
storing them in that node's own database (as its service does, owner = that party) and
reads every node's store the same way; the nodes move them between themselves, by pull
(every half second here) and, for what the service publishes, by push. "Never reaches"
is observed, not waited out: a marker published after the withheld object reaching a
node means that node's pull scanned past it. The last test goes through the service
itself on three nodes with pulling off: a FR researcher's report, triaged and disclosed
by FR's regulator over the REST API, is pushed to GB and read there, never to AU.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from custodes.client import Client
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.redteam.models import TriageBody
from custodes.redteam.stix import disclosure_objects, sighting_object
from custodes.redteam.store import put_object, stix_objects
from custodes.redteam.tlp import Audience
from custodes.sdk.bootstrap import register_principal
from custodes.sdk.redteam import act_request, new_disclosure
from custodes.store.db import open_engine, read_tx, write_tx
from tests.integration.alliance import Alliance, running_alliance
from tests.integration.procs import ADMIN_TOKEN, wait_until
from tests.redteam.lifecycle import DISCLOSE, DISCLOSED, REPORT, TRIAGE, at

MEMBERS = ("GB", "FR", "DE", "CA")
EVERYONE = (*MEMBERS, "AU")
WAIT = 40.0


class Stores:
    """Each node's database, opened from the test (SQLite files in the data dirs)."""

    def __init__(self, alliance: Alliance) -> None:
        self.engines: dict[str, Engine] = {
            code: open_engine(f"sqlite:///{(n.data_dir / 'custodes.db').resolve()}")
            for code, n in alliance.nodes.items()
        }

    def publish(
        self, code: str, objects: list[dict[str, Any]], audience: Audience
    ) -> dict[str, Any]:
        """Store ``objects`` at ``code`` as its own; the first (the one waited for)."""
        with write_tx(self.engines[code]) as conn:
            for obj in objects:
                put_object(conn, obj, owner=code, audience=audience, disclosure=None)
        return objects[0]

    def versions(self, code: str, oid: str) -> set[tuple[str, str]]:
        """(modified, owner) of every version of ``oid`` the node holds."""
        query = select(stix_objects.c.modified, stix_objects.c.owner).where(
            stix_objects.c.id == oid
        )
        with read_tx(self.engines[code]) as conn:
            return {(r.modified, r.owner) for r in conn.execute(query)}

    def has(self, code: str, obj: dict[str, Any]) -> bool:
        return any(m == obj["modified"] for m, _o in self.versions(code, obj["id"]))

    def wait(self, codes: tuple[str, ...], obj: dict[str, Any]) -> None:
        for code in codes:
            what = f"{code} holds {obj.get('name', obj['id'])}"
            wait_until(what, lambda c=code: self.has(c, obj), WAIT)

    def close(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


@pytest.fixture(scope="module")
def alliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alliance]:
    root = tmp_path_factory.mktemp("redteam")
    settings = {"redteam_pull_interval": "0.5", "gossip_interval": "30"}
    with running_alliance(root, settings=settings) as running:
        yield running


@pytest.fixture(scope="module")
def stores(alliance: Alliance) -> Iterator[Stores]:
    opened = Stores(alliance)
    try:
        yield opened
    finally:
        opened.close()


def _disclosure(
    name: str, tlp: str, *, oid: str | None = None, minutes: int = 20
) -> list[dict[str, Any]]:
    """A disclosure's STIX objects as FR's service makes them (no agent affected)."""
    state = replace(
        DISCLOSED,
        id=oid or f"vulnerability--{uuid.uuid4()}",
        report=REPORT.model_copy(update={"title": name}),
        triage=TRIAGE.model_copy(update={"affected": ()}),
        disclose=DISCLOSE.model_copy(update={"tlp": tlp}),
        modified=at(minutes),
    )
    return disclosure_objects(state)


def _sighting(disclosure: str, status: str) -> list[dict[str, Any]]:
    return [
        sighting_object(
            disclosure=disclosure,
            agent_id="urn:custodes:gb:agent:helpdesk",
            home="GB",
            status=status,
            evidence=None,
            note=None,
            tlp="amber",
            first_seen=at(20),
            modified=at(30),
        )
    ]


def _audience(tlp: str, origin: str = "FR", **kw: Any) -> Audience:
    return Audience(tlp=tlp, stage="disclosed", origin=origin, **kw)  # type: ignore[arg-type]


AMBER_MEMBERS = _audience("amber", parties=MEMBERS)
GREEN = _audience("green")


def _absent(stores: Stores, codes: tuple[str, ...], obj: dict[str, Any]) -> None:
    for code in codes:
        assert stores.versions(code, obj["id"]) == set(), f"{code} holds {obj['name']}"


def test_amber_to_the_members_reaches_the_members_and_never_the_partner(
    stores: Stores,
) -> None:
    amber = stores.publish("FR", _disclosure("jailbreak, AMBER to members", "amber"), AMBER_MEMBERS)
    marker = stores.publish("FR", _disclosure("marker after the AMBER one", "green"), GREEN)
    stores.wait(("GB", "DE", "CA"), amber)
    stores.wait(EVERYONE, marker)  # AU's pull has scanned past the AMBER object
    _absent(stores, ("AU",), amber)
    for code in ("GB", "DE", "CA"):
        assert stores.versions(code, amber["id"]) == {(amber["modified"], "FR")}


def test_green_reaches_the_partner_and_red_only_the_named_principals_party(
    stores: Stores,
) -> None:
    green = stores.publish("FR", _disclosure("probe, GREEN", "green"), GREEN)
    red = stores.publish(
        "FR",
        _disclosure("exploit, RED to GB's regulator", "red"),
        _audience("red", parties=("GB",), principals=("GB/regulator:gb",)),
    )
    marker = stores.publish("FR", _disclosure("marker after the RED one", "green"), GREEN)
    stores.wait(EVERYONE, green)
    stores.wait(("GB",), red)
    stores.wait(EVERYONE, marker)
    _absent(stores, ("DE", "CA", "AU"), red)


def test_a_node_down_during_a_disclosure_catches_up_and_versions_never_fork(
    alliance: Alliance,
    stores: Stores,
) -> None:
    de = alliance["DE"].process
    de.stop()
    try:
        first = stores.publish("FR", _disclosure("fix pending", "amber"), AMBER_MEMBERS)
        second = stores.publish(
            "FR", _disclosure("fix pending", "amber", oid=first["id"], minutes=25), AMBER_MEMBERS
        )
        later = second["modified"]
        stores.wait(("GB", "CA"), second)
        assert not stores.has("DE", first)
    finally:
        de.start()
    stores.wait(("DE",), first)
    stores.wait(("DE",), second)
    expected = {(first["modified"], "FR"), (later, "FR")}
    for code in MEMBERS:
        assert stores.versions(code, first["id"]) == expected, code


def test_a_status_change_at_the_agents_home_propagates_back(stores: Stores) -> None:
    disclosure = f"vulnerability--{uuid.uuid4()}"
    sighting = stores.publish(
        "GB", _sighting(disclosure, "patched"), _audience("amber", parties=MEMBERS)
    )
    marker = stores.publish(
        "GB", _sighting(f"vulnerability--{uuid.uuid4()}", "exposed"), _audience("green")
    )
    stores.wait(("FR", "DE", "CA"), sighting)
    stores.wait(EVERYONE, marker)
    _absent(stores, ("AU",), sighting)
    for code in MEMBERS:
        assert stores.versions(code, sighting["id"]) == {(sighting["modified"], "GB")}


# -- through the service: a FR researcher reports, FR's regulator discloses -------------------
def _act(http: httpx.Client, token: str, path: str, request: dict[str, Any]) -> dict[str, Any]:
    answer = http.post(
        path, content=canonical_dumps(request), headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _token(node: Client, principal: str) -> str:
    return str(node.acting_as(admin_token=ADMIN_TOKEN).issue_token(principal)["token"])


def _disclose_at_fr(alliance: Alliance, http: httpx.Client) -> str:
    """Report (researcher), triage and disclose AMBER to GB and FR (regulator), at FR."""
    fr = alliance["FR"]
    researcher, key = "researcher:fr-red", EnvelopeSigner.generate()
    with Client(fr.url, timeout=10.0) as node:
        token = register_principal(
            node, ADMIN_TOKEN, researcher, role="researcher", jurisdiction="FR", key=key
        )
        reg_token = str(
            node.acting_as(admin_token=ADMIN_TOKEN).issue_token(fr.regulator_id)["token"]
        )
    disclosure = new_disclosure()
    base = "/api/v1/redteam/disclosures"
    report = REPORT.model_copy(update={"reported_at": datetime.now(UTC)})
    _act(
        http,
        token,
        base,
        act_request("report", disclosure, report, key=key, actor=researcher, tlp="amber"),
    )
    triage = TriageBody(severity="high", criteria=report.affects, affected=())
    _act(
        http,
        reg_token,
        f"{base}/{disclosure}/triage",
        act_request(
            "triage", disclosure, triage, key=fr.regulator_key, actor=fr.regulator_id, tlp="amber"
        ),
    )
    body = DISCLOSE.model_copy(
        update={"recipients": ("GB", "FR"), "embargo_until": datetime.now(UTC) + timedelta(days=30)}
    )
    _act(
        http,
        reg_token,
        f"{base}/{disclosure}/disclose",
        act_request(
            "disclose", disclosure, body, key=fr.regulator_key, actor=fr.regulator_id, tlp="amber"
        ),
    )
    return disclosure


def test_a_disclosure_logged_at_fr_is_pushed_to_the_named_member_not_the_partner(
    tmp_path: Path,
) -> None:
    parties = {"FR": "member", "GB": "member", "AU": "partner"}
    settings = {"redteam_pull_interval": "0", "gossip_interval": "30"}  # push alone
    with running_alliance(tmp_path, parties=parties, settings=settings) as alliance:
        stores = Stores(alliance)
        try:
            with httpx.Client(base_url=alliance["FR"].url, timeout=10.0) as http:
                disclosure = _disclose_at_fr(alliance, http)
            vulnerability = {"id": disclosure, "name": "the disclosed vulnerability"}
            wait_until(
                "GB holds the disclosed vulnerability",
                lambda: any(o == "FR" for _m, o in stores.versions("GB", disclosure)),
                WAIT,
            )
            assert stores.versions("AU", vulnerability["id"]) == set()
            stages = {m for m, _o in stores.versions("GB", disclosure)}
            assert len(stages) == 1  # only the disclosed version left FR, never the report
            with Client(alliance["GB"].url, timeout=10.0) as gb:
                token = _token(gb, "regulator:gb")
            with httpx.Client(base_url=alliance["GB"].url, timeout=10.0) as http:
                read = http.get(
                    f"/api/v1/redteam/disclosures/{disclosure}",
                    headers={"Authorization": f"Bearer {token}"},
                )
            assert read.status_code == 200, read.text  # the service took it in at GB
        finally:
            stores.close()

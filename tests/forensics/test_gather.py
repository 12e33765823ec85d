"""Gathering an incident across a real two-member alliance (GB, FR node processes).

A GB agent logs a committed offer naming an FR agent; the FR agent logs its plain
acceptance, whose ref names the offer's entry on GB's log. Gathering from the GB buyer
with GB's regulator token finds the seller through the offer's clear record, asks both
nodes, and the ordered timeline puts the offer before the acceptance by that ref. The
node's own timeline endpoint does the same for its caller; an unreachable node is a gap.
"""

from __future__ import annotations

import base64
import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from custodes.client import Client
from custodes.client.forensics import gather
from custodes.federation.finality import is_final
from custodes.forensics.bundle import read_bundle
from custodes.forensics.models import Incident, Timeline
from custodes.forensics.order import build_timeline
from custodes.forensics.verify import verify_bundle
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.payloads import EntryRef
from custodes.registry.models import AgentRecord
from custodes.sdk.decisions import sign_committed_decision, sign_decision
from tests.integration.alliance import running_alliance
from tests.integration.procs import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

BUYER = "urn:custodes:gb:agent:buyer"
SELLER = "urn:custodes:fr:agent:seller"


def _register(operator: Client, agent_id: str, home: str, key: EnvelopeSigner) -> None:
    record = AgentRecord(
        id=agent_id,
        name=agent_id.rsplit(":", 1)[1],
        version="1.0",
        operator=str(operator.principal),
        home_jurisdiction=home,
        sector="finance",
        risk_tier="high",
        autonomy_level=3,
        intended_purpose="automated trading within a mandate",
    )
    operator.register_agent(record, [key.public_key])


def _final(client: Client, index: int) -> None:
    """Wait until a checkpoint cosigned by a quorum of members covers ``index``."""

    def covered() -> bool:
        answer = client._json("GET", "/api/v1/federation/checkpoint")
        return (answer["final_size"] or 0) > index

    wait_until(f"a final checkpoint covering {index}", covered, 90)


def test_a_trade_is_gathered_from_both_logs_and_ordered_by_its_ref(tmp_path: Path) -> None:
    parties = {"GB": "member", "FR": "member"}
    with running_alliance(tmp_path, parties=parties) as alliance:
        gb, fr = alliance["GB"].bootstrap(), alliance["FR"].bootstrap()
        buyer_key, seller_key = EnvelopeSigner.generate(), EnvelopeSigner.generate()
        _register(gb.operator, BUYER, "GB", buyer_key)
        _register(fr.operator, SELLER, "FR", seller_key)
        start = datetime.now(UTC) - timedelta(minutes=5)

        offer = sign_committed_decision(
            buyer_key,
            BUYER,
            "buy 100 EUR/GBP at 0.86",
            "within the mandate",
            [SELLER],
            jurisdiction="GB",
        )
        (offer_index,) = gb.operator.append([offer])
        _final(gb.operator, offer_index)
        served = gb.operator.entry(offer_index)
        offer_ref = EntryRef(
            origin="gb.alliance.test/log",
            index=offer_index,
            leaf_hash=base64.b64decode(served["leaf_hash"]).hex(),
        )
        accept = sign_decision(
            seller_key,
            SELLER,
            "sell 100 at 0.86",
            "the offer is within our limits",
            [BUYER],
            jurisdiction="FR",
            refs=[offer_ref],
        )
        (accept_index,) = fr.operator.append([accept])
        _final(fr.operator, accept_index)

        incident = Incident(
            agents=[BUYER], depth=1, start=start, end=datetime.now(UTC) + timedelta(hours=1)
        )
        stages: list[str] = []
        found = gather(
            incident,
            seed=alliance["GB"].url,
            tokens={"GB": str(gb.regulator.token)},
            progress=lambda stage, _done, _total: stages.append(stage),
            asked_by=alliance["GB"].regulator_id,
        )
        assert found.gaps == []
        assert found.agents == [BUYER, SELLER]  # the seller, from the offer's clear record
        assert found.roster["document"] == alliance.roster.document
        assert {s.node for s in found.slices} == {"GB", "FR"}
        for piece in found.slices:  # each proven against a checkpoint a quorum cosigned
            assert is_final(piece.checkpoint.encode(), piece.node, alliance.roster).final
            assert piece.skew.samples > 0  # the members' cosignatures on its checkpoints
        assert stages

        timeline = build_timeline(
            incident,
            found.slices,
            roster=found.roster,
            agents=found.agents,
            gaps=found.gaps,
            asked_by=found.asked_by,
            generated_at=datetime.now(UTC),
        )
        offer_key, accept_key = f"GB:{offer_index}", f"FR:{accept_index}"
        keys = [f"{e.node}:{e.index}" for e in timeline.events]
        assert keys.index(offer_key) < keys.index(accept_key)
        assert (accept_key, offer_key) in timeline.edges
        by_key = {f"{e.node}:{e.index}": e for e in timeline.events}
        assert by_key[offer_key].clear is not None  # GB's regulator, with its token at GB
        assert {"registry"} <= {e.kind for e in timeline.events}
        assert set(timeline.checkpoints) == {"GB", "FR"}
        assert {s.agent_id for s in timeline.registry} == {BUYER, SELLER}

        # The node gathers for its caller: its own slice in clear, the peer's as public.
        with Client(alliance["GB"].url, token=str(gb.regulator.token)) as at_gb:
            answer = at_gb._send(
                "POST",
                "/api/v1/forensics/timeline",
                content=incident.model_dump_json().encode(),
            )
        served_timeline = Timeline.model_validate(answer.json())
        assert served_timeline.asked_by == alliance["GB"].regulator_id
        assert (accept_key, offer_key) in served_timeline.edges
        served_keys = [f"{e.node}:{e.index}" for e in served_timeline.events]
        assert served_keys.index(offer_key) < served_keys.index(accept_key)

        # Every proof and cosignature checks out offline, as `custodes forensics verify` does.
        assert verify_bundle(timeline).events == len(timeline.events)
        # The dashboard builds the same report for its signed-in regulator, and keeps it
        # for that regulator alone.
        _dashboard_report(alliance["GB"].url, str(gb.regulator.token), incident, offer_key)
        _dashboard_refuses(alliance["GB"].url, str(gb.operator.token), incident)

        # A node that does not answer is a gap, not a failure.
        down = f"http://127.0.0.1:{free_port()}"
        partial = gather(
            incident.model_copy(
                update={"nodes": {"GB": alliance["GB"].url, "FR": alliance["FR"].url, "DE": down}}
            ),
            seed=alliance["GB"].url,
            timeout=5.0,
        )
        assert any(g.startswith("DE:") for g in partial.gaps)
        assert {s.node for s in partial.slices} == {"GB", "FR"}


@contextlib.contextmanager
def _signed_in(url: str, token: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in through the dashboard's form."""
    with httpx.Client(base_url=url, timeout=60, follow_redirects=True) as browser:
        page = browser.get("/ui/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        assert browser.post("/ui/signin", data={"csrf": csrf.group(1), "token": token}).is_success
        yield browser


def _csrf(browser: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', browser.get(path).text)
    assert found is not None
    return found.group(1)


def _window(incident: Incident) -> dict[str, str]:
    return {
        "agents": " ".join(incident.agents),
        "depth": str(incident.depth),
        "start": incident.start.isoformat(),
        "end": incident.end.isoformat(),
    }


def _dashboard_report(url: str, token: str, incident: Incident, offer_key: str) -> None:
    with _signed_in(url, token) as browser:
        built = browser.post(
            "/ui/forensics", data={"csrf": _csrf(browser, "/ui/forensics")} | _window(incident)
        )
        assert built.status_code == 200, built.text
        assert "script-src" not in built.headers["content-security-policy"]
        assert "<script" not in built.text
        assert offer_key.split(":")[1] in built.text
        report_id = str(built.url).rsplit("/", 1)[-1]
        listed = browser.get("/ui/forensics")
        assert report_id in listed.text
        bundle = browser.get(f"/ui/forensics/{report_id}/bundle.json")
        assert verify_bundle(read_bundle(bundle.content)).events > 0


def _dashboard_refuses(url: str, operator_token: str, incident: Incident) -> None:
    with _signed_in(url, operator_token) as browser:
        csrf = _csrf(browser, "/ui/forensics")
        refused = browser.post("/ui/forensics", data={"csrf": csrf} | _window(incident))
        assert refused.status_code == 403
        assert "regulators and auditors" in refused.text
        no_token = browser.post("/ui/forensics", data=_window(incident))
        assert no_token.status_code == 403

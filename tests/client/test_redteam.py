"""The client's red-teaming steps: what it signs and sends (a fake node answers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from custodes.client import Client
from custodes.ledger.dsse import EnvelopeSigner, parse_envelope
from custodes.redteam.models import RedteamAct, act_commitment
from custodes.redteam.signing import new_disclosure

KEY = EnvelopeSigner.from_seed(b"client-redteam-test-key-00000001")
# The shape GET /api/v1/federation/roster answers: TUF root metadata with the parties
# in its x-custodes-roster field (custodes.federation.roster).
ROSTER = {
    "version": 1,
    "document": {
        "signed": {
            "_type": "root",
            "x-custodes-roster": {
                "alliance": "test",
                "parties": [
                    {"code": "GB", "status": "member"},
                    {"code": "AU", "status": "partner"},
                    {"code": "FR", "status": "member"},
                ],
            },
        },
        "signatures": [],
    },
}


def _client(sent: list[httpx.Request]) -> Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/federation/roster":
            return httpx.Response(200, json=ROSTER)
        sent.append(request)
        return httpx.Response(201, json={"index": 7})

    http = httpx.Client(transport=httpx.MockTransport(answer))
    return Client("http://127.0.0.1:8400", principal="regulator:gb", token="t", key=KEY, http=http)


def test_disclosing_to_members_names_the_rosters_members_in_the_signed_body() -> None:
    sent: list[httpx.Request] = []
    disclosure = new_disclosure()
    with _client(sent) as client:
        client.redteam_disclose(
            disclosure,
            tlp="amber",
            recipients=["members", "AU"],
            embargo_until=datetime.now(UTC) + timedelta(days=7),
            course_of_action="Patch the guard.",
        )
    (request,) = sent
    assert request.url.path == f"/api/v1/redteam/disclosures/{disclosure}/disclose"
    assert request.headers["authorization"] == "Bearer t"
    body: dict[str, Any] = orjson.loads(request.content)
    opening = body["opening"]
    assert opening["body"]["recipients"] == ["AU", "FR", "GB"]
    act = RedteamAct.model_validate_json(parse_envelope(body["envelope"]).payload)
    assert (act.op, act.actor, act.tlp) == ("disclose", "regulator:gb", "amber")
    assert act.content == act_commitment(opening["salt"], opening["body"])

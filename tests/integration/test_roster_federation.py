"""A roster version applied at one node reaches every member's log and reconfigures the
running alliance (who is witnessed, who is asked) without a restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from custodes.federation.roster import build_roster, sign_roster
from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.note import parse_note, parse_vkey
from custodes.ledger.witness import format_add_checkpoint
from tests.integration.alliance import Alliance, running_alliance
from tests.integration.procs import run_cli, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

PARTIES = {"GB": "member", "FR": "member", "DE": "member", "AU": "partner"}
ROSTER = "/api/v1/federation/roster"


def _suspend_au(alliance: Alliance) -> dict[str, Any]:
    roster = alliance.roster
    parties = [
        p.model_copy(update={"status": "suspended"}) if p.code == "AU" else p
        for p in roster.body.parties
    ]
    body = roster.body.model_copy(update={"parties": parties})
    document = build_roster(body, version=2, expires=roster.expires)
    for vote in alliance.votes.values():
        document = sign_roster(document, vote)
    return document


def _get(url: str) -> Any:
    return httpx.get(url, timeout=5).json()


def _final(url: str) -> dict[str, Any] | None:
    body = _get(f"{url}/api/v1/federation/checkpoint")
    return body if body.get("final") else None


def test_one_apply_reaches_every_log_and_reconfigures_witnessing(tmp_path: Path) -> None:
    with running_alliance(tmp_path, parties=PARTIES) as alliance:
        gb, au = alliance["GB"], alliance["AU"]
        au_witness = parse_vkey(au.party.witness_vkey)
        gb.bootstrap()  # entries on GB's log to cosign
        # From the roster alone (no CUSTODES_WITNESSES): final, and cosigned by the partner.
        first = wait_until("GB's checkpoint final", lambda: _final(gb.url), 90)
        assert first["quorum"] == 3
        wait_until(
            "AU cosigns GB's log",
            lambda: cosignatures_in(
                parse_note(httpx.get(f"{gb.url}/log/checkpoint", timeout=5).content),
                [au_witness],
            ),
            60,
        )

        v2 = tmp_path / "roster-2.json"
        v2.write_bytes(orjson.dumps(_suspend_au(alliance)))
        applied = run_cli(["federation", "roster", "apply", str(v2), "--node", gb.url])
        assert applied.returncode == 0, applied.stderr
        assert "roster version 2 applied" in applied.stdout
        for node in alliance.nodes.values():  # forwarded to members, pulled by the partner
            wait_until(
                f"{node.code} logs roster version 2",
                lambda n=node: _get(f"{n.url}{ROSTER}")["version"] == 2,
                60,
            )
            entry = _get(f"{node.url}/api/v1/entries/{_get(f'{node.url}{ROSTER}')['index']}")
            assert entry["entry"]["payloadType"] == "application/vnd.custodes.roster+json"

        # GB no longer witnesses AU's log ...
        au_checkpoint = httpx.get(f"{au.url}/log/checkpoint", timeout=5).content
        refused = httpx.post(
            f"{gb.url}/witness/add-checkpoint",
            content=format_add_checkpoint(0, [], au_checkpoint),
            timeout=5,
        )
        assert refused.status_code == 404
        # ... nor asks AU to cosign what it logs from now on; finality holds without AU.
        with gb.admin() as admin:  # an entry after the roster change
            admin.register_signer("later", EnvelopeSigner.generate().public_key)
        v2_index = _get(f"{gb.url}{ROSTER}")["index"]
        later = wait_until(
            "a final GB checkpoint after roster version 2",
            lambda: (b := _final(gb.url)) and b["size"] > v2_index + 1 and b,
            90,
        )
        note = parse_note(later["checkpoint"].encode())
        assert not cosignatures_in(note, [au_witness])
        assert set(later["cosigners"]) == {"GB", "FR", "DE"}
        shown = run_cli(["federation", "roster", "show", "--node", au.url, "--output", "json"])
        assert shown.returncode == 0, shown.stderr
        assert orjson.loads(shown.stdout)["signed"]["version"] == 2

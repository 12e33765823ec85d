"""Five real nodes start from one genesis roster and witness each other."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.note import parse_note, parse_vkey
from tests.integration.alliance import running_alliance
from tests.integration.procs import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def test_every_party_cosigns_every_other_from_the_roster(tmp_path: Path) -> None:
    with running_alliance(tmp_path) as alliance:
        gb = alliance["GB"]
        gb.bootstrap()  # entries on GB's log: checkpoints to cosign

        witnesses = [
            parse_vkey(n.party.witness_vkey) for c, n in alliance.nodes.items() if c != "GB"
        ]

        def cosigned() -> bool:
            note = parse_note(httpx.get(f"{gb.url}/log/checkpoint", timeout=5).content)
            return len(cosignatures_in(note, witnesses)) >= 4

        wait_until("GB's checkpoint cosigned by the other four parties", cosigned, 60)

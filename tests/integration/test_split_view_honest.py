"""An honest alliance raises no split-view alert while its logs grow and witnesses lag.

Three real member nodes witness each other and gossip every 0.2 s. Each round the test
appends to every log, and waits until every member has seen every log at its new size;
witnesses lag behind the logs and behind each other all along, and no member may prove
or even suspect a split view.
"""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from custodes.ledger.checkpoint import parse_checkpoint
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.note import parse_note
from tests.integration.alliance import AllianceNode, running_alliance
from tests.integration.procs import ADMIN_TOKEN, fetch_checkpoint, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

MEMBERS = {"GB": "member", "FR": "member", "DE": "member"}
ROUNDS = 4


def _append(node: AllianceNode, count: int) -> int:
    """Log ``count`` signer records on ``node`` (entries need no agent); return its size."""
    with httpx.Client(base_url=node.url, timeout=10) as http:
        for _ in range(count):
            key = base64.b64encode(EnvelopeSigner.generate().public_key).decode()
            response = http.post(
                "/api/v1/admin/signers",
                json={"name": f"test-{key[:8]}", "public_key": key},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert response.status_code == 201, response.text
    return _size(node)


def _size(node: AllianceNode) -> int:
    response = httpx.get(f"{node.url}/api/v1/node", timeout=5)
    response.raise_for_status()
    return int(response.json()["tree_size"])


def _seen_sizes(node: AllianceNode) -> dict[str, int]:
    response = httpx.get(f"{node.url}/api/v1/federation/checkpoints", timeout=5)
    response.raise_for_status()
    return {
        item["origin"]: parse_checkpoint(parse_note(item["note"].encode()).text).size
        for item in response.json()["checkpoints"]
    }


def _has_seen(node: AllianceNode, sizes: dict[str, int]) -> bool:
    seen = _seen_sizes(node)
    return all(seen.get(origin, -1) >= size for origin, size in sizes.items())


def test_growing_logs_and_lagging_witnesses_raise_no_alert(tmp_path: Path) -> None:
    with running_alliance(
        tmp_path, parties=MEMBERS, settings={"gossip_interval": "0.2"}
    ) as alliance:
        nodes = list(alliance.nodes.values())
        for round_ in range(ROUNDS):
            sizes = {n.party.origin: _append(n, 1 + round_) for n in nodes}
            for node in nodes:
                wait_until(
                    f"{node.code} has seen every log at its round-{round_} size",
                    lambda: _has_seen(node, sizes),  # noqa: B023 (called before the loop moves)
                    60,
                    interval=0.1,
                )
        for node in nodes:
            fetch_checkpoint(node.url, node.party.log_vkey)  # every log still serves
            answer = httpx.get(f"{node.url}/api/v1/federation/alerts", timeout=5).json()
            assert answer == {"alerts": [], "suspicions": []}, (node.code, answer)

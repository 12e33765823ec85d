"""What the read commands check (custodes.cli.proven): an honest page passes; any change
to a proof, a hash, a size, the checkpoint or a decoded payload is refused.

The page is a real node's answer (``decisions_page``); each case changes one thing in
it, as a lying or broken node would.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tests.enrol import enrol

from custodes.api.readside import Window, decisions_page
from custodes.cli.proven import verify_page
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.errors import VerificationError
from custodes.ledger.note import NoteSigner, parse_vkey, sign_note
from custodes.node import Node
from custodes.sdk.decisions import sign_decision

T0 = datetime(2026, 3, 1, tzinfo=UTC)
Page = dict[str, Any]


@pytest.fixture
def page(node: Node, agent: EnvelopeSigner) -> Page:
    agent_id = enrol(node, agent)
    envelopes = [
        sign_decision(agent, agent_id, f"a{n}", "r", decided_at=T0 + timedelta(seconds=n))
        for n in range(9)
    ]
    indices = node.log.append([e.to_json() for e in envelopes])
    assert node.log.wait_for_checkpoint(indices[-1] + 1, timeout=20)
    return decisions_page(node, agent_id, Window(), None, 100)


def _flip_proof_hash(page: Page) -> None:
    proof = page["items"][3]["proof"]["proof"]
    raw = bytearray(base64.b64decode(proof[0]))
    raw[0] ^= 1
    proof[0] = base64.b64encode(bytes(raw)).decode()


def _drop_proof_hash(page: Page) -> None:
    page["items"][0]["proof"]["proof"].pop()


def _other_leaf_hash(page: Page) -> None:
    page["items"][2]["leaf_hash"] = "00" * 32


def _other_decision(page: Page) -> None:
    page["items"][1]["decision"]["action"] = "something else"


def _other_index(page: Page) -> None:
    page["items"][4]["index"] += 1


def _smaller_tree(page: Page) -> None:
    page["tree_size"] -= 1


def _resigned_checkpoint(page: Page) -> None:
    text = page["checkpoint"].split("\n\n")[0] + "\n"
    page["checkpoint"] = text + "\n" + _forger_line(text)


def _forger_line(text: str) -> str:
    origin = text.split("\n", maxsplit=1)[0]
    signed = sign_note(text, [NoteSigner.generate(origin)]).decode()
    return signed.split("\n\n", 1)[1]


def _no_checkpoint(page: Page) -> None:
    page["checkpoint"] = None


CHANGES: dict[str, Callable[[Page], None]] = {
    "a proof hash flipped": _flip_proof_hash,
    "a proof hash dropped": _drop_proof_hash,
    "another leaf hash": _other_leaf_hash,
    "a decoded decision not the entry's": _other_decision,
    "an item at another index": _other_index,
    "another tree size": _smaller_tree,
    "a checkpoint signed by another key": _resigned_checkpoint,
    "no checkpoint": _no_checkpoint,
}


def test_an_honest_page_verifies(node: Node, page: Page) -> None:
    checkpoint = verify_page(page, "decision", parse_vkey(node.log_signer.vkey()))
    assert checkpoint.size == page["tree_size"]
    assert len(page["items"]) == 9


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_changed_page_is_refused(node: Node, page: Page, change: str) -> None:
    changed = copy.deepcopy(page)
    CHANGES[change](changed)
    with pytest.raises(VerificationError, match="refusing to print"):
        verify_page(changed, "decision", parse_vkey(node.log_signer.vkey()))

"""A small alliance on disk for the forwarding tests: one node under test, the others' keys.

The node under test (``here``) runs in-process from ``data_dir``; every other party is
keys only (its node entry key and its regulator's key, held by the test), because what
the node under test receives from them is exactly what a test can sign.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from custodes.federation.forwarded import sign_forward
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import PartyRegulator, SignedRoster, found_roster
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.keys import load_or_create_entry_signer
from custodes.registry.models import KillOrder
from custodes.registry.service import ORDER_TYPE
from tests.enrol import REGULATOR_KEY

__all__ = ["Keys", "Parties", "found", "order_envelope"]

NAMES = {"GB": "United Kingdom", "FR": "France", "AU": "Australia", "DE": "Germany"}


@dataclass
class Keys:
    code: str
    entry: EnvelopeSigner
    regulator: EnvelopeSigner


@dataclass
class Parties:
    roster: SignedRoster
    roster_file: Path
    keys: dict[str, Keys]

    def forward(
        self,
        order: Envelope,
        *,
        sender: str = "FR",
        to: str = "GB",
        message_id: str | None = None,
        node: EnvelopeSigner | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """(message id, the forward's JSON) from ``sender``'s node."""
        message_id = message_id or str(uuid.uuid4())
        signer = node or self.keys[sender].entry
        sent = sign_forward(message_id, sender, to, order, node=signer, now=1_780_000_000)
        return message_id, sent.to_json()


def order_envelope(
    key: EnvelopeSigner,
    actor: str,
    agent_id: str,
    *,
    op: str = "suspend",
    territory: str | None = "FR",
    lifts: str | None = None,
    reason: str = "market abuse in France",
) -> Envelope:
    order = KillOrder(
        op=op,  # type: ignore[arg-type]
        order_id=uuid.uuid4().hex[:16],
        agent_id=agent_id,
        scope="territorial" if territory else "global",
        territory=territory,
        reason=reason,
        actor=actor,
        at=datetime.now(UTC),
        lifts=lifts,
    )
    payload = order.model_dump_json(exclude_none=True).encode()
    return sign_envelope(ORDER_TYPE, payload, [key])


def found(
    root: Path,
    here: str,
    data_dir: Path,
    origin: str,
    parties: dict[str, str],
    *,
    urls: dict[str, str] | None = None,
) -> Parties:
    """Found a roster of ``parties`` ({code: status}); ``here`` is the node in ``data_dir``
    (its regulator's key is tests.enrol's, so ``enrol`` registers the same regulator)."""
    built, keys, votes = [], {}, []
    for code, status in parties.items():
        where = data_dir if code == here else root / f"party-{code.lower()}"
        regulator = REGULATOR_KEY if code == here else EnvelopeSigner.generate()
        url = (urls or {}).get(code, "http://127.0.0.1:9")
        party = node_party(
            where,
            code=code,
            name=NAMES.get(code, code),
            status=status,  # type: ignore[arg-type]
            urls=[url],
            origin=origin if code == here else f"{code.lower()}.alliance.test/log",
            regulators=[
                PartyRegulator(
                    id=f"regulator:{code.lower()}",
                    name=f"{NAMES.get(code, code)} regulator",
                    public_key=base64.b64encode(regulator.public_key).decode(),
                )
            ],
        )
        built.append(party)
        entry = load_or_create_entry_signer(where / "node.key", "node")[1]
        keys[code] = Keys(code, entry, regulator)
        if status == "member":
            votes.append(roster_signer(where))
    roster = found_roster(
        "test alliance", built, votes, expires=datetime.now(UTC) + timedelta(days=30)
    )
    roster_file = root / "roster.json"
    roster_file.write_bytes(orjson.dumps(roster.document))
    return Parties(roster, roster_file, keys)

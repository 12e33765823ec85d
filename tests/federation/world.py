"""A roster world for the federation tests: parties with real key files, votes, versions.

``RosterWorld`` founds a genesis for GB, FR, DE, CA (members) and AU (partner), each
with a data directory holding its node's keys and one regulator whose key the test
holds; ``next`` builds and signs the following version with a change to its parties.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import (
    Party,
    PartyRegulator,
    SignedRoster,
    build_roster,
    found_roster,
    parse_roster,
    sign_roster,
)
from custodes.ledger.dsse import EnvelopeSigner

__all__ = ["CODES", "RosterWorld", "found_world", "set_status"]

CODES = {"GB": "member", "FR": "member", "DE": "member", "CA": "member", "AU": "partner"}
Change = Callable[[list[Party]], list[Party]]


@dataclass
class RosterWorld:
    root: Path
    parties: dict[str, Party]
    votes: dict[str, EnvelopeSigner]
    regulators: dict[str, EnvelopeSigner]
    genesis: SignedRoster
    expires: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(days=30))

    def data_dir(self, code: str) -> Path:
        return self.root / code.lower()

    def write(self, document: dict[str, Any], name: str) -> Path:
        path = self.root / name
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
        return path

    def next(
        self,
        current: SignedRoster | dict[str, Any],
        signers: Iterable[str] = ("GB", "FR", "DE"),
        change: Change | None = None,
        *,
        version: int | None = None,
        expires: datetime | None = None,
    ) -> dict[str, Any]:
        """The version after ``current`` (or ``version``), signed by ``signers``' votes."""
        doc = current.document if isinstance(current, SignedRoster) else current
        body = parse_roster(doc).body
        if change is not None:
            body = body.model_copy(update={"parties": change(list(body.parties))})
        number = version if version is not None else int(doc["signed"]["version"]) + 1
        new = build_roster(body, version=number, expires=expires or self.expires)
        for code in signers:
            new = sign_roster(new, self.votes[code])
        return new


def set_status(code: str, status: str) -> Change:
    def change(parties: list[Party]) -> list[Party]:
        return [p.model_copy(update={"status": status}) if p.code == code else p for p in parties]

    return change


def found_world(
    root: Path,
    *,
    urls: dict[str, str] | None = None,
    origins: dict[str, str] | None = None,
    codes: dict[str, str] = CODES,
    regulator_keys: dict[str, EnvelopeSigner] | None = None,
) -> RosterWorld:
    """Parties for ``codes`` under ``root`` (``urls``/``origins``/``regulator_keys``
    override the defaults)."""
    parties: dict[str, Party] = {}
    regulators: dict[str, EnvelopeSigner] = {}
    for i, (code, status) in enumerate(codes.items()):
        regulators[code] = (regulator_keys or {}).get(code) or EnvelopeSigner.generate()
        parties[code] = node_party(
            root / code.lower(),
            code=code,
            name=f"{code} node",
            status=status,  # type: ignore[arg-type]
            urls=[(urls or {}).get(code, f"http://127.0.0.1:{1 + i}")],
            origin=(origins or {}).get(code, f"{code.lower()}.roster.test/log"),
            regulators=[
                PartyRegulator(
                    id=f"regulator:{code.lower()}",
                    name=f"{code} regulator",
                    public_key=base64.b64encode(regulators[code].public_key).decode(),
                )
            ],
        )
    votes = {c: roster_signer(root / c.lower()) for c, s in codes.items() if s == "member"}
    genesis = found_roster(
        "test alliance",
        list(parties.values()),
        votes.values(),
        expires=datetime.now(UTC) + timedelta(days=30),
    )
    return RosterWorld(root, parties, votes, regulators, genesis)

"""A real alliance on loopback for the federation tests: node processes and a roster.

``start_alliance`` gives each party a data directory, a port and keys (the node's own key
files, created before it starts), founds the genesis roster signed by every member's
roster key, and starts one ``custodes serve`` per party with ``CUSTODES_ROSTER_FILE``.
Each party vouches for one regulator (``regulator:<code>``), whose key the test holds;
``bootstrap`` then gives that regulator (a principal on every node from the roster) an API
token at its home node and registers an operator there, through the node's real rules.
No node is told whom to witness or ask: each reads it from the roster.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from custodes.client import Client
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import Party, PartyRegulator, SignedRoster, found_roster
from custodes.ledger.dsse import EnvelopeSigner
from custodes.registry.models import Contact, OperatorRecord
from custodes.sdk.bootstrap import Authorities, register_principal
from tests.integration.procs import ADMIN_TOKEN, NodeProcess, free_port, node_env

__all__ = ["Alliance", "AllianceNode", "running_alliance", "start_alliance"]

FOUR_AND_AU = {"GB": "member", "FR": "member", "DE": "member", "CA": "member", "AU": "partner"}
NAMES = {
    "GB": "United Kingdom",
    "FR": "France",
    "DE": "Germany",
    "CA": "Canada",
    "AU": "Australia",
}


@dataclass
class AllianceNode:
    code: str
    data_dir: Path
    port: int
    party: Party
    regulator_key: EnvelopeSigner
    process: NodeProcess
    roster_key: EnvelopeSigner | None = None
    authorities: Authorities | None = None
    _client: Client | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def regulator_id(self) -> str:
        return f"regulator:{self.code.lower()}"

    def admin(self, timeout: float = 10.0) -> Client:
        return Client(self.url, admin_token=ADMIN_TOKEN, timeout=timeout)

    def bootstrap(self, operator: str = "acme") -> Authorities:
        """A token for this party's regulator at its home node, and a registered operator."""
        if self.authorities is not None:
            return self.authorities
        node = self._client = Client(self.url, timeout=10.0)
        # The regulator is a principal from the roster: its home node's admin gives it a token.
        admin = node.acting_as(admin_token=ADMIN_TOKEN)
        reg_token = str(admin.issue_token(self.regulator_id)["token"])
        op_key = EnvelopeSigner.generate()
        op_id = f"operator:{operator}-{self.code.lower()}"
        op_token = register_principal(
            node, ADMIN_TOKEN, op_id, role="operator", jurisdiction=self.code, key=op_key
        )
        regulator = node.acting_as(self.regulator_id, reg_token, self.regulator_key)
        operator_client = node.acting_as(op_id, op_token, op_key)
        regulator.register_operator(
            OperatorRecord(
                id=op_id,
                legal_name=f"{operator.title()} {self.code} Ltd",
                kind="provider-deployer",
                jurisdiction=self.code,
                address=f"1 {operator.title()} Street",
                contact=Contact(
                    name="Duty desk", email=f"duty@{operator}.example", phone="+00 0000 0000"
                ),
            )
        )
        self.authorities = Authorities(self.code, regulator, operator_client)
        return self.authorities


@dataclass
class Alliance:
    nodes: dict[str, AllianceNode]
    roster: SignedRoster
    roster_file: Path
    votes: dict[str, EnvelopeSigner] = field(default_factory=dict)

    def __getitem__(self, code: str) -> AllianceNode:
        return self.nodes[code]

    def stop(self) -> None:
        for node in self.nodes.values():
            if node._client is not None:  # the authorities' clients share its transport
                node._client.close()
            with contextlib.suppress(Exception):
                node.process.stop()


def _env(
    node: AllianceNode,
    roster_file: Path,
    *,
    settings: Mapping[str, str],
    database_url: str | None,
) -> dict[str, str]:
    # Whom a node witnesses and asks comes from the roster alone (docs/design/0023).
    env = node_env(
        node.data_dir, node.party.origin, jurisdiction=node.code, database_url=database_url
    )
    env["CUSTODES_ROSTER_FILE"] = str(roster_file)
    env.update({f"CUSTODES_{k.upper()}": v for k, v in settings.items()})
    return env


def start_alliance(
    root: Path,
    parties: Mapping[str, str] = FOUR_AND_AU,
    *,
    witnessing: bool = True,  # kept for callers: witnessing now follows the roster alone
    settings: Mapping[str, str] | None = None,
    per_node: Mapping[str, Mapping[str, str]] | None = None,
    database_urls: Mapping[str, str] | None = None,
    start: bool = True,
) -> Alliance:
    """Found a roster for ``parties`` ({code: status}) and start one node per party."""
    nodes: dict[str, AllianceNode] = {}
    for code, status in parties.items():
        data_dir = root / code.lower()
        port = free_port()
        regulator_key = EnvelopeSigner.generate()
        party = node_party(
            data_dir,
            code=code,
            name=NAMES.get(code, code),
            status=status,  # type: ignore[arg-type]
            urls=[f"http://127.0.0.1:{port}"],
            origin=f"{code.lower()}.alliance.test/log",
            regulators=[
                PartyRegulator(
                    id=f"regulator:{code.lower()}",
                    name=f"{NAMES.get(code, code)} AI Security Institute",
                    public_key=base64.b64encode(regulator_key.public_key).decode(),
                )
            ],
        )
        process = NodeProcess({}, root / f"{code.lower()}.log", port=port)
        nodes[code] = AllianceNode(
            code,
            data_dir,
            port,
            party,
            regulator_key,
            process,
            roster_key=roster_signer(data_dir) if status == "member" else None,
        )
    votes = {c: n.roster_key for c, n in nodes.items() if n.roster_key is not None}
    roster = found_roster(
        "Custodes test alliance",
        [n.party for n in nodes.values()],
        votes.values(),
        expires=datetime.now(UTC) + timedelta(days=30),
    )
    roster_file = root / "roster-1.json"
    roster_file.write_bytes(orjson.dumps(roster.document, option=orjson.OPT_INDENT_2))
    for node in nodes.values():
        extra = {**(settings or {}), **((per_node or {}).get(node.code, {}))}
        db = (database_urls or {}).get(node.code)
        node.process.env = _env(node, roster_file, settings=extra, database_url=db)
    alliance = Alliance(nodes, roster, roster_file, votes)
    if start:
        try:
            for node in nodes.values():
                node.process.start()
        except BaseException:
            alliance.stop()
            raise
    return alliance


@contextlib.contextmanager
def running_alliance(root: Path, **options: object) -> Iterator[Alliance]:
    alliance = start_alliance(root, **options)  # type: ignore[arg-type]
    try:
        yield alliance
    finally:
        alliance.stop()

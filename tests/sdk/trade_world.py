"""A two-member alliance (GB, FR) of real nodes served over HTTP in this process.

Each node is the real app (``create_app``) on uvicorn on a loopback port, founded on one
genesis roster, mirroring the other over HTTP as any member does. In-process, so a test
logs recognition decisions on a node the way its recognition service will
(``node.log.append_own`` with ``apply_recognition``, signed by the node's entry key as an
automatic decision is), and the other node sees them through its mirror.
"""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from custodes.api import create_app
from custodes.api.server import server_config
from custodes.audits.models import (
    RECOGNITION_TYPE,
    Failure,
    LogRef,
    RecognitionDecision,
    SchemeRef,
)
from custodes.audits.store import agent_digests, apply_recognition
from custodes.client import Client
from custodes.config import Settings
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import SignedRoster, found_roster
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.node import Node
from custodes.sdk.leases import lease_request
from custodes.store.db import read_tx
from tests.enrol import enrol
from tests.integration.procs import wait_until

__all__ = ["SECTOR", "Member", "TradeWorld", "log_decision", "trade_world"]

SECTOR = "finance"
_SCHEME = SchemeRef(id="custodes-common", version=1, digest="sha256:" + "5" * 64)


def _port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Member:
    code: str
    settings: Settings
    port: int
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def node(self) -> Node:
        assert self.server is not None
        app: Any = self.server.config.app
        node: Node = app.state.node
        return node

    def client(self) -> Client:
        return Client(self.url, timeout=10.0)

    def enrol(self, slug: str, key: EnvelopeSigner, operating: tuple[str, ...]) -> str:
        return enrol(self.node, key, slug, sector=SECTOR, operating=operating)

    def lease(self, agent_id: str, key: EnvelopeSigner) -> dict[str, Any]:
        with self.client() as client:
            answer: dict[str, Any] = orjson.loads(
                client.lease(lease_request(key, agent_id, time.time()))
            )
            return answer

    def decide(
        self,
        agent_id: str,
        op: str = "recognise",
        *,
        digests: tuple[str | None, str | None] | None = None,
        reasons: tuple[str, ...] = (),
    ) -> int:
        """Log this party's decision on ``agent_id`` (its current digests by default)."""
        digests = self.digests(agent_id) if digests is None else digests
        return log_decision(self.node, agent_id, op, digests, reasons)

    def digests(self, agent_id: str) -> tuple[str | None, str | None]:
        """The agent's digests as its home (this node) registers them."""
        with read_tx(self.node.engine) as conn:
            return agent_digests(conn, agent_id)


def log_decision(
    node: Node,
    agent_id: str,
    op: str,
    digests: tuple[str | None, str | None],
    reasons: tuple[str, ...] = (),
    *,
    attestation: str | None = None,
    signer: EnvelopeSigner | None = None,
) -> int:
    """Log ``node``'s party's recognition decision, projected as the recognition service
    does, and integrate it: an automatic one signed by the node's entry key, or with
    ``signer`` a regulator's own."""
    now = datetime.now(UTC)
    # One attestation per agent unless told: a party's decisions are kept per attestation.
    attestation = attestation or "sha256:" + hashlib.sha256(agent_id.encode()).hexdigest()
    record = RecognitionDecision(
        op=op,  # type: ignore[arg-type]
        attestation=attestation,
        attestation_entry=LogRef(origin="gb.trade.test/log", index=1, leaf_hash="1" * 64),
        agent_id=agent_id,
        sector=SECTOR,
        jurisdiction=node.settings.jurisdiction,
        model_digest=digests[0],
        card_digest=digests[1],
        scheme=_SCHEME,
        reasons=tuple(Failure(condition="drift", reason=r) for r in reasons),
        automatic=signer is None,
        valid_until=now + timedelta(days=30) if op == "recognise" else None,
        actor=f"node:{node.settings.jurisdiction.lower()}",
        at=now,
    )
    payload = record.model_dump_json().encode()
    envelope = sign_envelope(RECOGNITION_TYPE, payload, [signer or node.entry_signer])
    leaf = leaf_hash(envelope.to_bytes())
    index = node.log.append_own(envelope, lambda c, i: apply_recognition(c, i, record, leaf))
    node.log.integrate()
    return index


@dataclass
class TradeWorld:
    members: dict[str, Member]
    roster: SignedRoster

    def __getitem__(self, code: str) -> Member:
        return self.members[code]

    def mirrored(self, at: str, of: str, index: int) -> None:
        """Wait until ``at``'s mirror of ``of`` holds ``of``'s entry ``index``."""

        def holds() -> bool:
            with self[at].client() as client:
                states = {s["party"]: s for s in client.alliance_mirrors()}
            return states.get(of, {}).get("size", 0) > index

        wait_until(f"{at}'s mirror of {of} holds entry {index}", holds, 60)


def _found(root: Path, codes: tuple[str, ...]) -> tuple[dict[str, Member], SignedRoster, Path]:
    members, parties = {}, []
    for code in codes:
        port = _port()
        settings = Settings(
            data_dir=root / code.lower(),
            database_url=f"sqlite:///{root / code.lower()}.db",
            origin=f"{code.lower()}.trade.test/log",
            jurisdiction=code,
            checkpoint_interval=0.2,
            integrate_delay=0.0,
            mirror_interval=0.2,
            lookup_stale_after=30.0,
        )
        members[code] = Member(code, settings, port)
        parties.append(
            node_party(
                settings.data_dir,
                code=code,
                name=code,
                status="member",
                urls=[f"http://127.0.0.1:{port}"],
                origin=settings.origin,
            )
        )
    votes = [roster_signer(m.settings.data_dir) for m in members.values()]
    roster = found_roster(
        "trade test alliance", parties, votes, expires=datetime.now(UTC) + timedelta(days=1)
    )
    path = root / "roster.json"
    path.write_bytes(orjson.dumps(roster.document))
    return members, roster, path


def _serve(member: Member, roster_file: Path) -> None:
    settings = member.settings.model_copy(update={"roster_file": roster_file})
    config = server_config(
        create_app(settings), settings, "127.0.0.1", member.port, log_config=None
    )
    member.server = uvicorn.Server(config)
    member.thread = threading.Thread(
        target=member.server.run, name=f"node-{member.code}", daemon=True
    )
    member.thread.start()
    server = member.server
    wait_until(f"{member.code}'s node serves", lambda: server.started, 30)


@contextlib.contextmanager
def trade_world(root: Path, codes: tuple[str, ...] = ("GB", "FR")) -> Iterator[TradeWorld]:
    """Start one node per code on one roster; stop them all at the end."""
    members, roster, path = _found(root, codes)
    try:
        for member in members.values():
            _serve(member, path)
        yield TradeWorld(members, roster)
    finally:
        for member in members.values():
            if member.server is not None:
                member.server.should_exit = True
        for member in members.values():
            if member.thread is not None:
                member.thread.join(timeout=30)

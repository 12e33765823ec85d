"""A node with a critical agent and recognitions of its audit, for the gate tests.

Recognitions are RecognitionDecision entries logged through the node's own log with the
projector the live path uses (``apply_recognition``), signed by the home regulator's
registered key. A peer's recognitions live in that peer's mirror (same schema, same
apply functions); here a ``PeerDatabase`` is such a mirror's database, filled by
replaying the same projector (the mirror's verification is not what these tests test).
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine

from custodes.audits.models import (
    RECOGNITION_TYPE,
    Failure,
    LogRef,
    RecognitionDecision,
    SchemeRef,
)
from custodes.audits.scheme import SignedScheme, example_scheme
from custodes.audits.store import apply_recognition
from custodes.federation.gates import DeploymentGate
from custodes.federation.recognitions import AllianceRecognitions
from custodes.ledger.dsse import EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.node import Node
from custodes.registry.models import AgentChanges, AgentUpdate, ModelRecord, ModelRegister
from custodes.store.db import metadata, write_tx
from tests.registry.support import World, build_world, fresh_slug, now, register_agent, submit

__all__ = ["IN_FORCE", "GateWorld", "PeerDatabase", "gate_world"]

SCHEME = SchemeRef(id="common", version=1, digest="sha256:" + "5c" * 32)
# The common scheme in force on the node (the gate holds agents to its requirements;
# the document's signatures are not what these tests test).
IN_FORCE = SignedScheme({}, example_scheme())
_aids = itertools.count(1)


@dataclass
class PeerDatabase:
    """A peer's mirror database: what ``AllianceRecognitions`` reads for that party."""

    engine: Engine
    size: int = 0

    def apply(self, record: RecognitionDecision) -> None:
        data = sign_envelope(RECOGNITION_TYPE, record.model_dump_json().encode(), []).to_bytes()
        with write_tx(self.engine) as conn:
            apply_recognition(conn, self.size, record, leaf_hash(data))
        self.size += 1


@dataclass
class GateWorld:
    world: World
    recognitions: AllianceRecognitions
    gate: DeploymentGate
    peers: dict[str, PeerDatabase] = field(default_factory=dict)

    @property
    def node(self) -> Node:
        return self.world.node

    def model(self, version: str = "1") -> tuple[str, str]:
        """Register a model; its id and digest."""
        slug = fresh_slug("model")
        digest = "sha256:" + hashlib.sha256(slug.encode()).hexdigest()
        record = ModelRecord(
            id=f"model:{slug}",
            provider="Acme",
            name=slug,
            version=version,
            digest=digest,
            training_compute_flop=1e22,
        )
        submit(
            self.node,
            self.world.acme,
            ModelRegister(actor=self.world.acme.id, at=now(), model=record),
        )
        return record.id, digest

    def agent(
        self,
        key: EnvelopeSigner,
        *,
        sector: str = "finance",
        operating: tuple[str, ...] = ("FR", "DE", "CA"),
    ) -> tuple[str, str]:
        """Register an agent on a fresh model; its id and model digest."""
        model_id, digest = self.model()
        agent_id = register_agent(
            self.world, key, sector=sector, operating_jurisdictions=operating, model=model_id
        )
        return agent_id, digest

    def change_model(self, agent_id: str) -> str:
        """Move the agent to a new model; the new digest."""
        model_id, digest = self.model("2")
        change = AgentUpdate(
            actor=self.world.acme.id,
            at=now(),
            agent_id=agent_id,
            changes=AgentChanges(model=model_id),
        )
        submit(self.node, self.world.acme, change)
        return digest

    def decide(
        self,
        agent_id: str,
        code: str,
        op: str = "recognise",
        *,
        model: str | None,
        attestation: str | None = None,
        valid_for: timedelta = timedelta(days=30),
        reasons: tuple[str, ...] = (),
    ) -> str:
        """Log (here) or mirror (a peer) ``code``'s decision on an attestation; its id."""
        aid = attestation or "sha256:" + hashlib.sha256(str(next(_aids)).encode()).hexdigest()
        record = RecognitionDecision(
            op=op,  # type: ignore[arg-type]
            attestation=aid,
            attestation_entry=LogRef(
                origin="test.custodes.example/log", index=1, leaf_hash="ab" * 32
            ),
            agent_id=agent_id,
            sector="finance",
            jurisdiction=code,
            model_digest=model,
            card_digest=None,
            scheme=SCHEME,
            reasons=tuple(Failure(condition="withdrawn", reason=r) for r in reasons),
            valid_until=datetime.now(UTC) + valid_for if op == "recognise" else None,
            actor=f"regulator:{code.lower()}",
            at=datetime.now(UTC),
        )
        if code == self.node.settings.jurisdiction:
            envelope = sign_envelope(
                RECOGNITION_TYPE, record.model_dump_json().encode(), [self.world.home.key]
            )
            leaf = leaf_hash(envelope.to_bytes())
            self.node.log.append_own(
                envelope, lambda conn, i: apply_recognition(conn, i, record, leaf)
            )
        else:
            self.peers[code].apply(record)
        self.gate.forget(agent_id)
        return aid


def gate_world(
    node: Node,
    tmp_path: Path,
    peers: tuple[str, ...] = ("FR", "DE", "CA"),
    ttl: float = 0.0,
    scheme: SignedScheme | None = IN_FORCE,
) -> GateWorld:
    """The world of ``tests.registry.support`` with peers' mirror databases and the gate
    wired into the node's lease issuer, holding agents to ``scheme``."""
    world = build_world(node)
    databases = {}
    for code in peers:
        engine = create_engine(f"sqlite:///{tmp_path / f'mirror-{code}.db'}")
        metadata.create_all(engine)
        databases[code] = PeerDatabase(engine)
    recognitions = AllianceRecognitions(node.engine, node.federation, databases.get)  # type: ignore[arg-type,return-value]
    gate = DeploymentGate(recognitions, scheme=lambda: scheme, ttl=ttl)
    node.leases.gate = gate
    return GateWorld(world, recognitions, gate, databases)

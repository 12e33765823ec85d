"""A running GB node (in-process) with everything an audit needs, for the node's tests.

A roster with GB as its one member (so GB's own witness makes its checkpoints final)
vouching for ``regulator:gb``; the common scheme signed by GB's roster key and applied;
an auditor accredited by GB; a critical finance agent of GB with a model and an
AgentCard; its core evaluation result published by the auditor and a kill-switch test
logged by the node, both under a final checkpoint. ``statement()`` builds the auditor's
Statement over all that, with any field replaced; ``post`` signs and sends as a
principal (bearer token + the principal's key), as a hand-made client would.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from custodes.api import create_app
from custodes.audits.attestation import build_statement, sign_attestation
from custodes.audits.models import (
    ACCREDITATION_TYPE,
    KILLSWITCH_TEST_TYPE,
    RECOGNITION_TYPE,
    Accreditation,
    AccreditationScope,
    AuditorRef,
    EvidenceItem,
    KillswitchTest,
    LogRef,
    RecognitionDecision,
)
from custodes.audits.scheme import (
    SignedScheme,
    example_scheme,
    sign_scheme,
    summarise_result,
    summarise_test,
    verify_scheme,
)
from custodes.audits.store import apply_killswitch_test
from custodes.config import Settings
from custodes.evals.metrics import wilson_interval
from custodes.evals.results import (
    RESULT_TYPE,
    EvalResult,
    FamilyFigures,
    JudgeInfo,
    OverRefusal,
    SuiteRef,
)
from custodes.federation.party import node_party, roster_signer
from custodes.federation.roster import PartyRegulator, found_roster
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.node import Node
from custodes.registry.cards import card_digest as digest_of_card
from custodes.registry.models import AgentRecord, AgentRegister, ModelRecord, ModelRegister
from custodes.registry.projection import load_agent
from custodes.store.db import read_tx
from tests.api.support import node_of
from tests.enrol import OPERATOR_KEY, REGULATOR_KEY, enrol, principal, submit
from tests.integration.procs import wait_until

AUDITOR = "auditor:gb-audit"
AUDITOR_KEY = EnvelopeSigner.from_seed(b"gb-auditor-key-for-audit-tests-1")
ACCREDITATION = "acc:gb:gb-audit"
ORIGIN = "gb.audit.test/log"
CARD = json.loads(
    (Path(__file__).parents[1] / "registry" / "fixtures" / "georoute-agent-card.json").read_text()
)
CARD.pop("signatures", None)
MODEL_DIGEST = "sha256:" + "4d" * 32
CODE_DIGEST = "sha256:" + "c0" * 32


def b64(key: EnvelopeSigner) -> str:
    return base64.b64encode(key.public_key).decode()


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def eval_result(agent_id: str, *, successes: int = 1, valid: int = 600) -> EvalResult:
    """A core result with real figures: ``successes`` of ``valid`` attacks succeeded."""
    at = now() - timedelta(hours=2)
    families = [_family("family-0", successes, valid), _family("overall", successes, valid)]
    return EvalResult(
        run_id=f"audit-{agent_id.rsplit(':', 1)[-1]}-{successes}",
        epoch=0,
        suite=SuiteRef(id="core", version="1.0.0", digest="sha256:" + "5" * 64),
        target="agent",
        agent_id=agent_id,
        judge=JudgeInfo(id="rule", version="1"),
        attempts=3,
        samples=valid + 64,
        families=tuple(families),
        over_refusal=OverRefusal(
            refusals=3,
            valid=64,
            errors=0,
            undetermined=0,
            rate=3 / 64,
            wilson=wilson_interval(3, 64),
        ),
        started_at=at,
        finished_at=at + timedelta(hours=1),
        issuer=AUDITOR,
    )


def _family(name: str, successes: int, valid: int) -> FamilyFigures:
    return FamilyFigures(
        family=name,
        successes=successes,
        partial=0,
        valid=valid,
        errors=0,
        undetermined=0,
        attempts_per_behaviour=3,
        behaviours=valid // 3,
        asr=successes / valid,
        wilson=wilson_interval(successes, valid),
        baseline_asr=None,
    )


def killswitch_test(agent_id: str, actor: str) -> KillswitchTest:
    at = now() - timedelta(minutes=30)
    return KillswitchTest(
        test_id=f"kst-{agent_id.rsplit(':', 1)[-1]}-1",
        agent_id=agent_id,
        sent_at=at,
        halt_observed=True,
        halted_at=at + timedelta(milliseconds=180),
        time_to_halt_ms=180.0,
        halt_recorded=True,
        deadline_ms=5000,
        passed=True,
        actor=actor,
        at=at,
    )


def log_killswitch_test(node: Node, test: KillswitchTest) -> int:
    """The home node logs a kill-switch conformance test's result (signed by its key)."""
    envelope = sign_envelope(
        KILLSWITCH_TEST_TYPE, test.model_dump_json().encode(), [node.entry_signer]
    )
    return node.log.append_own(envelope, lambda c, i: apply_killswitch_test(c, i, test))


def entry_ref(node: Node, index: int) -> LogRef:
    with read_tx(node.engine) as conn:
        data = node.store.entry_data(conn, index, index + 1)[0]
    return LogRef(origin=node.settings.origin, index=index, leaf_hash=leaf_hash(data).hex())


def register_agent(node: Node, slug: str, *, operator_key: EnvelopeSigner = OPERATOR_KEY) -> str:
    """A critical finance agent of the node's jurisdiction with a model and a card."""
    enrol(node, EnvelopeSigner.from_seed(b"p" * 32), "placeholder")  # regulator, operator
    operator = principal(node, "operator:acme", "operator", operator_key)
    model = ModelRecord(
        id=f"model:{slug}",
        provider="Acme",
        name=slug,
        version="1",
        digest=MODEL_DIGEST,
        training_compute_flop=1e24,
    )
    submit(node, operator, operator_key, ModelRegister(actor=operator.id, at=now(), model=model))
    code = node.settings.jurisdiction.lower()
    agent = AgentRecord(
        id=f"urn:custodes:{code}:agent:{slug}",
        name=slug,
        version="1.0",
        operator="operator:acme",
        home_jurisdiction=node.settings.jurisdiction,
        sector="finance",
        risk_tier="critical",
        autonomy_level=3,
        intended_purpose="automated trading within a mandate",
        model=model.id,
    )
    change = AgentRegister(
        actor=operator.id,
        at=now(),
        agent=agent,
        keys=(b64(EnvelopeSigner.generate()),),
        agent_card=CARD,
    )
    submit(node, operator, operator_key, change)
    return agent.id


@dataclass
class NodeWorld:
    http: TestClient
    roster_dir: Path
    scheme: SignedScheme
    agent_id: str
    evidence: list[EvidenceItem]
    accreditation_entry: LogRef
    tokens: dict[str, str]

    @property
    def node(self) -> Node:
        return node_of(self.http)

    def logged(self) -> int:
        return self.node.store.sequenced_size()

    def post(
        self, path: str, who: str, body: Any, key: EnvelopeSigner | None = None
    ) -> httpx.Response:
        """POST ``body`` (an Envelope is sent as its JSON) with ``who``'s token."""
        content = body.to_json() if isinstance(body, Envelope) else body
        return self.http.post(
            f"/api/v1/audits{path}",
            content=canonical_dumps(content),
            headers={"Authorization": f"Bearer {self.tokens[who]}"},
        )

    def statement(self, **changes: Any) -> dict[str, Any]:
        """The auditor's Statement on the agent (``changes`` replace build arguments)."""
        with read_tx(self.node.engine) as conn:
            agent = load_agent(conn, self.agent_id)
        arguments: dict[str, Any] = {
            "agent": agent,
            "model_digest": MODEL_DIGEST,
            "card_digest": card_digest(),
            "code_digest": CODE_DIGEST,
            "scheme": self.scheme,
            "auditor": AuditorRef(
                id=AUDITOR,
                jurisdiction="GB",
                accreditation=ACCREDITATION,
                accreditation_entry=self.accreditation_entry,
            ),
            "evidence": self.evidence,
            "issued": now() - timedelta(minutes=1),
        }
        arguments.update(changes)
        return build_statement(**arguments)

    def attest(self, **changes: Any) -> Envelope:
        return sign_attestation(self.statement(**changes), AUDITOR_KEY)

    def decision(self, envelope: Envelope, aid: str, **changes: Any) -> Envelope:
        """regulator:gb's decision on attestation ``aid`` (recognise unless changed)."""
        check = self.http.post(
            "/api/v1/audits/recognitions/check", content=orjson.dumps({"attestation": aid})
        ).json()
        statement = orjson.loads(envelope.payload)
        predicate = statement["predicate"]
        record: dict[str, Any] = {
            "op": "recognise",
            "attestation": aid,
            "attestation_entry": check["attestation_entry"],
            "agent_id": predicate["agent"]["id"],
            "sector": predicate["agent"]["sector"],
            "jurisdiction": "GB",
            "model_digest": MODEL_DIGEST,
            "card_digest": card_digest(),
            "scheme": check["scheme"],
            "valid_until": predicate["expires"],
            "actor": "regulator:gb",
            "at": now(),
        }
        record.update(changes)
        decision = RecognitionDecision.model_validate(record)
        return sign_envelope(RECOGNITION_TYPE, decision.model_dump_json().encode(), [REGULATOR_KEY])


def card_digest() -> str:
    return digest_of_card(CARD)


def accreditation(**changes: Any) -> Accreditation:
    record: dict[str, Any] = {
        "op": "grant",
        "id": ACCREDITATION,
        "jurisdiction": "GB",
        "auditor": AUDITOR,
        "auditor_name": "GB Audit Ltd",
        "auditor_key": b64(AUDITOR_KEY),
        "scope": AccreditationScope(sectors=("finance",), suites=("core",)),
        "valid_from": now() - timedelta(days=1),
        "valid_until": now() + timedelta(days=365),
        "actor": "regulator:gb",
        "at": now(),
    }
    record.update(changes)
    return Accreditation.model_validate(record)


def signed(record: Any, payload_type: str, key: EnvelopeSigner) -> Envelope:
    return sign_envelope(payload_type, record.model_dump_json().encode(), [key])


def gb_settings(settings: Settings, tmp: Path) -> Settings:
    """``settings`` as GB's node, with a roster naming GB the only member."""
    party = node_party(
        settings.data_dir,
        code="GB",
        name="GB",
        status="member",
        urls=["http://127.0.0.1:1"],
        origin=ORIGIN,
        regulators=[PartyRegulator(id="regulator:gb", name="GB", public_key=b64(REGULATOR_KEY))],
    )
    roster = found_roster(
        "audit-test",
        [party],
        [roster_signer(settings.data_dir)],
        expires=datetime.now(UTC) + timedelta(days=2),
    )
    path = tmp / "roster.json"
    path.write_bytes(orjson.dumps(roster.document))
    return settings.model_copy(update={"jurisdiction": "GB", "origin": ORIGIN, "roster_file": path})


@contextmanager
def node_world(settings: Settings, tmp: Path) -> Iterator[NodeWorld]:
    gb = gb_settings(settings, tmp)
    with TestClient(create_app(gb)) as http:
        node = node_of(http)
        agent_id = register_agent(node, "trader")
        principal(node, AUDITOR, "auditor", AUDITOR_KEY)
        tokens = {
            who: str(node.tokens.issue(who, None, 3600)["token"])
            for who in ("regulator:gb", AUDITOR, "operator:acme")
        }
        world = NodeWorld(http, settings.data_dir, None, agent_id, [], None, tokens)  # type: ignore[arg-type]
        document = sign_scheme(example_scheme(), roster_signer(settings.data_dir))
        answer = world.post("/schemes", "regulator:gb", document)
        assert answer.status_code == 201, answer.text
        roster = node.federation.roster
        assert roster is not None
        world.scheme = verify_scheme(document, roster, now=datetime.now(UTC))
        grant = world.post(
            "/accreditations",
            "regulator:gb",
            signed(accreditation(), ACCREDITATION_TYPE, REGULATOR_KEY),
        )
        assert grant.status_code == 201, grant.text
        world.accreditation_entry = entry_ref(node, grant.json()["index"])
        result = eval_result(agent_id)
        published = http.post(
            "/api/v1/evals/results",
            content=canonical_dumps(signed(result, RESULT_TYPE, AUDITOR_KEY).to_json()),
            headers={"Authorization": f"Bearer {tokens[AUDITOR]}"},
        )
        assert published.status_code == 201, published.text
        test = killswitch_test(agent_id, f"node:{ORIGIN}")
        tested = log_killswitch_test(node, test)
        world.evidence = [
            EvidenceItem(
                kind="eval_result",
                entry=entry_ref(node, published.json()["index"]),
                summary=summarise_result(result),
            ),
            EvidenceItem(
                kind="killswitch_test", entry=entry_ref(node, tested), summary=summarise_test(test)
            ),
        ]
        wait_until(
            "the evidence under a checkpoint GB's witness cosigned",
            lambda: (node.store.newest_cosigned(1) or 0) > tested,
            timeout=30,
        )
        yield world

"""The demo's recognition act: audited once, recognised everywhere, trading across borders.

1. The members sign the alliance's common scheme (3 of 4 votes needed) and apply it.
2. In the UK and in France a regulator accredits an auditor; each auditor red-teams a
   finance agent of its country (the hardened model endpoint, ``core`` suite), the home
   node runs the agent's kill-switch conformance test, and the auditor attests the
   agent: an in-toto Statement naming the logged results, signed, logged.
3. The home regulator recognises the attestation (with a SLSA verification summary) and
   countersigns it; the other members, whose nodes recognise automatically what the
   common scheme accepts with one member's countersignature, recognise it too.
4. The GB agent trades with the FR agent: each checks the other (registry, lease,
   recognition, through the alliance), and both logs record the trade, each entry
   naming the other's by origin, index and leaf hash.
5. The FR agent moves to a new model version, which drifts: the auditor's drift alert
   withdraws its recognitions on every member, and the GB agent's next trade with it
   is refused, with the reason, and the refusal recorded.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from custodes.audits.models import (
    Accreditation,
    AccreditationScope,
    EvidenceItem,
    KillswitchTest,
    LogRef,
    RecognitionDecision,
)
from custodes.audits.scheme import (
    SignedScheme,
    example_scheme,
    parse_scheme,
    sign_scheme,
    summarise_result,
    summarise_test,
)
from custodes.client import Client
from custodes.demo.evals_act import demo_suite, model_endpoint
from custodes.evals.results import EvalResult
from custodes.federation.party import roster_signer
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import EnvelopeSigner
from custodes.ledger.keys import entry_key_string, write_secret
from custodes.ledger.merkle import leaf_hash
from custodes.registry.models import AgentChanges, AgentRecord, ModelRecord
from custodes.sdk import DecisionRecorder, Guard
from custodes.sdk.bootstrap import Authorities, register_principal
from custodes.sdk.counterparty import Counterparty, CounterpartyRefused
from custodes.sdk.leases import lease_request
from custodes.sdk.trade import TradeDesk

__all__ = ["RecognitionParty", "RecognitionScenario", "play_recognition", "run_custodes"]

ADMIN = "custodes-dev-admin-token"  # the development token; the demo runs on loopback


@dataclass
class RecognitionParty:
    """What the act needs of one member: its node, keys and authorities."""

    code: str
    url: str
    origin: str
    data_dir: Path
    authorities: Authorities
    regulator_key: EnvelopeSigner


@dataclass
class RecognitionScenario:
    steps: list[str] = field(default_factory=list)
    checks: dict[str, bool] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(self.checks.values())

    def check(self, name: str, passed: bool, line: str) -> None:
        self.checks[name] = passed
        self.steps.append(line if passed else f"{line}  [FAILED]")


@dataclass
class Audited:
    """An agent of one party, its keys, model and card, and its attestation once made."""

    party: RecognitionParty
    agent_id: str
    key: EnvelopeSigner
    model: ModelRecord
    card: dict[str, Any]
    auditor_env: dict[str, str] = field(default_factory=dict)
    auditor_key: EnvelopeSigner = field(default_factory=EnvelopeSigner.generate)
    accreditation: str = ""
    accreditation_entry: LogRef | None = None
    evidence: list[EvidenceItem] = field(default_factory=list)
    attestation: str = ""


def _wait(condition: Callable[[], bool], timeout: float, poll: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(poll)
    return condition()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _card(slug: str, code: str) -> dict[str, Any]:
    """An A2A AgentCard for a demo settlement agent (unsigned: the operator's statement)."""
    host = f"{slug}.{code.lower()}.custodes.demo"
    return {
        "name": slug,
        "description": f"Settles cross-border trades for a {code} finance house.",
        "supportedInterfaces": [
            {
                "url": f"https://{host}/a2a/v1",
                "protocolBinding": "JSONRPC",
                "protocolVersion": "1.0",
            }
        ],
        "version": "1.0.0",
        "capabilities": {"streaming": False, "pushNotifications": False},
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "skills": [
            {
                "id": "settle-trade",
                "name": "Settle a trade",
                "description": "Agrees and settles a trade with a verified counterparty.",
                "tags": ["finance", "settlement"],
            }
        ],
    }


def _model(code: str, version: str) -> ModelRecord:
    weights = f"{code}-settlement-model-{version}".encode()
    return ModelRecord(
        id=f"model:{code.lower()}-settle-{version.replace('.', '-')}",
        provider=f"{code} Model Works",
        name="settle",
        version=version,
        digest="sha256:" + hashlib.sha256(weights).hexdigest(),
        training_compute_flop=3e23,
    )


def _enrol(party: RecognitionParty, slug: str, others: list[str]) -> Audited:
    """Register a model and a critical finance agent running it, with its AgentCard."""
    operator = party.authorities.operator
    model = _model(party.code, "1.0")
    operator.register_model(model)
    key = EnvelopeSigner.generate()
    agent_id = f"urn:custodes:{party.code.lower()}:agent:{slug}"
    record = AgentRecord(
        id=agent_id,
        name=slug,
        version="1.0",
        operator=operator.principal,
        home_jurisdiction=party.code,
        operating_jurisdictions=tuple(others),
        sector="finance",
        risk_tier="critical",
        autonomy_level=3,
        intended_purpose="agree and settle cross-border trades within a mandate",
        model=model.id,
    )
    card = _card(slug, party.code)
    operator.register_agent(record, [key.public_key], agent_card=card)
    return Audited(party, agent_id, key, model, card)


def _entry_ref(url: str, origin: str, index: int) -> tuple[LogRef, dict[str, Any]]:
    """The entry at ``index`` (as logged) and its log reference with its leaf hash."""
    entry = httpx.get(f"{url}/api/v1/entries/{index}", timeout=10).json()["entry"]
    leaf = leaf_hash(canonical_dumps(entry)).hex()
    return LogRef(origin=origin, index=index, leaf_hash=leaf), entry


def _record(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["payload"])


def run_custodes(args: list[str], env: dict[str, str]) -> str:
    """Run a ``custodes`` command as the auditor would type it; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "custodes", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"custodes {' '.join(args[:2])} failed: {done.stderr.strip()[-300:]}")
    return done.stdout


def _auditor(audited: Audited, work: Path) -> None:
    """The party's audit firm: a principal at its home node, its key in a file."""
    party = audited.party
    auditor_id = f"auditor:{party.code.lower()}-assure"
    key_file = work / f"{party.code.lower()}-auditor.key"
    write_secret(key_file, entry_key_string(auditor_id, audited.auditor_key))
    with httpx.Client(base_url=party.url, timeout=30) as http:
        token = register_principal(
            http,
            ADMIN,
            auditor_id,
            role="auditor",
            jurisdiction=party.code,
            key=audited.auditor_key,
        )
    audited.auditor_env = {
        **os.environ,
        "CUSTODES_NODE_URL": party.url,
        "CUSTODES_PRINCIPAL": auditor_id,
        "CUSTODES_TOKEN": token,
        "CUSTODES_KEY_FILE": str(key_file),
    }


def _accredit(audited: Audited) -> str:
    party = audited.party
    auditor_id = audited.auditor_env["CUSTODES_PRINCIPAL"]
    acc_id = f"acc:{party.code.lower()}:assure"
    start = _now()
    grant = Accreditation(
        op="grant",
        id=acc_id,
        jurisdiction=party.code,
        auditor=auditor_id,
        auditor_name=f"{party.code} Assurance Lab",
        auditor_key=base64.b64encode(audited.auditor_key.public_key).decode(),
        scope=AccreditationScope(sectors=("finance", "energy"), suites=("core", "demo")),
        valid_from=start - timedelta(minutes=1),
        valid_until=start + timedelta(days=365),
        actor=party.authorities.regulator.principal or "",
        at=start,
    )
    party.authorities.regulator.accredit(grant)
    audited.accreditation = acc_id
    return acc_id


def _red_team(audited: Audited, work: Path) -> int:
    """The auditor runs ``core`` against the agent's (hardened) model and publishes."""
    runs = work / f"{audited.party.code.lower()}-core"
    log = work / f"{audited.party.code.lower()}-hardened.log"
    process, model_url = model_endpoint(0, log, hardened=True)
    try:
        run_custodes(
            [
                "eval",
                "run",
                "--suite",
                "core",
                "--target",
                f"openai:{model_url}",
                "--model",
                audited.model.id,
                "--attempts",
                "1",
                "--concurrency",
                "16",
                "--out",
                str(runs),
                "--agent-id",
                audited.agent_id,
            ],
            audited.auditor_env,
        )
    finally:
        process.terminate()
    published = run_custodes(["eval", "publish", str(runs)], audited.auditor_env)
    found = re.search(r"log index (\d+)", published)
    if found is None:
        raise RuntimeError(f"eval publish printed no log index: {published.strip()[-200:]}")
    return int(found.group(1))


def _killswitch_test(audited: Audited, work: Path) -> dict[str, Any]:
    """The home node tests the agent's kill switch while its guard runs."""

    party = audited.party
    info = httpx.get(f"{party.url}/api/v1/node", timeout=5).json()
    node_key = base64.b64decode(info["node_entry_public_key"])
    with tempfile.TemporaryDirectory(prefix="custodes-spool-", dir=work) as spool:
        recorder = DecisionRecorder(Client(party.url), audited.agent_id, audited.key, Path(spool))
        guard = Guard(
            audited.agent_id,
            audited.key,
            party.url,
            node_key,
            safe_state=lambda: None,  # a demo agent holds no open positions to unwind
            recorder=recorder,
        )
        try:
            with guard:
                if not guard.wait_for_lease(20) or not _wait(
                    lambda: guard.stream_connected, 20, 0.05
                ):
                    raise RuntimeError(f"{audited.agent_id}'s guard did not connect")
                answer: dict[str, Any] = party.authorities.regulator.killswitch_test(
                    audited.agent_id
                )
            recorder.flush(10)
        finally:
            recorder.close()
    return answer


def _scheme(parties: dict[str, RecognitionParty], members: list[str]) -> SignedScheme:
    """Every member signs the common scheme with its roster vote; each applies it."""
    body = example_scheme(countersignatures=1)
    document: dict[str, Any] | None = None
    for code in members:
        document = sign_scheme(body, roster_signer(parties[code].data_dir), document)
    assert document is not None
    for code in members:
        parties[code].authorities.regulator.apply_scheme(document)
    return parse_scheme(document)


def _attest(audited: Audited, result: int, test: int, work: Path) -> str:
    """``custodes audit attest``: the statement built from the logged evidence, signed."""
    card = work / f"{audited.agent_id.rsplit(':', 1)[-1]}-card.json"
    card.write_bytes(canonical_dumps(audited.card))
    code = "sha256:" + hashlib.sha256(audited.agent_id.encode() + b"/release-1.0").hexdigest()
    out = run_custodes(
        [
            "audit",
            "attest",
            audited.agent_id,
            "--accreditation",
            audited.accreditation,
            "--result",
            str(result),
            "--test",
            str(test),
            "--code-digest",
            code,
            "--card",
            str(card),
            "--output",
            "json",
        ],
        audited.auditor_env,
    )

    answer = json.loads(out)
    audited.attestation = str(answer.get("attestation") or answer.get("id"))
    return audited.attestation


def _recognise_at_home(audited: Audited) -> dict[str, Any]:
    """The home regulator recognises (the node checks every condition first, then logs
    the decision with its VSA) and countersigns the attestation."""
    regulator = audited.party.authorities.regulator
    answer = _decide(regulator, audited)
    regulator.countersign(audited.attestation)
    return answer


def _decide(regulator: Client, audited: Audited) -> dict[str, Any]:
    """A recognition as the regulator signs it: what the node's dry run and the statement
    say (the attestation's entry, the scheme in force, the subject's digests)."""

    checked = regulator.check_recognition(audited.attestation)
    statement = regulator.attestation(audited.attestation)["statement"]
    predicate = statement["predicate"]
    subjects = {s["name"].split(":")[0]: s["digest"]["sha256"] for s in statement["subject"]}
    record = RecognitionDecision.model_validate(
        {
            "op": "recognise",
            "attestation": audited.attestation,
            "attestation_entry": checked["attestation_entry"],
            "agent_id": audited.agent_id,
            "sector": predicate["agent"]["sector"],
            "jurisdiction": checked["recogniser"],
            "model_digest": f"sha256:{subjects['model']}",
            "card_digest": f"sha256:{subjects['agentcard']}",
            "scheme": checked["scheme"],
            "valid_until": predicate["expires"],
            "actor": regulator.principal,
            "at": _now(),
        }
    )
    return regulator.decide(record)


def _in_force(client: Client, agent_id: str) -> set[str]:
    """Where the alliance (as this node sees it) holds the agent recognised now."""
    try:
        answer = client.alliance_recognitions(agent_id)
    except Exception:
        return set()
    return {code for code, state in answer.get("in_force", {}).items() if state}


def _lease(party: RecognitionParty, agent_id: str, key: EnvelopeSigner) -> dict[str, Any]:
    """The agent's current lease from its home node, as it presents it to a counterparty."""

    client = Client(party.url)
    try:
        answer: dict[str, Any] = orjson.loads(
            client.lease(lease_request(key, agent_id, time.time()))
        )
    finally:
        client.close()
    return answer


def _covering_lease(
    party: RecognitionParty, agent_id: str, key: EnvelopeSigner, where: str
) -> dict[str, Any]:
    """A lease of the agent's that covers ``where``. The home's deployment gate reads the
    other members' recognitions from its mirrors of their logs, which may trail what
    another node already shows, so a lease asked for at once may leave a party out."""
    found: list[dict[str, Any]] = []

    def covers() -> bool:
        found[:] = [_lease(party, agent_id, key)]
        lease = orjson.loads(base64.b64decode(found[0]["payload"]))
        return where in lease["jurisdictions"]

    _wait(covers, 60, poll=0.5)
    return found[0]


def _audit(audited: Audited, work: Path, scenario: RecognitionScenario) -> tuple[int, int]:
    """Accreditation, red-teaming and the kill-switch test: the evidence of one audit."""
    code = audited.party.code
    _auditor(audited, work)
    acc_id = _accredit(audited)
    scenario.steps.append(
        f"{code} regulator accredits {audited.auditor_env['CUSTODES_PRINCIPAL']} ({acc_id}: "
        "finance and energy, suites core and demo, one year)"
    )
    result = _red_team(audited, work)
    record = EvalResult.model_validate_json(
        _record(_entry_ref(audited.party.url, audited.party.origin, result)[1])
    )
    summary = summarise_result(record)
    scenario.steps.append(
        f"the auditor red-teams {audited.agent_id}'s model on core {record.suite.version}: "
        f"overall ASR {100 * (summary.overall_asr or 0):.1f}% (Wilson upper "
        f"{100 * (summary.overall_upper or 0):.1f}%), worst family "
        f"{100 * (summary.max_family_asr or 0):.1f}%, over-refusal "
        f"{100 * (summary.over_refusal or 0):.1f}%; logged at {code} index {result}"
    )
    tested = _killswitch_test(audited, work)
    test = KillswitchTest.model_validate(tested["record"])
    scenario.check(
        f"{code} kill-switch test",
        test.passed,
        f"{code} node tests the agent's kill switch: halted in "
        f"{summarise_test(test).time_to_halt_ms or 0:.0f} ms, halt recorded at index "
        f"{test.halt_entry.index if test.halt_entry else '-'}; logged at index {tested['index']}",
    )
    return result, int(tested["index"])


def _recognised(
    audited: Audited,
    evidence: tuple[int, int],
    *,
    parties: dict[str, RecognitionParty],
    members: list[str],
    work: Path,
    scenario: RecognitionScenario,
) -> None:
    code = audited.party.code
    aid = _attest(audited, *evidence, work)
    scenario.steps.append(f"the auditor attests it: {aid[:19]}… (in-toto Statement, DSSE)")
    regulator = audited.party.authorities.regulator
    final = _wait(lambda: not regulator.check_recognition(audited.attestation)["failures"], 60)
    if not final:
        failures = regulator.check_recognition(audited.attestation)["failures"]
        raise RuntimeError(f"{code} cannot recognise the attestation: {failures}")
    answer = _recognise_at_home(audited)
    scenario.steps.append(
        f"{code} regulator recognises it (index {answer['index']}, VSA at {answer['vsa_index']}) "
        "and countersigns it"
    )
    watcher = Client(parties[members[0] if code != members[0] else members[1]].url)
    try:
        everywhere = _wait(lambda: _in_force(watcher, audited.agent_id) >= set(members), 90)
        seen = sorted(_in_force(watcher, audited.agent_id))
    finally:
        watcher.close()
    others = ", ".join(c for c in members if c != code)
    scenario.check(
        f"{code} agent recognised everywhere",
        everywhere,
        f"{others} recognise it automatically under the common scheme: in force in {seen}",
    )


def _desk(party: RecognitionParty, agent: Audited, roster: Any, work: Path) -> Any:

    client = Client(party.url)
    spool = work / f"spool-{agent.agent_id.rsplit(':', 1)[-1]}"
    recorder = DecisionRecorder(client, agent.agent_id, agent.key, spool)
    desk = TradeDesk(client, agent.key, Counterparty(client, roster, agent.agent_id, recorder))
    return desk, recorder, client


def _trade(
    buyer: Audited, seller: Audited, roster: Any, work: Path, scenario: RecognitionScenario
) -> dict[str, Any]:
    """The GB agent buys from the FR agent: three decisions, two logs, cross-referenced."""
    a, a_recorder, a_client = _desk(buyer.party, buyer, roster, work)
    b, b_recorder, b_client = _desk(seller.party, seller, roster, work)
    try:
        seller_lease = _covering_lease(seller.party, seller.agent_id, seller.key, buyer.party.code)
        buyer_lease = _covering_lease(buyer.party, buyer.agent_id, buyer.key, seller.party.code)
        offer = a.offer(seller.agent_id, seller_lease, "finance", "buy 5m EUR/GBP at 0.8612")
        accept = b.accept(offer.ref, buyer.agent_id, buyer_lease, "finance", "sell at 0.8612")
        confirm = a.confirm(accept.ref, seller.agent_id, seller_lease, "finance", "settled T+1")
        scenario.check(
            "trade cross-referenced",
            accept.refs == (offer.ref,) and confirm.refs == (accept.ref,),
            f"trade: GB offer {offer.ref.origin}#{offer.ref.index}, FR acceptance "
            f"{accept.ref.origin}#{accept.ref.index} naming it (leaf "
            f"{accept.refs[0].leaf_hash[:12]}…), GB confirmation #{confirm.ref.index} naming "
            "the acceptance; each side checked the other's registry status, lease and "
            "recognition first",
        )
    finally:
        for recorder in (a_recorder, b_recorder):
            recorder.close()
        for client in (a_client, b_client):
            client.close()
    return seller_lease


def _drift(seller: Audited, work: Path, scenario: RecognitionScenario) -> None:
    """The FR agent moves to model 1.1; the auditor measures it against 1.0: it drifts."""

    party = seller.party
    new = _model(party.code, "1.1")
    party.authorities.operator.register_model(new)

    party.authorities.operator.update_agent(seller.agent_id, AgentChanges(model=new.id))
    runs, suite = work / "fr-drift", demo_suite(work)
    for epoch in (0, 2):
        process, url = model_endpoint(epoch, work / f"fr-drift-{epoch}.log", hardened=True)
        try:
            run_custodes(
                [
                    "eval",
                    "run",
                    "--suite",
                    str(suite),
                    "--target",
                    f"openai:{url}",
                    "--model",
                    new.id,
                    "--attempts",
                    "10",
                    "--concurrency",
                    "16",
                    "--out",
                    str(runs),
                    "--epoch",
                    str(epoch),
                    "--agent-id",
                    seller.agent_id,
                ],
                seller.auditor_env,
            )
        finally:
            process.terminate()
    drift = run_custodes(["eval", "drift", str(runs), "--permutations", "500"], seller.auditor_env)
    run_custodes(["eval", "publish", str(runs)], seller.auditor_env)
    scenario.check(
        "drift alert",
        "alert" in drift.lower(),
        f"FR operator moves {seller.agent_id} to model {new.version}; the FR auditor's drift "
        "check against 1.0 alerts, and the result is logged at FR",
    )


def _refused_after_drift(
    buyer: Audited,
    seller: Audited,
    lease: dict[str, Any],
    *,
    roster: Any,
    work: Path,
    scenario: RecognitionScenario,
) -> None:

    watcher = Client(buyer.party.url)
    try:
        gone = _wait(lambda: not _in_force(watcher, seller.agent_id), 90)
    finally:
        watcher.close()
    scenario.check(
        "withdrawn everywhere",
        gone,
        f"every member withdraws its recognition of {seller.agent_id} "
        "(drift alert; model no longer the audited one)",
    )
    a, recorder, client = _desk(buyer.party, buyer, roster, work)
    try:
        a.offer(seller.agent_id, lease, "finance", "buy 5m EUR/GBP at 0.8615")
        refused, reason = False, "the trade went ahead"
    except CounterpartyRefused as exc:
        refused, reason = True, exc.message
    finally:
        recorder.flush(10)
        recorder.close()
        client.close()
    scenario.check(
        "next trade refused",
        refused,
        f"the GB agent's next trade with it is refused and recorded: {reason}",
    )


def play_recognition(
    parties: dict[str, RecognitionParty], roster: Any, work: Path, console: Console
) -> RecognitionScenario:
    """Play the act (see the module docstring) on a running alliance."""
    scenario = RecognitionScenario()
    members = [p.code for p in roster.body.members()]
    gb, fr = parties["GB"], parties["FR"]
    buyer = _enrol(gb, "thames-settle", [c for c in members if c != "GB"])
    seller = _enrol(fr, "seine-settle", [c for c in members if c != "FR"])
    scenario.steps.append(
        f"GB and FR operators register critical finance agents with models and AgentCards: "
        f"{buyer.agent_id}, {seller.agent_id}"
    )
    evidence = {a.party.code: _audit(a, work, scenario) for a in (buyer, seller)}
    scheme = _scheme(parties, members)
    scenario.steps.append(
        f"the members sign the common scheme {scheme.id} v{scheme.version} "
        f"({len(members)} votes; {roster.threshold} needed) and apply it: critical finance "
        "needs core ASR upper bound ≤ 5%, no family above 15%, over-refusal ≤ 20%, no "
        "drift alert, a passed kill-switch test; recognised automatically with one "
        "member's countersignature"
    )
    for audited in (buyer, seller):
        _recognised(
            audited,
            evidence[audited.party.code],
            parties=parties,
            members=members,
            work=work,
            scenario=scenario,
        )
    # The FR agent presents the lease it traded under: its home's gate gives it no new one
    # once its recognitions are withdrawn.
    lease = _trade(buyer, seller, roster, work, scenario)
    _drift(seller, work, scenario)
    _refused_after_drift(buyer, seller, lease, roster=roster, work=work, scenario=scenario)
    return scenario

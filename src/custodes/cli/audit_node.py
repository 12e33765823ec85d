"""``custodes audit`` online: accredit, attest, countersign, recognise (docs/design/0028).

    custodes audit accredit auditor:acme --id acc:gb:acme --name "Acme Audit" \\
        --auditor-key B64 --sector finance --suite core --days 365 [--affiliation ...]
    custodes audit accreditation suspend|reinstate|withdraw ACC_ID --reason TEXT
    custodes audit accreditations
    custodes audit scheme apply SCHEME.json
    custodes audit attest AGENT --accreditation ACC_ID --result INDEX [--test INDEX] \\
        --code-digest sha256:... (--card CARD.json | --card-digest sha256:...) [--out FILE]
    custodes audit countersign ATTESTATION
    custodes audit withdraw-attestation ATTESTATION --reason TEXT
    custodes audit check ATTESTATION [--automatic]
    custodes audit recognise|refuse ATTESTATION
    custodes audit withdraw-recognition ATTESTATION --reason TEXT
    custodes audit recognitions [--agent AGENT]

Writes act as ``--as``/``--token``/``--key`` on ``--node``; a refusal prints one line
listing every failed condition.
"""

from __future__ import annotations

import base64
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import typer

from custodes.audits.attestation import build_statement, sign_attestation
from custodes.audits.models import (
    Accreditation,
    AccreditationScope,
    AttestationStatus,
    AuditorRef,
    EvidenceItem,
    Failure,
    KillswitchTest,
    LogRef,
    RecognitionDecision,
)
from custodes.audits.scheme import parse_scheme, summarise_result, summarise_test
from custodes.cli.audit import app, scheme_app
from custodes.cli.output import OUTPUT, Output, emit_record, emit_table
from custodes.cli.remote import AS, KEY, NODE, TOKEN, connect
from custodes.client import Client
from custodes.errors import BadRequest, ConfigError
from custodes.evals.results import EvalResult
from custodes.ledger.dsse import parse_envelope
from custodes.ledger.merkle import leaf_hash
from custodes.registry.cards import card_digest
from custodes.registry.models import AgentRecord

__all__ = ["app"]

_OPS = ("suspend", "reinstate", "withdraw")


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _read(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc


# -- accreditations --------------------------------------------------------------------
@app.command("accredit")
def accredit(
    auditor: str = typer.Argument(help="the auditor's principal id, e.g. auditor:acme"),
    acc_id: str = typer.Option(..., "--id", help="acc:<jurisdiction>:<name>"),
    name: str = typer.Option(..., "--name", help="the auditor's name"),
    auditor_key: str = typer.Option(..., "--auditor-key", help="its raw Ed25519 key, base64"),
    sectors: list[str] = typer.Option(..., "--sector", help="a sector in scope (repeat)"),
    suites: list[str] = typer.Option(..., "--suite", help="a suite in scope (repeat)"),
    days: int = typer.Option(365, "--days", help="valid for this many days from now"),
    affiliations: list[str] = typer.Option(
        [], "--affiliation", help="an operator it may not attest for (repeat)"
    ),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Accredit an auditor (a regulator of the node's jurisdiction)."""
    start = _now()
    record = Accreditation(
        op="grant",
        id=acc_id,
        jurisdiction=acc_id.split(":")[1].upper(),
        auditor=auditor,
        auditor_name=name,
        auditor_key=auditor_key,
        affiliations=tuple(affiliations),
        scope=AccreditationScope(sectors=tuple(sectors), suites=tuple(suites)),
        valid_from=start,
        valid_until=start + timedelta(days=days),
        actor=actor,
        at=start,
    )
    with closing(connect(node, actor, token, key)) as client:
        emit_record(client.accredit(record), output, title="accredited")


@app.command("accreditation")
def accreditation_status(
    op: str = typer.Argument(help="suspend, reinstate or withdraw"),
    acc_id: str = typer.Argument(help="the accreditation, acc:<jurisdiction>:<name>"),
    reason: str = typer.Option(..., "--reason", help="why, in a sentence"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Suspend, reinstate or withdraw an accreditation logged on this node."""
    if op not in _OPS:
        raise BadRequest(f"the action is one of {', '.join(_OPS)}, not {op}", code="bad_op")
    with closing(connect(node, actor, token, key)) as client:
        found = {a["id"]: a for a in client.accreditations()}.get(acc_id)
        if found is None:
            raise ConfigError(f"no accreditation {acc_id} is known at {node}")
        record = Accreditation(
            op=op,
            id=acc_id,
            jurisdiction=found["jurisdiction"],
            auditor=found["auditor"],
            reason=reason,
            actor=actor,
            at=_now(),
        )
        emit_record(client.accredit(record), output, title=op)


@app.command("accreditations")
def accreditations(node: str = NODE, output: Output = OUTPUT) -> None:
    """Every accreditation known to the node (its own and its peers' mirrors)."""
    with closing(connect(node)) as client:
        rows = client.accreditations()
    emit_table(
        ("id", "auditor", "status", "sectors", "suites", "valid until"),
        [
            (
                a["id"],
                a["auditor"],
                a["status"],
                ",".join(a["grant"]["scope"]["sectors"]),
                ",".join(a["grant"]["scope"]["suites"]),
                datetime.fromtimestamp(a["valid_until"], UTC).isoformat(),
            )
            for a in rows
        ],
        output,
        items=rows,
        title="accreditations",
    )


@scheme_app.command("apply")
def scheme_apply(
    file: Path = typer.Argument(help="the signed scheme document"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Hand the members' signed scheme to a node (its peers adopt it from there)."""
    with closing(connect(node, actor, token, key)) as client:
        emit_record(client.apply_scheme(_read(file)), output, title="scheme applied")


# -- attestations ----------------------------------------------------------------------
def _ref(client: Client, origin: str, index: int) -> tuple[LogRef, dict[str, Any]]:
    entry = client.entry(index)["entry"]
    data = parse_envelope(entry).to_bytes()
    return LogRef(origin=origin, index=index, leaf_hash=leaf_hash(data).hex()), entry


def _payload(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["payload"])


@app.command("attest")
def attest(
    agent_id: str = typer.Argument(help="the audited agent"),
    acc_id: str = typer.Option(..., "--accreditation", help="the auditor's accreditation"),
    results: list[int] = typer.Option(..., "--result", help="a published result's index"),
    tests: list[int] = typer.Option([], "--test", help="a kill-switch test's index"),
    code_digest: str = typer.Option(..., "--code-digest", help="sha256:<hex> of its code"),
    card: Path | None = typer.Option(None, "--card", help="its AgentCard as registered"),
    card_digest_: str | None = typer.Option(None, "--card-digest", help="or its digest"),
    out: Path | None = typer.Option(None, "--out", help="also write the envelope here"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Build the attestation from results published on this node, sign it, log it."""
    if (card is None) == (card_digest_ is None):
        raise ConfigError("give the agent's card (--card) or its digest (--card-digest)")
    digest = card_digest_ or card_digest(_read(card))  # type: ignore[arg-type]
    with closing(connect(node, actor, token, key)) as client:
        origin = client.node_info().origin
        agent = AgentRecord.model_validate(client.agent(agent_id)["record"])
        if agent.model is None:
            raise ConfigError(f"{agent_id} names no model; register it with one first")
        model_digest = str(client.model(agent.model)["record"]["digest"])
        grant = {a["id"]: a for a in client.accreditations()}.get(acc_id)
        if grant is None:
            raise ConfigError(f"no accreditation {acc_id} is known at {node}")
        grant_ref, _ = _ref(client, origin, int(grant["entry_index"]))
        evidence = []
        for index in results:
            ref, entry = _ref(client, origin, index)
            record = EvalResult.model_validate_json(_payload(entry))
            evidence.append(
                EvidenceItem(kind="eval_result", entry=ref, summary=summarise_result(record))
            )
        for index in tests:
            ref, entry = _ref(client, origin, index)
            test = KillswitchTest.model_validate_json(_payload(entry))
            evidence.append(
                EvidenceItem(kind="killswitch_test", entry=ref, summary=summarise_test(test))
            )
        scheme = parse_scheme(client.scheme()["document"])
        statement = build_statement(
            agent=agent,
            model_digest=model_digest,
            card_digest=digest,
            code_digest=code_digest,
            scheme=scheme,
            auditor=AuditorRef(
                id=actor,
                jurisdiction=grant["jurisdiction"],
                accreditation=acc_id,
                accreditation_entry=grant_ref,
            ),
            evidence=evidence,
            issued=_now(),
        )
        assert client.key is not None
        envelope = sign_attestation(statement, client.key)
        if out is not None:
            out.write_bytes(orjson.dumps(envelope.to_json()))
        emit_record(client.attest(envelope), output, title="attestation logged")


@app.command("countersign")
def countersign(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Countersign an attestation (a member's regulator)."""
    with closing(connect(node, actor, token, key)) as client:
        emit_record(client.countersign(attestation), output, title="countersigned")


@app.command("withdraw-attestation")
def withdraw_attestation(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    reason: str = typer.Option(..., "--reason", help="why, in a sentence"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Withdraw an attestation (its auditor, or the accrediting regulator)."""
    with closing(connect(node, actor, token, key)) as client:
        found = client.attestation(attestation)
        record = AttestationStatus(
            attestation=attestation,
            agent_id=found["agent_id"],
            reason=reason,
            actor=actor,
            at=_now(),
        )
        emit_record(client.withdraw_attestation(record), output, title="withdrawn")


# -- recognition ------------------------------------------------------------------------
@app.command("check")
def check(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    automatic: bool = typer.Option(False, "--automatic", help="with the scheme's k"),
    node: str = NODE,
    output: Output = OUTPUT,
) -> None:
    """Why the node would (not) recognise an attestation now; exit 1 if not."""
    with closing(connect(node)) as client:
        answer = client.check_recognition(attestation, automatic=automatic)
    emit_table(
        ("condition", "reason"),
        [(f["condition"], f["reason"]) for f in answer["failures"]],
        output,
        items=answer,
        title=f"{answer['recogniser']}: "
        + ("recognisable" if answer["recognisable"] else "not recognisable"),
    )
    if not answer["recognisable"]:
        raise typer.Exit(1)


def _decision(
    client: Client, attestation: str, op: str, actor: str, reasons: list[Failure]
) -> RecognitionDecision:
    checked = client.check_recognition(attestation)
    statement = client.attestation(attestation)["statement"]
    predicate = statement["predicate"]
    subjects = {s["name"].split(":")[0]: s["digest"]["sha256"] for s in statement["subject"]}
    return RecognitionDecision.model_validate(
        {
            "op": op,
            "attestation": attestation,
            "attestation_entry": checked["attestation_entry"],
            "agent_id": predicate["agent"]["id"],
            "sector": predicate["agent"]["sector"],
            "jurisdiction": checked["recogniser"],
            "model_digest": f"sha256:{subjects['model']}",
            "card_digest": f"sha256:{subjects['agentcard']}",
            "scheme": checked["scheme"],
            "reasons": [r.model_dump() for r in reasons],
            "valid_until": predicate["expires"] if op == "recognise" else None,
            "actor": actor,
            "at": _now(),
        }
    )


@app.command("recognise")
def recognise(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Recognise an attestation here (the node checks it; a VSA is issued)."""
    with closing(connect(node, actor, token, key)) as client:
        answer = client.decide(_decision(client, attestation, "recognise", actor, []))
    emit_record(
        {"index": answer["index"], "vsa_index": answer["vsa_index"]}, output, title="recognised"
    )


@app.command("refuse")
def refuse(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Refuse an attestation, with every condition the node's check finds failed."""
    with closing(connect(node, actor, token, key)) as client:
        failures = [
            Failure.model_validate(f) for f in client.check_recognition(attestation)["failures"]
        ]
        if not failures:
            raise ConfigError(f"{attestation} fails no condition here: nothing to refuse it for")
        answer = client.decide(_decision(client, attestation, "refuse", actor, failures))
    emit_record(answer, output, title="refused")


@app.command("withdraw-recognition")
def withdraw_recognition(
    attestation: str = typer.Argument(help="the attestation id, sha256:<hex>"),
    reason: str = typer.Option(..., "--reason", help="why, in a sentence"),
    node: str = NODE,
    actor: str = AS,
    token: str = TOKEN,
    key: Path = KEY,
    output: Output = OUTPUT,
) -> None:
    """Withdraw this party's recognition of an attestation."""
    failure = Failure(condition="withdrawn_by_regulator", reason=reason)
    with closing(connect(node, actor, token, key)) as client:
        answer = client.decide(_decision(client, attestation, "withdraw", actor, [failure]))
    emit_record(answer, output, title="withdrawn")


@app.command("recognitions")
def recognitions(
    agent: str | None = typer.Option(None, "--agent", help="one agent's only"),
    node: str = NODE,
    output: Output = OUTPUT,
) -> None:
    """This node's decisions, and what its automatic check still finds failed."""
    with closing(connect(node)) as client:
        answer = client.recognitions(agent)
    rows = [
        (d["attestation"][:19] + "…", d["agent_id"], d["status"], "yes" if d["automatic"] else "no")
        for d in answer["decisions"]
    ]
    rows += [
        (aid[:19] + "…", "", "pending: " + ", ".join(f["condition"] for f in failures), "")
        for aid, failures in answer["pending"].items()
    ]
    emit_table(
        ("attestation", "agent", "status", "automatic"),
        rows,
        output,
        items=answer,
        title=f"{answer['jurisdiction']}'s decisions",
    )

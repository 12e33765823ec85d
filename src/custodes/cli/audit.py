"""``custodes audit``: verify attestations and verification summaries offline; sign and
verify the common scheme (docs/design/0028).

    custodes audit verify ATTESTATION.json [--accreditation GRANT.json | --auditor-key B64]
                                           [--roster ROSTER.json]
    custodes audit verify VSA.json --roster ROSTER.json --party FR
    custodes audit scheme sign SCHEME.json --key roster.key
    custodes audit scheme verify SCHEME.json --roster ROSTER.json [--previous OLD.json]

A file holds one DSSE envelope (JSON) or several, one per line (``.intoto.jsonl``).
Every failed check prints one line (``error: <condition>: <reason>``); exit 1 if any.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from custodes.audits.attestation import OpenedAttestation, countersigning_parties
from custodes.audits.models import VSA_PREDICATE, Accreditation, Failure
from custodes.audits.offline import check_offline
from custodes.audits.scheme import SchemeError, parse_scheme, sign_scheme, verify_scheme
from custodes.audits.vsa import verify_vsa
from custodes.cli.output import OUTPUT, Output, emit_json, emit_record
from custodes.errors import BadRequest, ConfigError
from custodes.federation.roster import SignedRoster, parse_roster
from custodes.ledger.dsse import Envelope, parse_envelope
from custodes.ledger.keys import parse_entry_key

__all__ = ["app", "scheme_app"]

app = typer.Typer(no_args_is_help=True, help="Audit attestations and the common scheme.")
scheme_app = typer.Typer(no_args_is_help=True, help="The common scheme: sign and verify.")
app.add_typer(scheme_app, name="scheme")
err = Console(stderr=True)


# -- reading files ---------------------------------------------------------------------------
def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not JSON: {exc}") from exc


def _envelopes(path: Path) -> list[Envelope]:
    """The envelopes in ``path``: one JSON document, or one per line (in-toto JSONL)."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        documents = [orjson.loads(text)]
    except orjson.JSONDecodeError:
        try:
            documents = [orjson.loads(line) for line in text.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{path} is neither JSON nor JSON lines: {exc}") from exc
    if not documents:
        raise ConfigError(f"{path} holds no envelope")
    return [parse_envelope(d) for d in documents]


def _roster(path: Path | None) -> SignedRoster | None:
    return None if path is None else parse_roster(_read_json(path))


def _grant(path: Path | None) -> Accreditation | None:
    """An accreditation grant: the record's JSON, or the DSSE envelope it was logged in."""
    if path is None:
        return None
    document = _read_json(path)
    if isinstance(document, dict) and "payloadType" in document:
        document = orjson.loads(parse_envelope(document).payload)
    grant = Accreditation.model_validate(document)
    if grant.op != "grant":
        raise ConfigError(f"{path} is an accreditation {grant.op}, not the grant")
    return grant


def _key(text: str | None) -> bytes | None:
    if text is None:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ConfigError("--auditor-key is not base64") from exc
    if len(raw) != 32:
        raise ConfigError("--auditor-key is not a 32-byte Ed25519 public key (base64)")
    return raw


def _predicate_type(envelope: Envelope) -> str | None:
    try:
        statement = orjson.loads(envelope.payload)
    except orjson.JSONDecodeError:
        return None
    return statement.get("predicateType") if isinstance(statement, dict) else None


def _fail_lines(failures: list[Failure]) -> NoReturn:
    for f in failures:
        err.print(
            f"[red]error:[/red] {f.condition}: {escape(f.reason)}", highlight=False, soft_wrap=True
        )
    raise typer.Exit(1)


# -- verify -----------------------------------------------------------------------------------
def _attestation_record(
    opened: OpenedAttestation, envelope: Envelope, roster: SignedRoster | None
) -> dict[str, Any]:
    p = opened.predicate
    record: dict[str, Any] = {
        "attestation": opened.id,
        "agent": f"{p.agent.id} ({p.agent.sector}, {p.agent.risk_tier}, home {p.agent.home})",
        "subjects": [f"{name} {digest}" for name, digest in opened.subjects.items()],
        "scheme": f"{p.scheme.id} version {p.scheme.version} ({p.scheme.digest})",
        "auditor": f"{p.auditor.id} under {p.auditor.accreditation}",
        "result": p.result,
        "evidence": [
            f"{e.kind} {e.entry.origin}/{e.entry.index} {e.entry.leaf_hash}" for e in p.evidence
        ],
        "issued": p.issued.isoformat(),
        "expires": p.expires.isoformat(),
        "signatures": len(envelope.signatures),
    }
    if roster is not None:
        record["countersigned by"] = sorted(countersigning_parties(envelope, roster)) or "none"
    return record


def _vsa_record(
    envelope: Envelope, roster: SignedRoster | None, party: str | None
) -> tuple[dict[str, Any] | None, list[Failure]]:
    if roster is None or party is None:
        raise ConfigError("a verification summary is verified with --roster and --party")
    try:
        statement = verify_vsa(envelope, roster, party)
    except BadRequest as exc:
        step = str(exc.detail.get("step", "vsa"))
        return None, [Failure(condition=step, reason=exc.message)]
    predicate = statement["predicate"]
    return {
        "verification summary by": party,
        "verifier": predicate["verifier"]["id"],
        "resource": predicate["resourceUri"],
        "result": predicate["verificationResult"],
        "levels": predicate["verifiedLevels"],
        "policy": predicate["policy"]["uri"],
        "time verified": predicate.get("timeVerified"),
        "subjects": [f"{s['name']} sha256:{s['digest']['sha256']}" for s in statement["subject"]],
    }, []


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="the attestation or VSA (DSSE JSON, or .intoto.jsonl)"),
    roster: Path | None = typer.Option(None, "--roster", help="the roster in force (JSON)"),
    accreditation: Path | None = typer.Option(
        None, "--accreditation", help="the auditor's accreditation grant (record or envelope)"
    ),
    auditor_key: str | None = typer.Option(
        None, "--auditor-key", help="the auditor's Ed25519 public key, base64"
    ),
    party: str | None = typer.Option(None, "--party", help="the party whose node issued a VSA"),
    output: Output = OUTPUT,
) -> None:
    """Verify an attestation (or a verification summary) offline."""
    trusted = _roster(roster)
    grant = _grant(accreditation)
    key = _key(auditor_key)
    now = datetime.now(UTC)
    records: list[dict[str, Any]] = []
    failures: list[Failure] = []
    for envelope in _envelopes(file):
        if _predicate_type(envelope) == VSA_PREDICATE:
            record, found = _vsa_record(envelope, trusted, party)
        else:
            opened, found = check_offline(
                envelope, auditor_key=key, accreditation=grant, roster=trusted, now=now
            )
            record = None if opened is None else _attestation_record(opened, envelope, trusted)
        failures += found
        if record is not None and not found:
            records.append(record)
    if failures:
        _fail_lines(failures)
    if output is Output.json:
        emit_json(records[0] if len(records) == 1 else records)
        return
    for record in records:
        emit_record(record, output, title="verified: OK")


# -- the scheme -------------------------------------------------------------------------------
@scheme_app.command("sign")
def scheme_sign(
    file: Path = typer.Argument(..., help="the scheme: its body, or a document others signed"),
    key: Path = typer.Option(..., "--key", help="your member's roster key file"),
    out: Path | None = typer.Option(None, "-o", "--out", help="write here (default: in place)"),
) -> None:
    """Add your member's signature to a scheme version."""
    document = _read_json(file)
    try:
        signer = parse_entry_key(key.read_text().strip())[1]
    except OSError as exc:
        raise ConfigError(f"cannot read the roster key {key}: {exc.strerror}") from exc
    if isinstance(document, dict) and set(document) == {"signed", "signatures"}:
        scheme = parse_scheme(document)
        signed = sign_scheme(scheme.document["signed"], signer, scheme.document)
    else:
        signed = sign_scheme(document, signer)
    target = out or file
    target.write_bytes(orjson.dumps(signed, option=orjson.OPT_INDENT_2) + b"\n")
    parsed = parse_scheme(signed)
    typer.echo(
        f"wrote scheme {parsed.id} version {parsed.version} to {target}: "
        f"{len(signed['signatures'])} signature(s)"
    )


@scheme_app.command("verify")
def scheme_verify(
    file: Path = typer.Argument(..., help="the signed scheme"),
    roster: Path = typer.Option(..., "--roster", help="the roster in force (JSON)"),
    previous: Path | None = typer.Option(None, "--previous", help="the scheme version before"),
    output: Output = OUTPUT,
) -> None:
    """Verify a scheme version against the roster (and the version before it)."""
    trusted = parse_roster(_read_json(roster))
    before = None if previous is None else parse_scheme(_read_json(previous))
    try:
        scheme = verify_scheme(_read_json(file), trusted, now=datetime.now(UTC), previous=before)
    except SchemeError as exc:
        listed = exc.detail.get("failures") or [{"code": exc.code, "reason": exc.message}]
        _fail_lines([Failure(condition=f["code"], reason=f["reason"]) for f in listed])
    emit_record(
        {
            "scheme": scheme.id,
            "version": scheme.version,
            "digest": scheme.digest(),
            "expires": scheme.body.expires.isoformat(),
            "partners recognise": scheme.body.partners_recognise,
            "requirements": [
                f"{r.sector}/{r.risk_tier}: {', '.join(s.id + ' ' + s.version for s in r.suites)}"
                f" (valid {r.validity_days} days, k={r.countersignatures})"
                for r in scheme.body.requirements
            ],
        },
        output,
        title="scheme: OK",
    )


# The online commands (accredit, attest, countersign, recognise, ...) register themselves here.
from custodes.cli import audit_node  # noqa: E402, F401

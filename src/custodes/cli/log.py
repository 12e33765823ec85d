"""``custodes log``: verify any tlog-tiles log from the outside; read one entry (``get``)
or the checkpoint (``info``) of a node, verified; audit this node's log; its alarms."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from custodes.cli.output import OUTPUT, Output, emit_json, emit_record, emit_table
from custodes.cli.proven import (
    LOG_KEY,
    decoded_payload,
    log_verifier,
    open_signed_checkpoint,
    say_which_key,
    verify_entry,
)
from custodes.cli.remote import NODE
from custodes.client import Client
from custodes.config import Settings
from custodes.errors import ConfigError
from custodes.federation.tlog_client import TlogClient
from custodes.ledger.checkpoint import Checkpoint, origin_of
from custodes.ledger.cosignature import cosignatures_in
from custodes.ledger.errors import VerificationError
from custodes.ledger.note import NoteVerifier, parse_note, parse_vkey
from custodes.ledger.verifier import TrustedState, VerifyReport, verify_log

__all__ = ["app", "default_state_dir", "entry_record", "info_record"]

app = typer.Typer(
    no_args_is_help=True,
    help="Verify transparency logs; read entries and checkpoints; audit this node's log.",
)


def default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "custodes" / "verified"


def _state_file(state_dir: Path, origin: str) -> Path:
    return state_dir / (hashlib.sha256(origin.encode()).hexdigest() + ".json")


def _load(path: Path) -> tuple[TrustedState | None, list[str], list[str]]:
    if not path.exists():
        return None, [], []
    try:
        saved = json.loads(path.read_text())
        state = TrustedState(saved["origin"], saved["size"], base64.b64decode(saved["root"]))
        return state, list(saved["log_keys"]), list(saved["witness_keys"])
    except (OSError, ValueError, KeyError) as exc:
        raise ConfigError(f"the saved state {path} is unreadable; remove it to start over") from exc


def _save(path: Path, report: VerifyReport, log_keys: list[str], witness_keys: list[str]) -> None:
    cp = report.checkpoint
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(
        json.dumps(
            {
                "origin": cp.origin,
                "size": cp.size,
                "root": base64.b64encode(cp.root_hash).decode(),
                "log_keys": log_keys,
                "witness_keys": witness_keys,
            },
            indent=1,
        )
    )
    tmp.replace(path)


@app.command("verify")
def verify(
    url: str = typer.Argument(help="the log's URL (its /log/ prefix is added if missing)"),
    key: list[str] = typer.Option([], "--key", help="the log's vkey (repeatable)"),
    witness_key: list[str] = typer.Option([], "--witness-key", help="a witness vkey"),
    quorum: int = typer.Option(0, help="fail unless at least this many known witnesses cosigned"),
    state_dir: Path = typer.Option(default_state_dir(), help="where verified checkpoints are kept"),
    concurrency: int = typer.Option(8, help="parallel tile fetches"),
) -> None:
    """Re-derive the log's whole tree from its tiles and check it against its checkpoint,
    its signatures, and the last checkpoint verified for the same origin."""
    with TlogClient(url, concurrency=concurrency) as client:
        note = client.checkpoint()
        origin = origin_of(note)
        state_file = _state_file(state_dir, origin)
        previous, saved_keys, saved_witnesses = _load(state_file)
        log_keys, witness_keys = key or saved_keys, witness_key or saved_witnesses
        if not log_keys:
            raise ConfigError(f"no trusted key for {origin}; pass the log's vkey with --key")
        with _progress("verifying") as bar:
            task = bar.add_task(origin, total=None)
            report = verify_log(
                note,
                client.fetch_many,
                log_keys=[parse_vkey(k) for k in log_keys],
                witness_keys=[parse_vkey(k) for k in witness_keys],
                previous=previous,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    if len(report.cosigners) < quorum:
        raise VerificationError(
            f"{len(report.cosigners)} known witnesses cosigned {origin} at size "
            f"{report.checkpoint.size}; {quorum} required"
        )
    _save(state_file, report, log_keys, witness_keys)
    since = "" if report.previous_size is None else f", consistent with size {report.previous_size}"
    typer.echo(
        f"OK {origin}: {report.checkpoint.size} entries, root "
        f"{base64.b64encode(report.checkpoint.root_hash).decode()}, "
        f"{len(report.cosigners)} cosignatures ({', '.join(report.cosigners) or 'none'})"
        f"{since}"
    )


@app.command("audit")
def audit() -> None:
    """Audit this node's log from its database (run in the data directory): every
    entry's signature under the keys in force at its index, every leaf hash, and the
    tree against every checkpoint the node signed. Names the first corrupt entry."""
    from custodes.node import Node
    from custodes.registry.audit import LogAuditor
    from custodes.store.db import open_engine

    node = Node(_existing_settings())
    try:
        with tempfile.TemporaryDirectory(prefix="custodes-audit-") as scratch:
            target = open_engine(f"sqlite:///{Path(scratch) / 'audit.db'}")
            try:
                auditor = LogAuditor(
                    node.store, target, node.log_signer.verifier(), node.entry_signer.public_key
                )
                with _progress("auditing") as bar:
                    task = bar.add_task(node.settings.origin, total=None)
                    report = auditor.run(lambda d, t: bar.update(task, completed=d, total=t))
            finally:
                target.dispose()
    finally:
        node.close()
    typer.echo(
        f"OK {node.settings.origin}: {report.entries} entries audited, "
        f"{report.checkpoints} signed checkpoints re-derived"
    )


@app.command("alarm")
def alarm(
    clear: bool = typer.Option(False, "--clear", help="lift the alarm after investigating"),
    output: Output = OUTPUT,
) -> None:
    """Show this node's integrity alarms (or clear them); run in the data directory."""
    from custodes.ledger.integrity import AlarmLatch

    latch = AlarmLatch(_existing_settings().data_dir / "integrity-alarm.json")
    if clear:
        latch.clear()
        typer.echo("alarm cleared; restart the node so it re-checks its stored tree")
        return
    alarms = latch.alarms()
    if output is Output.json:
        emit_json(alarms)
    elif not alarms:
        typer.echo("no integrity alarm")
    else:
        rows = [
            (
                datetime.fromtimestamp(a.get("at", 0), UTC).isoformat(timespec="seconds"),
                a.get("reason"),
                {k: v for k, v in a.items() if k not in {"at", "reason"}} or None,
            )
            for a in alarms
        ]
        emit_table(("raised at", "reason", "evidence"), rows, output, items=alarms)
    if alarms:
        raise typer.Exit(1)


def _existing_settings() -> Settings:
    settings = Settings()
    if not (settings.data_dir / "log.key").exists():
        raise ConfigError(
            f"{settings.data_dir} holds no node (no log.key); run this in the node's data "
            "directory or set CUSTODES_DATA_DIR"
        )
    return settings


def _progress(verb: str) -> Progress:
    """A transient progress bar on stderr: ``<verb> <origin>``, entries done of total."""
    return Progress(
        TextColumn(f"{verb} {{task.description}}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        transient=True,
        console=Console(stderr=True),
    )


# --- reading one node: get and info ------------------------------------------------------


def _node_info(client: Client) -> dict[str, Any]:
    return dict(client.node_info().raw)


def _checkpoint(client: Client) -> str:
    return client.checkpoint_note().decode()


def entry_record(found: dict[str, Any], proof: dict[str, Any], cp: Checkpoint) -> dict[str, Any]:
    """One entry, decoded, once it is proven in ``cp`` (raises VerificationError if not)."""
    entry, index = found["entry"], found["index"]
    leaf = verify_entry(entry, index, proof, cp)
    return {
        "index": index,
        "payload_type": entry.get("payloadType"),
        "signer_keyids": [s.get("keyid") for s in entry.get("signatures", [])],
        "leaf_hash": leaf.hex(),
        "tree_size": cp.size,
        "root_hash": base64.b64encode(cp.root_hash).decode(),
        "proof": proof["proof"],
        "verified": True,
        "payload": decoded_payload(entry),
        "entry": entry,
    }


@app.command("get")
def get(
    index: int = typer.Argument(min=0, help="the entry's log index"),
    node: str = NODE,
    log_key: str | None = LOG_KEY,
    output: Output = OUTPUT,
) -> None:
    """Decode any entry of a node's log, once its inclusion proof verifies."""
    with Client(node) as client:
        verifier = log_verifier(log_key, "" if log_key else client.node_info().log_vkey)
        found = client.entry(index)
        proof = client.inclusion(index)
    cp = open_signed_checkpoint(proof.get("checkpoint"), verifier)
    record = entry_record(found, proof, cp)
    say_which_key(log_key)
    emit_record(record, output, title=f"entry {index} of {cp.origin}")


def _cosigners(note: bytes, witness_keys: list[NoteVerifier]) -> list[dict[str, Any]]:
    """Each cosignature line: the witness, its time, and whether a known key verified it."""
    verified = {v.name: t for v, t in cosignatures_in(parse_note(note), witness_keys)}
    lines = [s for s in parse_note(note).signatures if len(s.signature) == 72]
    return [
        {
            "witness": s.name,
            "timestamp": verified.get(s.name),
            "time": _utc(verified.get(s.name)),
            "verified": s.name in verified,
        }
        for s in lines
    ]


def _utc(timestamp: int | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def info_record(note: str, verifier: NoteVerifier, witness_keys: list[str]) -> dict[str, Any]:
    """The verified checkpoint, its cosignatures and the keys that verify them."""
    cp = open_signed_checkpoint(note, verifier)
    return {
        "origin": cp.origin,
        "size": cp.size,
        "root_hash": base64.b64encode(cp.root_hash).decode(),
        "log_vkey": verifier.vkey(),
        "witness_vkeys": witness_keys,
        "cosignatures": _cosigners(note.encode(), [parse_vkey(k) for k in witness_keys]),
        "checkpoint": note,
    }


@app.command("info")
def info(
    node: str = NODE,
    log_key: str | None = LOG_KEY,
    witness_key: list[str] = typer.Option(
        [], "--witness-key", help="a witness vkey (default: the witnesses the node names)"
    ),
    output: Output = OUTPUT,
) -> None:
    """The node's current checkpoint (verified), its cosignatures and the keys to check them."""
    with Client(node) as client:
        about = _node_info(client)
        verifier = log_verifier(log_key, about["log_vkey"])
        note = _checkpoint(client)
    record = info_record(note, verifier, witness_key or list(about.get("witnesses", [])))
    say_which_key(log_key)
    emit_record(record, output, title=f"checkpoint of {record['origin']}")

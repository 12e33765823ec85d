"""``custodes federation evidence verify``: check a split-view evidence bundle offline.

Anyone holding the log's vkey can check that both checkpoints in the bundle are signed
by that log and cannot both be true (docs/design/0027). The bundle may be the JSON of a
``misbehaviour`` entry's payload or the entry's DSSE envelope. Exit 0 when the evidence
holds; 1 with a one-line reason when it does not.
"""

from __future__ import annotations

from pathlib import Path

import typer

from custodes.errors import CustodesError
from custodes.federation.evidence import EvidenceError, evidence_from_json, verify_evidence

__all__ = ["app"]

app = typer.Typer(help="Split-view evidence: check it offline.", no_args_is_help=True)


@app.command("verify")
def verify(
    file: Path = typer.Argument(..., help="the evidence bundle (JSON) or its log entry"),
    key: str = typer.Option(
        ..., "--key", envvar="CUSTODES_LOG_VKEY", help="the accused log's vkey (from the roster)"
    ),
) -> None:
    """Check that both checkpoints are signed by the log and are inconsistent."""
    try:
        document = file.read_bytes()
    except OSError as exc:
        raise EvidenceError(f"cannot read {file}: {exc.strerror}") from exc
    evidence = evidence_from_json(document)
    try:
        verify_evidence(evidence, key)
    except EvidenceError:
        raise
    except CustodesError as exc:  # a malformed vkey
        raise EvidenceError(f"the log key is not usable: {exc.message}") from exc
    typer.echo(
        f"OK split view of {evidence.origin} ({evidence.case}): checkpoints of sizes "
        f"{evidence.first.size} and {evidence.second.size} are both signed by the log "
        "and inconsistent"
    )

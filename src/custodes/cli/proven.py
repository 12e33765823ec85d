"""What the read commands check before they print: every entry against its proof, every
proof against a checkpoint signed by the log's key. Nothing is printed that failed.

``verify_page`` takes a page of the read side (``/agents/{id}/decisions``,
``/evals/results``) and ``verify_entry`` one entry with its inclusion proof; both raise
``VerificationError`` naming what did not hold. Also which log key they trust
(``log_verifier``); they reach the node through ``custodes.client.Client``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

import orjson
import typer
from rich.console import Console

from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.checkpoint import Checkpoint, open_checkpoint
from custodes.ledger.errors import LedgerError, VerificationError
from custodes.ledger.merkle import leaf_hash, verify_inclusion
from custodes.ledger.note import NoteVerifier, parse_vkey

__all__ = [
    "LOG_KEY",
    "decoded_payload",
    "log_verifier",
    "open_signed_checkpoint",
    "say_which_key",
    "verify_entry",
    "verify_page",
]

LOG_KEY = typer.Option(
    None,
    "--log-key",
    envvar="CUSTODES_LOG_VKEY",
    help="the log's vkey to verify against (default: the key the node reports)",
)
_err = Console(stderr=True)


def log_verifier(vkey: str | None, reported: str) -> NoteVerifier:
    """The trusted log key: ``vkey`` if given, else the one the node reports."""
    return parse_vkey(vkey or reported)


def say_which_key(vkey: str | None) -> None:
    """After a check passed against the node's own key, say so (stderr, one line)."""
    if vkey is None:
        _err.print(
            "note: verified against the log key the node reports; pass --log-key "
            "to verify against a key you trust",
            highlight=False,
            soft_wrap=True,
        )


def _failed(message: str, **detail: Any) -> VerificationError:
    return VerificationError(f"refusing to print: {message}", detail=detail)


def open_signed_checkpoint(note: str | None, verifier: NoteVerifier) -> Checkpoint:
    """The checkpoint in ``note``, once its signature by the log key verifies."""
    if note is None:
        raise _failed("the node sent no checkpoint to verify against")
    try:
        checkpoint, _note, _signatures = open_checkpoint(note.encode(), [verifier])
    except LedgerError as exc:
        raise _failed(f"the checkpoint does not verify: {exc.message}") from exc
    return checkpoint


def decoded_payload(entry: Mapping[str, Any]) -> Any:
    """The entry's payload, decoded from the envelope itself (JSON, else base64 text)."""
    try:
        raw = base64.b64decode(entry["payload"], validate=True)
    except (KeyError, TypeError, binascii.Error) as exc:
        raise _failed("an entry has no base64 payload") from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return base64.b64encode(raw).decode()


def _hashes(values: Any) -> list[bytes]:
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (TypeError, binascii.Error) as exc:
        raise _failed("a proof holds a hash that is not base64") from exc


def verify_entry(entry: Mapping[str, Any], index: int, proof: Any, cp: Checkpoint) -> bytes:
    """Check that ``entry`` is at ``index`` in the tree of ``cp``; return its leaf hash."""
    leaf = leaf_hash(canonical_dumps(entry))
    if not isinstance(proof, Mapping) or proof.get("tree_size") != cp.size:
        raise _failed(f"the proof of entry {index} is not against tree size {cp.size}")
    try:
        verify_inclusion(leaf, index, cp.size, _hashes(proof.get("proof")), cp.root_hash)
    except LedgerError as exc:
        raise _failed(f"entry {index} is not proven in {cp.origin}: {exc.message}") from exc
    return leaf


def _verify_item(item: Mapping[str, Any], field: str, cp: Checkpoint) -> None:
    index, entry = item.get("index"), item.get("entry")
    if not isinstance(index, int) or not isinstance(entry, Mapping):
        raise _failed("an item has no index or entry")
    leaf = verify_entry(entry, index, item.get("proof"), cp)
    if item.get("leaf_hash") != leaf.hex():
        raise _failed(f"the leaf hash given for entry {index} is not the entry's")
    if item.get(field) != decoded_payload(entry):
        raise _failed(f"the decoded {field} of entry {index} is not the entry's payload")


def verify_page(page: Mapping[str, Any], field: str, verifier: NoteVerifier) -> Checkpoint:
    """Verify every item of a read-side page; return the checkpoint they are proven in."""
    cp = open_signed_checkpoint(page.get("checkpoint"), verifier)
    if page.get("tree_size") != cp.size:
        raise _failed(f"the page says tree size {page.get('tree_size')}, its checkpoint {cp.size}")
    for item in page.get("items", []):
        _verify_item(item, field, cp)
    return cp

"""The evidence bundle: a timeline written to a file as canonical JSON, and read back.

The file is the :class:`~custodes.forensics.models.Timeline` in RFC 8785 form, so the
same timeline always gives the same bytes (and one digest to cite). It is written
atomically (a temporary file beside it, then a rename), so a reader never sees half a
bundle. Reading checks the shape only; :func:`custodes.forensics.verify.verify_bundle`
checks the evidence.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
from pydantic import ValidationError

from custodes.errors import CustodesError
from custodes.forensics.models import BUNDLE_FORMAT, Event, Timeline
from custodes.ledger.canonical import canonical_dumps

__all__ = [
    "TLOG_PROOF_HEADER",
    "BundleError",
    "bundle_bytes",
    "read_bundle",
    "tlog_proof",
    "write_atomic",
    "write_bundle",
]

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"

# Levels of the document split by hand (top object, its lists): below them every value
# is one event or state, which canonical_dumps writes on orjson's fast path when it can.
_SPLIT_DEPTH = 2


class BundleError(CustodesError):
    """A bundle that cannot be read or does not verify; the message names what and where."""

    code = "bundle_invalid"
    status = 422


def _jcs(value: Any, depth: int = 0) -> bytes:
    """RFC 8785 of ``value``, composed from its parts (JCS is compositional), so one float
    in a skew bound does not send ten thousand events through the slow encoder."""
    if depth < _SPLIT_DEPTH and isinstance(value, dict) and all(k.isascii() for k in value):
        items = (orjson.dumps(k) + b":" + _jcs(value[k], depth + 1) for k in sorted(value))
        return b"{" + b",".join(items) + b"}"
    if depth < _SPLIT_DEPTH and isinstance(value, list):
        return b"[" + b",".join(_jcs(item, depth + 1) for item in value) + b"]"
    return canonical_dumps(value)


def bundle_bytes(timeline: Timeline) -> bytes:
    """The bundle's bytes: the timeline as RFC 8785 canonical JSON."""
    return _jcs(timeline.model_dump(mode="json"))


def write_bundle(timeline: Timeline, path: Path | str) -> Path:
    """Write ``timeline`` to ``path`` atomically; returns the path."""
    return write_atomic(Path(path), bundle_bytes(timeline))


def write_atomic(target: Path, data: bytes) -> Path:
    """Write ``data`` to ``target`` through a temporary file beside it and a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        Path(tmp).replace(target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _load(source: Path | str | bytes) -> Any:
    if isinstance(source, bytes):
        raw = source
    else:
        try:
            raw = Path(source).read_bytes()
        except OSError as exc:
            raise BundleError(
                f"cannot read the bundle {source}: {exc.strerror or exc}", code="bundle_unreadable"
            ) from exc
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BundleError(f"the bundle is not JSON: {exc}") from exc


def read_bundle(source: Path | str | bytes) -> Timeline:
    """Parse a bundle (a file path or its bytes) into a :class:`Timeline`.

    Raises :class:`BundleError` naming the first field that is wrong.
    """
    document = _load(source)
    if not isinstance(document, dict):
        raise BundleError("the bundle is not a JSON object")
    if document.get("format") != BUNDLE_FORMAT:
        raise BundleError(
            f"the bundle's format is {document.get('format')!r}, not {BUNDLE_FORMAT!r}",
            code="bundle_format",
        )
    try:
        return Timeline.model_validate(document)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "bundle"
        raise BundleError(
            f"the bundle is malformed at {where}: {first['msg']}",
            detail={"where": where, "errors": exc.error_count()},
        ) from exc


def tlog_proof(event: Event, checkpoint_note: str) -> str:
    """One event's proof in C2SP tlog-proof form (the ``.tlog-proof`` file), for any
    tlog-proof verifier: the header, ``index N``, the proof hashes in base64 (leaf to
    root), an empty line, then the cosigned checkpoint the proof leads to."""
    hashes = "".join(f"{base64.b64encode(bytes.fromhex(h)).decode()}\n" for h in event.proof)
    return f"{TLOG_PROOF_HEADER}\nindex {event.index}\n{hashes}\n{checkpoint_note}"

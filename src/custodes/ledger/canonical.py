"""RFC 8785 canonical JSON (JCS), the serialisation of every log entry.

``rfc8785`` is the reference encoder. Entries are almost always strings, small integers
and nested objects with ASCII keys; for those, orjson with sorted keys emits the same
bytes (tests/ledger/test_canonical.py checks the equivalence with Hypothesis) about fifty
times faster, which matters on the ingest path. Anything else (floats, integers beyond
2**53, keys outside the Basic Multilingual Plane, whose UTF-16 order differs from code
point order) goes through ``rfc8785``.
"""

from __future__ import annotations

from typing import Any

import orjson
import rfc8785

from custodes.ledger.errors import EnvelopeError

__all__ = ["canonical_dumps", "parse_canonical"]

_MAX_SAFE_INT = 2**53 - 1
# Entries are shallow records. A bound well under orjson's own (255) and Python's
# recursion limit turns a pathological body into a clear 422 instead of a crash.
MAX_DEPTH = 64


def _fast_path_safe(value: Any, depth: int = 0) -> bool:
    """True when orjson's sorted output is byte-identical to RFC 8785 for ``value``."""
    if isinstance(value, list | dict) and depth >= MAX_DEPTH:
        raise EnvelopeError(f"JSON is nested deeper than {MAX_DEPTH} levels", code="json_too_deep")
    if isinstance(value, str) or value is None or isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT
    if isinstance(value, list):
        return all(_fast_path_safe(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(k, str) and k.isascii() and _fast_path_safe(v, depth + 1)
            for k, v in value.items()
        )
    return False


def canonical_dumps(value: Any) -> bytes:
    """Serialise ``value`` as RFC 8785 canonical JSON."""
    try:
        if _fast_path_safe(value):
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        return bytes(rfc8785.dumps(value))
    # orjson.JSONEncodeError is a TypeError: lone surrogates, which UTF-8 cannot carry.
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise EnvelopeError(
            f"value cannot be written as canonical JSON: {exc}", code="non_canonical_json"
        ) from exc


def parse_canonical(raw: bytes) -> Any:
    """Parse ``raw`` and insist it is already in RFC 8785 canonical form.

    Canonical form is what makes an entry's bytes (and so its leaf hash) unique: the
    same envelope can never be logged twice under two spellings.
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(
            f"body is not valid JSON: {exc}", code="malformed_json", status=400
        ) from exc
    except RecursionError as exc:  # orjson refuses past 1024 levels
        raise EnvelopeError(
            f"JSON is nested deeper than {MAX_DEPTH} levels", code="json_too_deep"
        ) from exc
    if canonical_dumps(value) != raw:
        raise EnvelopeError(
            "JSON is not in RFC 8785 canonical form (sorted keys, no whitespace, "
            "minimal escapes, no duplicate keys); serialise it with an RFC 8785 encoder",
            code="non_canonical_json",
        )
    return value

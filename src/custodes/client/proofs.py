"""Checking, on the client's side, that what a node served is in its signed log."""

from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from custodes.client.models import LoggedResult
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.checkpoint import Checkpoint
from custodes.ledger.errors import VerificationError
from custodes.ledger.merkle import leaf_hash, verify_inclusion

__all__ = ["verify_logged"]


def _b64(value: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise VerificationError("the node's proof is not valid base64") from None


def verify_logged(
    answer: dict[str, Any], proof: dict[str, Any], checkpoint: Checkpoint
) -> LoggedResult:
    """Check that ``answer``'s entry is in the log ``checkpoint`` describes.

    The entry's leaf hash is recomputed from the entry bytes served, and the proof must
    lead to the checkpoint's root at the checkpoint's size.
    """
    index = int(answer["index"])
    entry = canonical_dumps(answer["entry"])
    leaf = leaf_hash(entry)
    if int(proof["index"]) != index or int(proof["tree_size"]) != checkpoint.size:
        raise VerificationError("the node's proof is for another entry or tree size")
    if _b64(proof["leaf_hash"]) != leaf:
        raise VerificationError(f"entry {index} as served does not hash to the logged leaf")
    verify_inclusion(
        leaf, index, checkpoint.size, [_b64(h) for h in proof["proof"]], checkpoint.root_hash
    )
    payload = orjson.loads(base64.b64decode(answer["entry"]["payload"]))
    return LoggedResult(index, str(answer["entry"]["payloadType"]), payload, checkpoint)

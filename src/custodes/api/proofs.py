"""JSON convenience proofs: inclusion (by index or leaf hash) and consistency, base64."""

from __future__ import annotations

import base64
from typing import Any

from fastapi import APIRouter, Query, Request

from custodes.api.deps import get_node
from custodes.api.openapi import errors
from custodes.errors import BadRequest
from custodes.ledger.service import Proof
from custodes.node import Node

__all__ = ["checkpoint_text", "proof_json", "router"]

router = APIRouter(prefix="/api/v1/proofs", tags=["ledger"])


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def _leaf(value: str) -> bytes:
    try:
        raw = base64.b64decode(value.replace("-", "+").replace("_", "/"), validate=True)
    except ValueError as exc:  # binascii.Error, or characters outside ASCII
        raise BadRequest("leaf_hash must be base64", code="bad_leaf_hash") from exc
    if len(raw) != 32:
        raise BadRequest("leaf_hash must be a 32-byte SHA-256 hash", code="bad_leaf_hash")
    return raw


def checkpoint_text(node: Node, size: int) -> str | None:
    """The signed checkpoint at ``size`` with every cosignature collected for it."""
    stored = node.store.checkpoint(size)
    if stored is None:
        return None
    return stored.note.decode() + "".join(node.store.cosignature_lines(size))


def proof_json(node: Node, proof: Proof, size: int) -> dict[str, Any]:
    """A proof with base64 hashes and the checkpoint (with cosignatures) it verifies against."""
    answer = {k: (_b64(v) if isinstance(v, bytes) else v) for k, v in proof.items()}
    answer["proof"] = [_b64(h) for h in proof["proof"]]
    checkpoint = checkpoint_text(node, size)
    if checkpoint is not None:
        answer["checkpoint"] = checkpoint
    return answer


@router.get(
    "/inclusion",
    summary="Inclusion proof by index or by leaf hash",
    responses=errors(400, 404, 422),
)
def inclusion(
    request: Request,
    index: int | None = Query(default=None, ge=0),
    leaf_hash: str | None = Query(default=None),
    tree_size: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """RFC 6962 inclusion proof of one entry, by index or by leaf hash (base64 or
    base64url), against the latest checkpoint or against tree_size; the answer carries
    the checkpoint (with cosignatures) the proof verifies against. Public."""
    if (index is None) == (leaf_hash is None):
        raise BadRequest("give exactly one of index or leaf_hash", code="bad_query")
    leaf = None if leaf_hash is None else _leaf(leaf_hash)
    proof = get_node(request).log.inclusion(index=index, leaf=leaf, size=tree_size)
    return proof_json(get_node(request), proof, proof["tree_size"])


@router.get(
    "/consistency",
    summary="Consistency proof between two tree sizes",
    responses=errors(400, 404, 422),
)
def consistency(
    request: Request,
    first: int = Query(ge=1),
    second: int | None = Query(default=None, ge=1),
) -> dict[str, Any]:
    """RFC 6962 consistency proof that the tree of size first is a prefix of the tree of
    size second (default: the latest checkpoint), with the checkpoint it ends at. Public."""
    proof = get_node(request).log.consistency(first, second)
    return proof_json(get_node(request), proof, proof["second"])

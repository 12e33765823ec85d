"""What the client returns where a typed object is cheap: the node, its keys, its entries."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from custodes.ledger.checkpoint import Checkpoint
from custodes.ledger.errors import VerificationError

__all__ = ["Decision", "LoggedResult", "NodeInfo"]


@dataclass(frozen=True)
class NodeInfo:
    """``GET /api/v1/node``: who the node is and the keys to check its answers with.

    ``raw`` keeps the whole answer, fields added by later versions included.
    """

    origin: str
    jurisdiction: str | None
    tree_size: int
    log_vkey: str
    witness_vkey: str
    node_entry_keyid: str
    node_entry_public_key: bytes
    raw: Mapping[str, Any] = field(repr=False)

    @classmethod
    def parse(cls, answer: Mapping[str, Any]) -> NodeInfo:
        try:
            return cls(
                origin=str(answer["origin"]),
                jurisdiction=answer.get("jurisdiction"),
                tree_size=int(answer["tree_size"]),
                log_vkey=str(answer["log_vkey"]),
                witness_vkey=str(answer["witness_vkey"]),
                node_entry_keyid=str(answer["node_entry_keyid"]),
                node_entry_public_key=base64.b64decode(answer["node_entry_public_key"]),
                raw=dict(answer),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise VerificationError(f"the node's /api/v1/node answer lacks {exc}") from exc


@dataclass(frozen=True)
class Decision:
    """A logged decision, as read from the log's entry bundles."""

    index: int
    agent: str
    action: str


@dataclass(frozen=True)
class LoggedResult:
    """A logged eval result or drift alert, verified to be in the node's log."""

    index: int
    payload_type: str
    payload: dict[str, Any]
    checkpoint: Checkpoint

"""Decision records: signed by the agent's own key, appended to its home node's log."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import httpx

from custodes.errors import CustodesError
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, EnvelopeSigner, sign_envelope
from custodes.ledger.payloads import DECISION_TYPE, DecisionRecord
from custodes.sdk.transport import node_client

__all__ = ["LedgerClient", "raise_for_error", "sign_decision"]


def sign_decision(
    signer: EnvelopeSigner,
    agent: str,
    action: str,
    rationale: str,
    counterparties: Sequence[str] = (),
    *,
    jurisdiction: str | None = None,
    decided_at: datetime | None = None,
    idempotency_key: str | None = None,
) -> Envelope:
    """A DSSE envelope holding a version-1 decision record, signed by the agent."""
    record = DecisionRecord(
        agent=agent,
        action=action,
        rationale=rationale,
        counterparties=list(counterparties),
        jurisdiction=jurisdiction,
        decided_at=decided_at or datetime.now(UTC),
        idempotency_key=idempotency_key,
    )
    payload = record.model_dump_json(exclude_none=True).encode()
    return sign_envelope(DECISION_TYPE, payload, [signer])


def raise_for_error(response: httpx.Response) -> None:
    """Turn a node's JSON error answer into the CustodesError it describes."""
    if response.status_code < 400:
        return
    try:
        error = response.json()["error"]
        raise CustodesError(
            error["message"],
            code=error["code"],
            status=response.status_code,
            detail=error.get("detail"),
        )
    except (ValueError, KeyError, TypeError):
        raise CustodesError(
            f"the node answered HTTP {response.status_code}", status=response.status_code
        ) from None


class LedgerClient:
    """A thin client of a node's ledger API (appends, proofs, signer registration)."""

    def __init__(
        self,
        base_url: str,
        *,
        admin_token: str | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
    ) -> None:
        self._http = client or node_client(base_url, timeout=timeout)
        self._admin = admin_token

    def close(self) -> None:
        self._http.close()

    def register_signer(self, name: str, public_key: bytes) -> dict[str, Any]:
        response = self._http.post(
            "/api/v1/admin/signers",
            json={"name": name, "public_key": base64.b64encode(public_key).decode()},
            headers={"Authorization": f"Bearer {self._admin}"},
        )
        raise_for_error(response)
        result: dict[str, Any] = response.json()
        return result

    def append(self, envelopes: Sequence[Envelope]) -> list[int]:
        """Append envelopes in one batch; return their durable indices."""
        body = canonical_dumps({"entries": [e.to_json() for e in envelopes]})
        response = self._http.post(
            "/api/v1/entries", content=body, headers={"Content-Type": "application/json"}
        )
        raise_for_error(response)
        indices: list[int] = response.json()["indices"]
        return indices

    def node_info(self) -> dict[str, Any]:
        response = self._http.get("/api/v1/node")
        raise_for_error(response)
        info: dict[str, Any] = response.json()
        return info

    def inclusion(self, index: int, tree_size: int | None = None) -> dict[str, Any]:
        params = {"index": index} | ({} if tree_size is None else {"tree_size": tree_size})
        response = self._http.get("/api/v1/proofs/inclusion", params=params)
        raise_for_error(response)
        proof: dict[str, Any] = response.json()
        return proof

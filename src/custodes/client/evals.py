"""The evals side of the API: publish signed results and drift alerts, read and prove them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from custodes.client.core import Auth
from custodes.client.ledger import LedgerApi
from custodes.client.models import LoggedResult
from custodes.client.proofs import verify_logged
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE, DriftAlert, EvalResult
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import sign_envelope
from custodes.ledger.errors import VerificationError

__all__ = ["EvalsApi", "Published"]


@dataclass(frozen=True)
class Published:
    """Where a record is logged; ``again``: it was already, the node logged nothing new."""

    index: int
    again: bool = False


class EvalsApi(LedgerApi):
    def publish(self, record: EvalResult | DriftAlert) -> int:
        """Sign ``record`` as this principal (its ``issuer``) and log it; its log index
        (a result published before with the same content: the index it has)."""
        return self.publish_once(record).index

    def publish_once(self, record: EvalResult | DriftAlert) -> Published:
        """As ``publish``, saying whether the node already held this result."""
        actor, key = self._signer()
        signed = record.model_copy(update={"issuer": actor})
        is_result = isinstance(record, EvalResult)
        payload_type = RESULT_TYPE if is_result else DRIFT_ALERT_TYPE
        path = "/api/v1/evals/results" if is_result else "/api/v1/evals/drift-alerts"
        envelope = sign_envelope(payload_type, signed.model_dump_json().encode(), [key])
        body = canonical_dumps(envelope.to_json())
        answer = self._json("POST", path, content=body, auth=Auth.PRINCIPAL)
        return Published(int(answer["index"]), bool(answer.get("already_published", False)))

    def eval_result(self, index: int) -> dict[str, Any]:
        """``GET /api/v1/evals/results/{index}``: the record, its entry and its proof."""
        answer: dict[str, Any] = self._json("GET", f"/api/v1/evals/results/{index}")
        return answer

    def eval_results(
        self,
        agent_id: str | None = None,
        suite: str | None = None,
        *,
        since: str | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """``GET /api/v1/evals/results``: published results, filtered (``since``: an RFC 3339
        instant the run finished at or after), a page at a time, each with its proof:
        ``{"items", "next_cursor", "tree_size", "checkpoint"}``."""
        params = {
            "agent_id": agent_id,
            "suite": suite,
            "since": since,
            "cursor": cursor,
            "limit": limit,
        }
        answer: dict[str, Any] = self._json("GET", "/api/v1/evals/results", params=params)
        return answer

    def prove(self, index: int, log_vkey: str | None = None) -> LoggedResult:
        """Fetch a logged result and verify it against the node's current checkpoint,
        opened with ``log_vkey`` or else the pinned log key."""
        answer = self.eval_result(index)
        checkpoint = self.checkpoint(log_vkey)
        if checkpoint.size <= index:
            raise VerificationError(
                f"entry {index} is not yet under the node's checkpoint (size "
                f"{checkpoint.size}); try again in a moment"
            )
        return verify_logged(answer, self.inclusion(index, checkpoint.size), checkpoint)

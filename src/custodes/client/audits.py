"""The audits side of the API: accreditations, the scheme, attestations, decisions.

Writes are signed here with the acting principal's key (``_signer``) and sent with its
token; a refusal raises the node's error, whose ``detail["failures"]`` lists every
failed condition. Reads are public.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    RECOGNITION_TYPE,
    Accreditation,
    AttestationStatus,
    RecognitionDecision,
)
from custodes.client.core import Auth
from custodes.client.ledger import LedgerApi
from custodes.ledger.canonical import canonical_dumps
from custodes.ledger.dsse import Envelope, pae, sign_envelope

__all__ = ["AuditsApi"]

_BASE = "/api/v1/audits"


class AuditsApi(LedgerApi):
    def _signed(self, path: str, payload_type: str, record: BaseModel) -> dict[str, Any]:
        _, key = self._signer()
        envelope = sign_envelope(payload_type, record.model_dump_json().encode(), [key])
        return self._post(path, envelope.to_json())

    def _post(self, path: str, body: Any) -> dict[str, Any]:
        answer: dict[str, Any] = self._json(
            "POST", _BASE + path, content=canonical_dumps(body), auth=Auth.PRINCIPAL
        )
        return answer

    def accredit(self, record: Accreditation) -> dict[str, Any]:
        """Log a grant, suspension, reinstatement or withdrawal (a regulator of the node)."""
        return self._signed("/accreditations", ACCREDITATION_TYPE, record)

    def accreditations(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._json("GET", _BASE + "/accreditations")[
            "accreditations"
        ]
        return answer

    def apply_scheme(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Hand the members' signed scheme document to this node (a regulator of it)."""
        return self._post("/schemes", dict(document))

    def scheme(self) -> dict[str, Any]:
        answer: dict[str, Any] = self._json("GET", _BASE + "/schemes/current")
        return answer

    def attest(self, envelope: Envelope) -> dict[str, Any]:
        """Log an attestation the auditor signed (``custodes.audits.attestation``)."""
        return self._post("/attestations", envelope.to_json())

    def attestation(self, aid: str) -> dict[str, Any]:
        answer: dict[str, Any] = self._json("GET", f"{_BASE}/attestations/{aid}")
        return answer

    def attestations(self, agent_id: str | None = None) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._json(
            "GET", _BASE + "/attestations", params={"agent_id": agent_id}
        )["attestations"]
        return answer

    def countersign(self, aid: str) -> dict[str, Any]:
        """Sign attestation ``aid``'s PAE with this principal's key and send it."""
        _, key = self._signer()
        found = self.attestation(aid)
        payload = base64.b64decode(found["envelope"]["payload"])
        signature = key.sign(pae(found["envelope"]["payloadType"], payload))
        body = {"keyid": signature.keyid, "sig": base64.b64encode(signature.sig).decode()}
        return self._post(f"/attestations/{aid}/countersign", body)

    def withdraw_attestation(self, record: AttestationStatus) -> dict[str, Any]:
        return self._signed(
            f"/attestations/{record.attestation}/withdraw", ATTESTATION_STATUS_TYPE, record
        )

    def check_recognition(self, aid: str, *, automatic: bool = False) -> dict[str, Any]:
        """The dry run: every condition a recognition of ``aid`` here fails now."""
        answer: dict[str, Any] = self._json(
            "POST",
            _BASE + "/recognitions/check",
            content=canonical_dumps({"attestation": aid, "automatic": automatic}),
        )
        return answer

    def decide(self, record: RecognitionDecision) -> dict[str, Any]:
        """Log a recognise, refuse or withdraw (with the VSA for a recognition)."""
        return self._signed("/recognitions", RECOGNITION_TYPE, record)

    def recognitions(self, agent_id: str | None = None) -> dict[str, Any]:
        answer: dict[str, Any] = self._json(
            "GET", _BASE + "/recognitions", params={"agent_id": agent_id}
        )
        return answer

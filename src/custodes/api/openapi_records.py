"""The records and signed payloads a node speaks, as OpenAPI component schemas.

Generated from the pydantic models that validate them (so the document cannot drift
from what the node accepts), plus the hand-written formats no model describes: the DSSE
envelope every signed record travels in and the C2SP checkpoint note. ``PAYLOAD_TYPES``
maps each DSSE ``payloadType`` the node logs to the component its payload must match;
the document carries it as ``x-custodes-payload-types`` on ``DsseEnvelope``.

``EXAMPLES`` gives a filled example of the records a person writes by hand; each is
put on its component (``examples``) and checked against both the component schema and
the model (tests/api/test_openapi.py).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import TypeAdapter

from custodes.audits.models import (
    ACCREDITATION_TYPE,
    ATTESTATION_STATUS_TYPE,
    KILLSWITCH_TEST_TYPE,
    RECOGNITION_TYPE,
    Accreditation,
    AttestationStatus,
    KillswitchTest,
    RecognitionDecision,
)
from custodes.evals.results import DRIFT_ALERT_TYPE, RESULT_TYPE, DriftAlert, EvalResult
from custodes.killswitch.leases import LEASE_REQUEST_TYPE, LEASE_TYPE, LeasePayload, LeaseRequest
from custodes.ledger.payloads import DECISION_TYPE, SIGNER_TYPE, DecisionRecord, SignerRecord
from custodes.registry.models import (
    AgentPrivate,
    AgentRegister,
    KillOrder,
    OperatorPrivate,
    PrincipalRecord,
    RegistryChange,
)
from custodes.registry.private import Opening
from custodes.registry.service import ORDER_TYPE, PRINCIPAL_TYPE, REGISTRY_TYPE

__all__ = [
    "EXAMPLES",
    "EXAMPLE_MODELS",
    "MODELS",
    "PAYLOAD_TYPES",
    "REF",
    "record_schemas",
    "signed_by",
]

REF = "#/components/schemas/{model}"

# Component name -> what validates it. RegistryChange is a union (discriminated by "op").
MODELS: dict[str, Any] = {
    "DecisionRecord": DecisionRecord,
    "SignerRecord": SignerRecord,
    "PrincipalRecord": PrincipalRecord,
    "RegistryChange": RegistryChange,
    "OperatorPrivate": OperatorPrivate,
    "AgentPrivate": AgentPrivate,
    "Opening": Opening,
    "KillOrder": KillOrder,
    "LeaseRequest": LeaseRequest,
    "LeasePayload": LeasePayload,
    "EvalResult": EvalResult,
    "DriftAlert": DriftAlert,
    "Accreditation": Accreditation,
    "AttestationStatus": AttestationStatus,
    "RecognitionDecision": RecognitionDecision,
    "KillswitchTest": KillswitchTest,
}

PAYLOAD_TYPES = {
    DECISION_TYPE: "DecisionRecord",
    SIGNER_TYPE: "SignerRecord",
    PRINCIPAL_TYPE: "PrincipalRecord",
    REGISTRY_TYPE: "RegistryChange",
    ORDER_TYPE: "KillOrder",
    LEASE_REQUEST_TYPE: "LeaseRequest",
    LEASE_TYPE: "LeasePayload",
    RESULT_TYPE: "EvalResult",
    DRIFT_ALERT_TYPE: "DriftAlert",
    ACCREDITATION_TYPE: "Accreditation",
    ATTESTATION_STATUS_TYPE: "AttestationStatus",
    RECOGNITION_TYPE: "RecognitionDecision",
    KILLSWITCH_TEST_TYPE: "KillswitchTest",
}

_SIGNATURE: dict[str, Any] = {
    "title": "DSSE signature",
    "type": "object",
    "required": ["keyid", "sig"],
    "additionalProperties": False,
    "properties": {
        "keyid": {
            "type": "string",
            "minLength": 1,
            "description": "SHA-256 of the raw Ed25519 public key, hex",
        },
        "sig": {"type": "string", "contentEncoding": "base64"},
    },
}

_ENVELOPE: dict[str, Any] = {
    "title": "DSSE envelope",
    "description": "a DSSE v1 envelope as RFC 8785 canonical JSON; payload and sig are "
    "standard padded base64 (the signature is over DSSE's PAE of payloadType and payload); "
    "at most 65,535 bytes. x-custodes-payload-types names the schema of each payloadType's "
    "decoded payload.",
    "type": "object",
    "required": ["payload", "payloadType", "signatures"],
    "additionalProperties": False,
    "properties": {
        "payload": {"type": "string", "contentEncoding": "base64"},
        "payloadType": {"type": "string", "minLength": 1},
        "signatures": {
            "type": "array",
            "minItems": 1,
            "maxItems": 16,
            "items": {"$ref": REF.format(model="DsseSignature")},
        },
    },
}

_CHECKPOINT: dict[str, Any] = {
    "title": "Checkpoint",
    "type": "string",
    "description": "a C2SP tlog-checkpoint signed note: the origin line, the tree size "
    "(decimal), the root hash (base64), an empty line, then one signature line per signer "
    "('— <key name> <base64 key hash and signature>'): the log's own, then the witnesses' "
    "cosignatures (C2SP tlog-cosignature)",
    "examples": [
        "gb.custodes.demo/log\n42\nq8I2mN1vYwP8u0eK6Qe7r6Yb0cQWc0y8L3E6mJ1h4lA=\n\n"
        "— gb.custodes.demo/log Az3gR4nqTQ2...\n"
    ],
}


def record_schemas() -> dict[str, Any]:
    """Every record's component schema, keyed by component name."""
    mode: Literal["validation"] = "validation"
    adapters = [(name, mode, TypeAdapter(model)) for name, model in MODELS.items()]
    tops, defs = TypeAdapter.json_schemas(adapters, ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    for (name, _mode), schema in tops.items():
        if "$ref" not in schema:  # a union: its schema is inline
            schemas[name] = {"title": name, **schema}
    for name, examples in EXAMPLES.items():
        schemas[name] = {**schemas[name], "examples": examples}
    envelope = {**_ENVELOPE, "x-custodes-payload-types": _payload_refs()}
    return {
        **schemas,
        "DsseEnvelope": envelope,
        "DsseSignature": _SIGNATURE,
        "Checkpoint": _CHECKPOINT,
    }


def _payload_refs() -> dict[str, Any]:
    return {kind: {"$ref": REF.format(model=name)} for kind, name in PAYLOAD_TYPES.items()}


def signed_by(payload_type: str, signer: str) -> dict[str, Any]:
    """The schema of a DSSE envelope carrying ``payload_type``, signed by ``signer``."""
    component = PAYLOAD_TYPES[payload_type]
    return {
        "allOf": [{"$ref": REF.format(model="DsseEnvelope")}],
        "description": f"a DSSE envelope, payloadType {payload_type}, signed by {signer}; "
        f"its payload is a {component} as JSON",
        "properties": {
            "payloadType": {"const": payload_type},
            "payload": {
                "contentEncoding": "base64",
                "contentMediaType": "application/json",
                "contentSchema": {"$ref": REF.format(model=component)},
            },
        },
    }


_AT = "2026-03-01T09:30:00Z"
_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # raw Ed25519 public key, base64

EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "PrincipalRecord": [
        {
            "v": 1,
            "id": "regulator:gb-aisi",
            "role": "regulator",
            "jurisdiction": "GB",
            "name": "GB AI Security Institute",
            "public_key": _KEY,
        }
    ],
    "DecisionRecord": [
        {
            "v": 1,
            "agent": "urn:custodes:gb:agent:atlas-trader",
            "action": "buy 40 MWh baseload futures",
            "rationale": "hedge exposure flagged by the risk model",
            "counterparties": ["urn:custodes:fr:agent:mistral-broker"],
            "jurisdiction": "GB",
            "decided_at": _AT,
            "idempotency_key": "atlas-2026-03-01-0001",
        }
    ],
    "KillOrder": [
        {
            "v": 1,
            "op": "suspend",
            "order_id": "gb-order-0001",
            "agent_id": "urn:custodes:gb:agent:atlas-trader",
            "scope": "global",
            "reason": "suspected runaway trading loop",
            "actor": "regulator:gb-aisi",
            "at": _AT,
        }
    ],
    "LeaseRequest": [
        {
            "v": 1,
            "agent_id": "urn:custodes:gb:agent:atlas-trader",
            "nonce": "5f0c6e1a9b7d4c3e2f1a0b9c8d7e6f50",
            "at": 1772357400,
        }
    ],
    "AgentRegister": [
        {
            "v": 1,
            "op": "agent.register",
            "actor": "operator:gb-ops",
            "at": _AT,
            "agent": {
                "id": "urn:custodes:gb:agent:atlas-trader",
                "name": "Atlas trader",
                "version": "1.4.0",
                "operator": "operator:gb-ops",
                "home_jurisdiction": "GB",
                "operating_jurisdictions": ["FR", "DE"],
                "sector": "finance",
                "risk_tier": "high",
                "autonomy_level": 3,
                "intended_purpose": "hedges energy exposure on regulated exchanges",
                "skills": [{"id": "hedge", "name": "Hedge energy exposure", "tags": ["trading"]}],
            },
            "keys": [_KEY],
        }
    ],
}

# What validates each example: its component's model, or the union member it is.
EXAMPLE_MODELS: dict[str, Any] = {**MODELS, "AgentRegister": AgentRegister}

"""Registry records and the signed changes that create them (DESIGN.md 4.2).

Fields are drawn from EU AI Act Annex VIII, NANDA AgentFacts and the A2A AgentCard.
Every record is written by a versioned change (``v``: 1) in a DSSE envelope signed by
the acting party; the tables are projections of those changes.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AGENT_ID",
    "CRITICAL_SECTORS",
    "OPERATOR_ID",
    "REGULATED_AGENT_FIELDS",
    "SELECTOR_FIELDS",
    "AgentChanges",
    "AgentPrivate",
    "AgentRecord",
    "AgentRegister",
    "AgentRotateKey",
    "AgentUpdate",
    "Aliases",
    "Contact",
    "Interface",
    "KillOrder",
    "ModelRecord",
    "ModelRegister",
    "ModelRetire",
    "ModelUpdate",
    "OperatorPrivate",
    "OperatorRecord",
    "OperatorRegister",
    "OperatorUpdate",
    "PrincipalRecord",
    "RegistryChange",
    "Selector",
    "Skill",
    "new_kill_order",
    "new_order_id",
]

CRITICAL_SECTORS = frozenset({"finance", "energy"})
AGENT_ID = r"^urn:custodes:[a-z]{2}:agent:[a-z0-9][a-z0-9-]{0,62}$"
JURISDICTION = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
OPERATOR_ID = r"^operator:[a-z0-9][a-z0-9-]{0,62}$"
# A salted commitment to a record's private fields (see custodes.registry.private).
COMMITMENT = Annotated[str, Field(pattern=r"^sha256:[0-9a-f]{64}$")]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=4096)


class Contact(_Record):
    name: str = Field(min_length=1, max_length=256)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", max_length=256)
    phone: str = Field(min_length=3, max_length=64)


class Skill(_Record):
    id: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=256)
    tags: tuple[str, ...] = ()


class Interface(_Record):
    url: str = Field(min_length=1, max_length=2048)
    binding: str = Field(min_length=1, max_length=256)  # A2A bindings may be URIs
    version: str | None = None


class Aliases(_Record):
    a2a_card_url: str | None = None
    mcp_name: str | None = None
    spiffe_id: str | None = None
    otel_agent_id: str | None = None


class PrincipalRecord(_Record):
    """A regulator, auditor, operator or researcher known to this node, with its signing
    key. A researcher (a red-teamer) reports vulnerabilities to the red-teaming
    repository (custodes.redteam) and reads what is disclosed to its party."""

    v: Literal[1] = 1
    id: str = Field(pattern=r"^(regulator|auditor|operator|researcher):[a-z0-9][a-z0-9-]{0,62}$")
    role: Literal["regulator", "auditor", "operator", "researcher"]
    jurisdiction: JURISDICTION
    name: str = Field(min_length=1, max_length=256)
    public_key: str = Field(min_length=44, max_length=44)


class OperatorRecord(_Record):
    """A provider or deployer (Annex VIII 1-3): who answers for an agent, around the clock.

    ``address`` and ``contact`` are private: a logged change carries only ``private``, a
    salted commitment to them, and the clear text travels beside it (custodes.registry.private).
    """

    id: str = Field(pattern=OPERATOR_ID)
    legal_name: str = Field(min_length=1, max_length=256)
    kind: Literal["provider", "deployer", "provider-deployer"]
    jurisdiction: JURISDICTION
    address: str | None = Field(default=None, min_length=1, max_length=1024)
    contact: Contact | None = None
    private: COMMITMENT | None = None


class OperatorPrivate(_Record):
    """An operator's private fields: required, and never logged in clear."""

    address: str = Field(min_length=1, max_length=1024)
    contact: Contact


class AgentPrivate(_Record):
    """An agent's private fields (its own accountable contact), never logged in clear."""

    contact: Contact


class ModelRecord(_Record):
    id: str = Field(pattern=r"^model:[a-z0-9][a-z0-9.-]{0,62}$")
    provider: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=256)
    version: str = Field(min_length=1, max_length=64)
    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    training_compute_flop: float = Field(ge=0)
    # The operator answering for the model; it defaults to the operator registering it,
    # who alone (with its home regulator) may then change or retire it.
    operator: str | None = Field(default=None, pattern=OPERATOR_ID)


class AgentRecord(_Record):
    id: str = Field(pattern=AGENT_ID)
    name: str = Field(min_length=1, max_length=256)
    version: str = Field(min_length=1, max_length=64)
    operator: str = Field(pattern=OPERATOR_ID)
    deployer: str | None = None
    contact: Contact | None = None  # private; defaults to the operator's 24/7 contact
    home_jurisdiction: JURISDICTION
    operating_jurisdictions: tuple[JURISDICTION, ...] = ()
    sector: str = Field(min_length=1, max_length=64)
    risk_tier: Literal["minimal", "limited", "high", "critical"]
    autonomy_level: int = Field(ge=0, le=5)
    intended_purpose: str = Field(min_length=1, max_length=4096)
    skills: tuple[Skill, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    aliases: Aliases = Aliases()
    model: str | None = None
    private: COMMITMENT | None = None  # commits to the contact, which is never logged

    @property
    def critical(self) -> bool:
        return self.sector in CRITICAL_SECTORS or self.risk_tier == "critical"


class AgentChanges(_Record):
    """The mutable part of an agent record; only the fields given change."""

    name: str | None = None
    version: str | None = None
    contact: Contact | None = None
    operating_jurisdictions: tuple[JURISDICTION, ...] | None = None
    risk_tier: Literal["minimal", "limited", "high", "critical"] | None = None
    autonomy_level: int | None = Field(default=None, ge=0, le=5)
    intended_purpose: str | None = None
    skills: tuple[Skill, ...] | None = None
    interfaces: tuple[Interface, ...] | None = None
    aliases: Aliases | None = None
    model: str | None = None
    private: COMMITMENT | None = None  # a new contact, committed (replaces the old one)


# Fields only the agent's home regulator changes once the agent is registered: they set
# how closely it is watched (lease lifetime, autonomy) and where host regulators act.
REGULATED_AGENT_FIELDS = frozenset({"risk_tier", "operating_jurisdictions", "autonomy_level"})


class _Change(_Record):
    v: Literal[1] = 1
    actor: str = Field(min_length=1, max_length=256)
    at: datetime


class OperatorRegister(_Change):
    op: Literal["operator.register"] = "operator.register"
    operator: OperatorRecord


class OperatorUpdate(_Change):
    op: Literal["operator.update"] = "operator.update"
    operator: OperatorRecord


class AgentRegister(_Change):
    op: Literal["agent.register"] = "agent.register"
    agent: AgentRecord
    keys: tuple[str, ...] = Field(min_length=1, max_length=8)  # raw Ed25519 keys, base64
    agent_card: dict[str, object] | None = None  # a signed A2A AgentCard, verified
    agent_card_keys: dict[str, dict[str, object]] | None = None  # JWKs by kid


class AgentUpdate(_Change):
    op: Literal["agent.update"] = "agent.update"
    agent_id: str = Field(pattern=AGENT_ID)
    changes: AgentChanges


class AgentRotateKey(_Change):
    op: Literal["agent.rotate_key"] = "agent.rotate_key"
    agent_id: str = Field(pattern=AGENT_ID)
    add: tuple[str, ...] = Field(default=(), max_length=8)
    retire: tuple[str, ...] = Field(default=(), max_length=8)


class ModelRegister(_Change):
    op: Literal["model.register"] = "model.register"
    model: ModelRecord


class ModelUpdate(_Change):
    """Correct a model's record (its holder or the home regulator; the id stays)."""

    op: Literal["model.update"] = "model.update"
    model: ModelRecord


class ModelRetire(_Change):
    op: Literal["model.retire"] = "model.retire"
    model_id: str = Field(pattern=r"^model:[a-z0-9][a-z0-9.-]{0,62}$")
    reason: str = Field(min_length=1, max_length=2048)


class Selector(_Record):
    """Which agents one order covers: every agent matching all the fields given (AND).

    ``jurisdiction`` matches an agent's home or any of its operating jurisdictions (the
    "sector in a territory" of a market regulator's circuit breaker); ``model`` the id of
    the model an agent names; ``model_version`` the version of that model's registered
    record; ``skill`` a skill id. The set is resolved once, against the registry as it
    stands at the order's log index (docs/design/0013-kill-switch-at-scale.md).
    """

    operator: str | None = Field(default=None, pattern=OPERATOR_ID)
    sector: str | None = Field(default=None, min_length=1, max_length=64)
    jurisdiction: JURISDICTION | None = None
    model: str | None = Field(default=None, pattern=r"^model:[a-z0-9][a-z0-9.-]{0,62}$")
    model_version: str | None = Field(default=None, min_length=1, max_length=64)
    skill: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _not_empty(self) -> Selector:
        if not self.model_dump(exclude_none=True):
            raise ValueError("a selector names at least one of " + ", ".join(SELECTOR_FIELDS))
        return self


SELECTOR_FIELDS = ("operator", "sector", "jurisdiction", "model", "model_version", "skill")


class KillOrder(_Record):
    """Suspend or revoke an agent, or every agent a selector matches (globally or in one
    territory), or lift an order.

    A suspend or revoke names exactly one of ``agent_id`` and ``selector``. A reinstate
    names the order it ``lifts`` and, when that order named one agent, the same agent.
    """

    v: Literal[1] = 1
    op: Literal["suspend", "revoke", "reinstate"]
    order_id: str = Field(pattern=r"^[A-Za-z0-9_-]{8,64}$")
    agent_id: str | None = Field(default=None, pattern=AGENT_ID)
    selector: Selector | None = None
    scope: Literal["global", "territorial"] = "global"
    territory: JURISDICTION | None = None
    reason: str = Field(min_length=1, max_length=2048)
    actor: str = Field(min_length=1, max_length=256)
    at: datetime
    lifts: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> KillOrder:
        if (self.scope == "territorial") != (self.territory is not None):
            raise ValueError("a territorial order names its territory; a global one does not")
        if (self.op == "reinstate") != (self.lifts is not None):
            raise ValueError("a reinstate order names the order it lifts (and only it does)")
        if self.op == "reinstate" and self.selector is not None:
            raise ValueError("a reinstate order names no selector: it lifts the whole order")
        if self.op != "reinstate" and (self.agent_id is None) == (self.selector is None):
            raise ValueError("an order names exactly one of agent_id and selector")
        return self


def new_order_id() -> str:
    """A fresh kill order id: 96 random bits, hex."""
    return secrets.token_hex(12)


def new_kill_order(
    op: str,
    agent_id: str | None,
    reason: str,
    actor: str,
    *,
    territory: str | None = None,
    lifts: str | None = None,
    selector: Selector | None = None,
    order_id: str | None = None,
) -> KillOrder:
    """A fresh order as every issuer builds it (client, CLI, dashboard): a random id
    unless ``order_id`` names the one a retry repeats, issued now, territorial exactly
    when a territory is named. Raises ValidationError."""
    return KillOrder.model_validate(
        {
            "op": op,
            "order_id": order_id or new_order_id(),
            "agent_id": agent_id,
            "selector": selector,
            "scope": "territorial" if territory else "global",
            "territory": territory,
            "reason": reason,
            "actor": actor,
            "at": datetime.now(UTC),
            "lifts": lifts,
        }
    )


RegistryChange = Annotated[
    OperatorRegister
    | OperatorUpdate
    | AgentRegister
    | AgentUpdate
    | AgentRotateKey
    | ModelRegister
    | ModelUpdate
    | ModelRetire,
    Field(discriminator="op"),
]

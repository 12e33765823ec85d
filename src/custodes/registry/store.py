"""Registry tables: projections of principal, registry, order and decision entries.

All but ``api_tokens`` and ``private_fields`` are rebuilt by replaying the log
(``custodes registry rebuild``); tokens are credentials, not state, and are never logged;
private fields are logged only as salted commitments, so the log cannot restore them
(docs/design/0008-private-fields.md).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Float, Index, String, Table, Text

from custodes.store.db import metadata

__all__ = [
    "PROJECTION_TABLES",
    "agent_cards",
    "agent_jurisdictions",
    "agent_skills",
    "agents",
    "api_tokens",
    "key_events",
    "kill_order_agents",
    "kill_orders",
    "models",
    "operators",
    "principals",
    "private_fields",
    "record_versions",
    "ui_sessions",
]

principals = Table(
    "principals",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("jurisdiction", String(2), nullable=False),
    Column("name", String(256), nullable=False),
    Column("keyid", String(64), nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)
api_tokens = Table(
    "api_tokens",
    metadata,
    Column("token_id", String(32), primary_key=True),
    Column("principal_id", String(128), nullable=False, index=True),
    Column("secret_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Column("created_at", Float, nullable=False),
)
# Dashboard sign-ins (custodes.registry.sessions): a session stands on one API token and
# ends with it; only the session secret's hash is kept.
ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("secret_hash", String(64), primary_key=True),
    Column("token_id", String(32), nullable=False, index=True),
    Column("principal_id", String(128), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("ended_at", Float, nullable=True),
)
operators = Table(
    "operators",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("jurisdiction", String(2), nullable=False),
    Column("record", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)
agents = Table(
    "agents",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("operator", String(128), nullable=False, index=True),
    Column("home", String(2), nullable=False),
    Column("sector", String(64), nullable=False, index=True),
    # The model the agent names (a selector column: "every agent on model X").
    Column("model", String(128), nullable=True, index=True),
    Column("status", String(16), nullable=False),  # indexed with id, below
    Column("record", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
    Column("created_index", BigInteger, nullable=False),
)
agent_jurisdictions = Table(
    "agent_jurisdictions",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("jurisdiction", String(2), primary_key=True, index=True),
)
agent_skills = Table(
    "agent_skills",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("skill", String(128), primary_key=True, index=True),
)
models = Table(
    "models",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("record", Text, nullable=False),
    Column("entry_index", BigInteger, nullable=False),
    # The principal holding the model (its operator) and whether it is retired.
    Column("holder", String(128), nullable=False, server_default=""),
    Column("status", String(16), nullable=False, server_default="active"),
)
key_events = Table(
    "key_events",
    metadata,
    Column("entry_index", BigInteger, primary_key=True),
    Column("keyid", String(64), primary_key=True),
    Column("agent_id", String(128), nullable=False, index=True),
    Column("event", String(16), nullable=False),
)
# Indexes serving "filter, then order by id" searches without sorting every match.
Index("ix_agents_sector_id", agents.c.sector, agents.c.id)
Index("ix_agents_status_id", agents.c.status, agents.c.id)
Index("ix_agents_operator_id", agents.c.operator, agents.c.id)
kill_orders = Table(
    "kill_orders",
    metadata,
    Column("order_id", String(64), primary_key=True),
    # One agent's order names it; a selector order names none and keeps its selector
    # (canonical JSON) here, its resolved agents in kill_order_agents.
    Column("agent_id", String(128), nullable=True, index=True),
    Column("selector", Text, nullable=True),
    Column("op", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("territory", String(2), nullable=True),
    Column("reason", Text, nullable=False),
    Column("authority", String(128), nullable=False),
    Column("status", String(16), nullable=False),
    Column("issued_index", BigInteger, nullable=False),
    Column("lifted_index", BigInteger, nullable=True),
)
# The agents a selector order covers, fixed at the order's log index (a replay resolves
# the selector against the same state and finds the same set).
kill_order_agents = Table(
    "kill_order_agents",
    metadata,
    Column("order_id", String(64), primary_key=True),
    Column("agent_id", String(128), primary_key=True, index=True),
)
record_versions = Table(
    "record_versions",
    metadata,
    Column("kind", String(16), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("entry_index", BigInteger, primary_key=True),
    Column("record", Text, nullable=False),
)

# The clear text behind each commitment in a registry entry, never logged; served only to
# the principals entitled to it (authority.READ_TABLE). Erasing a row keeps proofs valid.
private_fields = Table(
    "private_fields",
    metadata,
    Column("commitment", String(71), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("record_id", String(128), nullable=False, index=True),
    Column("entry_index", BigInteger, nullable=False),
    Column("salt", String(128), nullable=False),
    Column("fields", Text, nullable=False),
)

# The digest of the AgentCard an agent registered with (``custodes.registry.cards``):
# what an audit attestation's subject must match (custodes.audits).
agent_cards = Table(
    "agent_cards",
    metadata,
    Column("agent_id", String(128), primary_key=True),
    Column("digest", String(71), nullable=False),
    Column("entry_index", BigInteger, nullable=False),
)

PROJECTION_TABLES = (
    "signers",
    "principals",
    "operators",
    "agents",
    "agent_jurisdictions",
    "agent_skills",
    "models",
    "key_events",
    "kill_orders",
    "kill_order_agents",
    "record_versions",
    "idempotency",
    "agent_cards",
)

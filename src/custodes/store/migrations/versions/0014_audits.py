"""Audits and mutual recognition (issue 10): accreditations, the common scheme's
versions, audit attestations, recognition decisions, kill-switch conformance tests,
drift alerts on live agents, and each agent's registered AgentCard digest. All
projections of log entries; see custodes.audits.store and docs/design/0028.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    op.create_table(
        "accreditations",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("jurisdiction", sa.String(2), nullable=False),
        sa.Column("auditor", sa.String(128), nullable=False),
        sa.Column("auditor_keyid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("valid_until", sa.Float, nullable=False),
        sa.Column("grant", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("updated_index", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_accreditations_auditor", "accreditations", ["auditor"])
    op.create_table(
        "audit_schemes",
        sa.Column("scheme_id", sa.String(128), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "attestations",
        sa.Column("id", sa.String(71), primary_key=True),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("auditor", sa.String(128), nullable=False),
        sa.Column("accreditation", sa.String(80), nullable=False),
        sa.Column("scheme_id", sa.String(128), nullable=False),
        sa.Column("scheme_version", sa.Integer, nullable=False),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("model_digest", sa.String(71), nullable=True),
        sa.Column("card_digest", sa.String(71), nullable=True),
        sa.Column("expires", sa.Float, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("envelope", sa.Text, nullable=False),
        sa.Column("signatures", sa.Integer, nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("updated_index", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_attestations_agent_id", "attestations", ["agent_id"])
    op.create_table(
        "recognitions",
        sa.Column("jurisdiction", sa.String(2), primary_key=True),
        sa.Column("attestation", sa.String(71), primary_key=True),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("sector", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model_digest", sa.String(71), nullable=True),
        sa.Column("card_digest", sa.String(71), nullable=True),
        sa.Column("valid_until", sa.Float, nullable=True),
        sa.Column("automatic", sa.Boolean, nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_recognitions_agent_id", "recognitions", ["agent_id"])
    op.create_table(
        "killswitch_tests",
        sa.Column("test_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_killswitch_tests_agent_id", "killswitch_tests", ["agent_id"])
    op.create_table(
        "agent_alerts",
        sa.Column("entry_index", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("detected_at", sa.Float, nullable=False),
        sa.Column("issuer", sa.String(256), nullable=True),
        sa.Column("leaf_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_agent_alerts_agent_id", "agent_alerts", ["agent_id"])
    op.create_table(
        "agent_cards",
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("agent_cards")
    op.drop_index("ix_agent_alerts_agent_id", table_name="agent_alerts")
    op.drop_table("agent_alerts")
    op.drop_index("ix_killswitch_tests_agent_id", table_name="killswitch_tests")
    op.drop_table("killswitch_tests")
    op.drop_index("ix_recognitions_agent_id", table_name="recognitions")
    op.drop_table("recognitions")
    op.drop_index("ix_attestations_agent_id", table_name="attestations")
    op.drop_table("attestations")
    op.drop_table("audit_schemes")
    op.drop_index("ix_accreditations_auditor", table_name="accreditations")
    op.drop_table("accreditations")

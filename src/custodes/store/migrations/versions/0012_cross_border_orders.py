"""Cross-border kill orders (docs/design/0026): the sender's outbox of forwarded orders
and the home's inbox that makes each forward take effect once.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"


def upgrade() -> None:
    op.create_table(
        "order_outbox",
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("recipient", sa.String(2), nullable=False),
        sa.Column("issuer", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("agent_id", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt", sa.Float, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("answered_at", sa.Float, nullable=True),
        sa.Column("answer_status", sa.Integer, nullable=True),
        sa.Column("answer", sa.Text, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_order_outbox_state_next", "order_outbox", ["state", "next_attempt"])
    op.create_table(
        "order_inbox",
        sa.Column("sender", sa.String(2), primary_key=True),
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("order_inbox")
    op.drop_index("ix_order_outbox_state_next", "order_outbox")
    op.drop_table("order_outbox")

"""Kill orders by selector: an order may name a selector instead of one agent, the agents
it covers are kept in ``kill_order_agents``, and agents carry the model they name (a
selector column), backfilled from their records. The status-only index on agents goes
(the (status, id) index serves the same look-ups).

Revision ID: 0007
Revises: 0006
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    with op.batch_alter_table("kill_orders") as batch:
        batch.alter_column("agent_id", existing_type=sa.String(128), nullable=True)
        batch.add_column(sa.Column("selector", sa.Text, nullable=True))
    op.create_table(
        "kill_order_agents",
        sa.Column("order_id", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_kill_order_agents_agent_id", "kill_order_agents", ["agent_id"])
    with op.batch_alter_table("agents") as batch:
        batch.add_column(sa.Column("model", sa.String(128), nullable=True))
    op.create_index("ix_agents_model", "agents", ["model"])
    # (status, id) serves every look-up by status; the status-only index only made each
    # status change (10,000 of them for one selector order) update one more index.
    op.drop_index("ix_agents_status", "agents")
    _backfill_models()


def _backfill_models() -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.text("SELECT id, record FROM agents")).all()
    for agent_id, record in rows:
        model = json.loads(record).get("model")
        if model is not None:
            conn.execute(
                sa.text("UPDATE agents SET model = :m WHERE id = :i"), {"m": model, "i": agent_id}
            )


def downgrade() -> None:
    op.create_index("ix_agents_status", "agents", ["status"])
    op.drop_index("ix_agents_model", "agents")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("model")
    op.drop_index("ix_kill_order_agents_agent_id", "kill_order_agents")
    op.drop_table("kill_order_agents")
    op.execute("DELETE FROM kill_orders WHERE agent_id IS NULL")
    with op.batch_alter_table("kill_orders") as batch:
        batch.drop_column("selector")
        batch.alter_column("agent_id", existing_type=sa.String(128), nullable=False)

"""Split views (issue 9): ``seen_checkpoints`` keeps every origin's newest checkpoint this
node has seen, verbatim with its cosignatures; ``split_alerts`` keeps each proved split
view (the evidence bundle, the entry that logged it, its resolution). See
custodes.federation.views and docs/design/0027.

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"


def upgrade() -> None:
    op.create_table(
        "seen_checkpoints",
        sa.Column("origin", sa.String(300), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("root", sa.LargeBinary, nullable=False),
        sa.Column("note", sa.LargeBinary, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_table(
        "split_alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("origin", sa.String(300), nullable=False),
        sa.Column("pair_key", sa.String(64), nullable=False, unique=True),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("resolved_at", sa.Float, nullable=True),
        sa.Column("resolution", sa.Text, nullable=True),
        sa.Column("resolution_index", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_split_alerts_origin", "split_alerts", ["origin"])


def downgrade() -> None:
    op.drop_index("ix_split_alerts_origin", table_name="split_alerts")
    op.drop_table("split_alerts")
    op.drop_table("seen_checkpoints")

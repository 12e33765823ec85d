"""The alliance roster on the node: every applied version, with the log index of its entry.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_table(
        "roster_versions",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("roster_versions")

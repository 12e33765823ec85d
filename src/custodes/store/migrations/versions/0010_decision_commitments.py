"""Decision commitments: the clear records and salts beside the log, and their erasure.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"

# As BigId in custodes.store.db: on SQLite an INTEGER PRIMARY KEY is the rowid alias.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "decision_openings",
        sa.Column("idx", _BIG_ID, primary_key=True, autoincrement=False),
        sa.Column("commitment", sa.String(71), nullable=False),
        sa.Column("salt", sa.String(128), nullable=True),
        sa.Column("record", sa.Text, nullable=True),
        sa.Column("erased_index", sa.BigInteger, nullable=True),
        sa.Column("erased_by", sa.String(256), nullable=True),
        sa.Column("erased_at", sa.Float, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("decision_openings")

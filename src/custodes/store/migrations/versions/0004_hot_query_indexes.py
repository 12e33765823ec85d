"""An index on idempotency keys alone, so the sequencer's look-up of a commit's keys is
one index seek per key (SQLite scanned the whole table for a row-value IN).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_index("ix_idempotency_key", "idempotency", ["key"])

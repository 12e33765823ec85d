"""Placeholder for issue 9: decision commitments (clear records beside the log, erasures).

Revision ID: 0010
Revises: 0009
"""

revision = "0010"
down_revision = "0009"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass

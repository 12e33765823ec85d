"""The newest lease granted to each agent (issue 12: the agent's lease state on its
page and at GET /api/v1/agents/{id}/lease). See custodes.killswitch.leases.

Revision ID: 0017
Revises: 0016
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"


def upgrade() -> None:
    op.create_table(
        "lease_grants",
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("lease_id", sa.String(32), nullable=False),
        sa.Column("keyid", sa.String(128), nullable=False),
        sa.Column("jurisdictions", sa.String(512), nullable=False),
        sa.Column("nbf", sa.BigInteger, nullable=False),
        sa.Column("exp", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("lease_grants")

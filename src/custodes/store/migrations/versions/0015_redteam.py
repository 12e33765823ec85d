"""The red-teaming repository (issue 11): act openings beside the log, disclosures and
per-agent exposures, the TAXII object store with its status resources, and how far
each peer's objects have been pulled. See custodes.redteam.store and docs/design/0029.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"

# As BigId in custodes.store.db: on SQLite an INTEGER PRIMARY KEY is the rowid alias.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "redteam_openings",
        sa.Column("idx", _BIG_ID, primary_key=True, autoincrement=False),
        sa.Column("disclosure", sa.String(64), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("content", sa.String(71), nullable=False),
        sa.Column("salt", sa.String(128), nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_index("ix_redteam_openings_disclosure", "redteam_openings", ["disclosure"])
    op.create_table(
        "redteam_disclosures",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("origin", sa.String(2), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("tlp", sa.String(16), nullable=False),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("severity", sa.String(16), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("reporter", sa.String(256), nullable=True),
        sa.Column("embargo_until", sa.Float, nullable=True),
        sa.Column("report", sa.Text, nullable=False),
        sa.Column("triage", sa.Text, nullable=True),
        sa.Column("disclose", sa.Text, nullable=True),
        sa.Column("summary", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "redteam_exposures",
        sa.Column("disclosure", sa.String(64), primary_key=True),
        sa.Column("agent_id", sa.String(128), primary_key=True),
        sa.Column("home", sa.String(2), nullable=False),
        sa.Column("operator", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("evidence", sa.Text, nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_redteam_exposures_operator", "redteam_exposures", ["operator"])
    op.create_index("ix_redteam_exposures_agent", "redteam_exposures", ["agent_id"])
    op.create_table(
        "stix_objects",
        sa.Column("seq", _BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("modified", sa.String(32), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("spec_version", sa.String(8), nullable=False),
        sa.Column("date_added", sa.Float, nullable=False),
        sa.Column("owner", sa.String(2), nullable=False),
        sa.Column("disclosure", sa.String(64), nullable=True),
        sa.Column("audience", sa.Text, nullable=False),
        sa.Column("object", sa.Text, nullable=False),
        sa.UniqueConstraint("id", "modified", name="uq_stix_objects_version"),
    )
    op.create_index("ix_stix_objects_id", "stix_objects", ["id"])
    op.create_index("ix_stix_objects_type", "stix_objects", ["type"])
    op.create_index("ix_stix_objects_date_added", "stix_objects", ["date_added"])
    op.create_index("ix_stix_objects_owner_seq", "stix_objects", ["owner", "seq"])
    op.create_table(
        "taxii_status",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("principal", sa.String(256), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
    )
    op.create_table(
        "redteam_sync",
        sa.Column("party", sa.String(2), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("redteam_sync")
    op.drop_table("taxii_status")
    for name in ("owner_seq", "date_added", "type", "id"):
        op.drop_index(f"ix_stix_objects_{name}", table_name="stix_objects")
    op.drop_table("stix_objects")
    op.drop_index("ix_redteam_exposures_agent", table_name="redteam_exposures")
    op.drop_index("ix_redteam_exposures_operator", table_name="redteam_exposures")
    op.drop_table("redteam_exposures")
    op.drop_index("ix_redteam_openings_disclosure", table_name="redteam_openings")
    op.drop_table("redteam_openings")
    op.drop_table("redteam_disclosures")

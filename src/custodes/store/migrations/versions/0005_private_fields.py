"""Private fields beside the log (clear text behind registry commitments), and models
bound to the principal holding them, with a status (active or retired).

Revision ID: 0005
Revises: 0004
"""

import base64
import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "private_fields",
        sa.Column("commitment", sa.String(71), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("record_id", sa.String(128), nullable=False),
        sa.Column("entry_index", sa.BigInteger, nullable=False),
        sa.Column("salt", sa.String(128), nullable=False),
        sa.Column("fields", sa.Text, nullable=False),
    )
    op.create_index("ix_private_fields_record_id", "private_fields", ["record_id"])
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("holder", sa.String(128), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("status", sa.String(16), nullable=False, server_default="active")
        )
    _backfill_holders()


def _backfill_holders() -> None:
    # A model is held by the operator it names, else by whoever registered it: the
    # actor of the entry that wrote it, as a replay of the log would find.
    conn = op.get_bind()
    rows = conn.execute(
        sa.text(
            "SELECT m.id, m.record, e.data FROM models m JOIN entries e ON e.idx = m.entry_index"
        )
    ).all()
    for model_id, record, data in rows:
        payload = json.loads(base64.b64decode(json.loads(bytes(data))["payload"]))
        holder = json.loads(record).get("operator") or payload.get("actor", "")
        conn.execute(
            sa.text("UPDATE models SET holder = :h WHERE id = :i"), {"h": holder, "i": model_id}
        )


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("status")
        batch.drop_column("holder")
    op.drop_index("ix_private_fields_record_id", "private_fields")
    op.drop_table("private_fields")

"""Results published once: ``eval_published`` keys each logged ``EvalResult`` by (issuer,
run_id, epoch), with its log index and content digest; the node writes the row in the
transaction that sequences the result and refuses a second one for the same key. Results
already in the log are backfilled here (the first of any duplicates wins).

Revision ID: 0008
Revises: 0007
"""

import base64
import json

import sqlalchemy as sa
from alembic import op

# The digest is the node's own reading of the record: the current code computes it.
from custodes.evals.index import published_row
from custodes.evals.results import EvalResult

revision = "0008"
down_revision = "0007"
_RESULT_TYPE = "application/vnd.custodes.eval-result+json"


def upgrade() -> None:
    table = op.create_table(
        "eval_published",
        sa.Column("issuer", sa.String(256), primary_key=True),
        sa.Column("run_id", sa.String(128), primary_key=True),
        sa.Column("epoch", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("idx", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
    )
    _backfill(table)


def _backfill(table: sa.Table) -> None:
    conn = op.get_bind()
    query = sa.text("SELECT idx, data FROM entries WHERE payload_type = :t ORDER BY idx")
    rows: dict[tuple[object, ...], dict[str, object]] = {}
    for idx, data in conn.execute(query, {"t": _RESULT_TYPE}):
        try:
            payload = base64.b64decode(json.loads(bytes(data))["payload"])
            row = published_row(int(idx), EvalResult.model_validate_json(payload))
        except (ValueError, KeyError):  # unparseable: the audit reports it, not this
            continue
        rows.setdefault((row["issuer"], row["run_id"], row["epoch"]), row)
    if rows:
        op.bulk_insert(table, list(rows.values()))


def downgrade() -> None:
    op.drop_table("eval_published")

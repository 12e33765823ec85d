"""Read indexes over the integrated log: decisions by agent and time, evaluation results
by agent and suite, and each index's watermark (the tree size it covers).

The indexes start empty at watermark 0: the node fills them from the log in the
background once it starts, and every read catches them up first (the backfill of an
existing log is that first catch-up; docs/design/0009-read-side.md).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
# As BigId in custodes.store.db: on SQLite an INTEGER PRIMARY KEY is the rowid alias.
_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    state = op.create_table(
        "read_index_state",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "decision_index",
        sa.Column("idx", _BIG_ID, primary_key=True, autoincrement=False),
        sa.Column("agent_id", sa.String(256), nullable=False),
        sa.Column("decided_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_decision_index_agent_time", "decision_index", ["agent_id", "decided_at"])
    op.create_table(
        "eval_index",
        sa.Column("idx", _BIG_ID, primary_key=True, autoincrement=False),
        sa.Column("agent_id", sa.String(256), nullable=True),
        sa.Column("suite", sa.String(256), nullable=False),
        sa.Column("finished_at", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_eval_index_agent", "eval_index", ["agent_id", "idx"])
    op.create_index("ix_eval_index_suite", "eval_index", ["suite", "idx"])
    op.bulk_insert(state, [{"name": "decisions", "size": 0}, {"name": "eval_results", "size": 0}])


def downgrade() -> None:
    op.drop_index("ix_eval_index_suite", "eval_index")
    op.drop_index("ix_eval_index_agent", "eval_index")
    op.drop_table("eval_index")
    op.drop_index("ix_decision_index_agent_time", "decision_index")
    op.drop_table("decision_index")
    op.drop_table("read_index_state")

"""Ledger indexes for the sweep: a customer's recent messages (frequency cap) and pending rows by id.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Measured with EXPLAIN ANALYZE on a 100k-row ledger (benchmarks/bench_sweep.py): without them the
frequency-cap query scans the whole ledger for every batch, and the delivery claim walks past every row
already sent.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_ledger_customer_id_created_at"), "ledger", ["customer_id", "created_at"])
    op.create_index(
        op.f("ix_ledger_pending_id"),
        "ledger",
        ["id"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_pending_id"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_customer_id_created_at"), table_name="ledger")

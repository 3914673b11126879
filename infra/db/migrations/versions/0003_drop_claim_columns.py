"""Drop the lease columns of a second claim path that production never used.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30

Enrollments are claimed with row locks (``SELECT … FOR UPDATE SKIP LOCKED``, held until the claiming
transaction commits), so ``enrollments.claimed_by`` / ``claimed_until`` were never written; events are
applied in the transaction that records them, so ``events.processed_at`` (and its partial index
``ix_events_unprocessed``) was never set. SQLite ≥ 3.35 drops a column in place. Types
are spelled out (frozen history), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_events_unprocessed"), table_name="events")
    op.drop_column("events", "processed_at")
    op.drop_column("enrollments", "claimed_until")
    op.drop_column("enrollments", "claimed_by")


def downgrade() -> None:
    op.add_column("enrollments", sa.Column("claimed_by", sa.String(128), nullable=True))
    op.add_column("enrollments", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        op.f("ix_events_unprocessed"),
        "events",
        ["received_at"],
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    )

"""The ledger's unique (enrollment, step, occurrence) index carries the columns the results report's funnel
reads (``status``, ``created_at``, ``evidence``), so the funnel is an index-only scan (PostgreSQL).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29

Why the unique index and not a new one: measured on the report benchmark's million ledger rows, the funnel's
pass over the heap (rows of ~650 bytes: payload, addresses, keys) took 1.5 s; over a covering index 1.0 s
(half of it the join and the aggregate, which no index removes). A separate covering index would cost every
ledger insert and status update one more index entry; this one is the index those writes maintain
anyway (``status`` and ``updated_at`` are already indexed, so no ledger update was a HOT update before),
only wider. INCLUDE columns are not part of the key: uniqueness and ``ON CONFLICT (enrollment_id,
step_id, occurrence)`` are unchanged. SQLite has no INCLUDE: nothing changes there.

The new index is built beside the old one and swapped in by one ``ALTER TABLE`` (``ADD CONSTRAINT …
USING INDEX``), so the constraint is never missing. Building it locks writes to the ledger for about two
seconds per million rows.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "uq_ledger_enrollment_id_step_id_occurrence"
KEY = "enrollment_id, step_id, occurrence"


def _swap(include: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"CREATE UNIQUE INDEX {NAME}_new ON ledger ({KEY}){include}")
    op.execute(
        f"ALTER TABLE ledger DROP CONSTRAINT {NAME}, ADD CONSTRAINT {NAME} UNIQUE USING INDEX {NAME}_new"
    )


def upgrade() -> None:
    _swap(" INCLUDE (status, created_at, evidence)")


def downgrade() -> None:
    _swap("")

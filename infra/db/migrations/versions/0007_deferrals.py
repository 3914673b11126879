"""Deferrals: which messages waited instead of going out when due, and why (quiet hours, frequency cap,
complaint hold) — one row per message and reason, however many sweeps it waited through.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The results report counts distinct deferred messages from it (the run tables counted every sweep a
message waited: 2,498 "deferred" for 55 sends in the demo). Nothing to backfill: the engine never kept
deferrals before. Types are spelled out (frozen history), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def INSTANT() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "deferrals",
        sa.Column("enrollment_id", BIGID, nullable=False),
        sa.Column("step_id", sa.String(128), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("first_at", INSTANT(), nullable=False),
        sa.Column("last_at", INSTANT(), nullable=False),
        sa.Column("until", INSTANT(), nullable=False),
        sa.Column("ticks", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('quiet_hours', 'frequency_cap', 'complaint_hold')", name=op.f("ck_deferrals_reason")
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_deferrals_enrollment_id_enrollments")
        ),
        sa.PrimaryKeyConstraint("enrollment_id", "step_id", "occurrence", "reason", name=op.f("pk_deferrals")),
    )


def downgrade() -> None:
    op.drop_table("deferrals")

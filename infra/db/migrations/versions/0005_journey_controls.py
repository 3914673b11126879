"""The marketer's controls: the live version of each journey and its state, publications, test sends,
installation flags.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01

``journeys`` says which compiled version new entrants get (the files in ``journeys/`` are drafts until
``posventa publish``) and whether the journey runs (running, paused, draining, stopped); the sweep's
claims skip paused journeys. ``journey_publications`` keeps every publication. ``test_sends`` counts
``posventa send-test`` messages for its rate limit (they are never ledger rows). ``installation`` holds
facts about the database itself: the production mark, the virtual clock of a walked-through customer.

A database upgraded from 0004 has no ``journeys`` rows: the first process to start publishes the journey
files (as every process did before), and from then on only ``posventa publish`` changes what runs.
Types are spelled out (frozen history), as in 0001.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def INSTANT() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "journeys",
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("live_version", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("published_at", INSTANT(), nullable=True),
        sa.Column("changed_at", INSTANT(), nullable=False),
        sa.CheckConstraint(
            "state IN ('running', 'paused', 'draining', 'stopped')", name=op.f("ck_journeys_state")
        ),
        sa.ForeignKeyConstraint(
            ["journey_id", "live_version"],
            ["journey_plans.journey_id", "journey_plans.version"],
            name=op.f("fk_journeys_live_journey_plans"),
        ),
        sa.PrimaryKeyConstraint("journey_id", name=op.f("pk_journeys")),
    )
    op.create_table(
        "journey_publications",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("previous_version", sa.String(64), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("published_at", INSTANT(), nullable=False),
        sa.CheckConstraint("kind IN ('publish', 'first_run')", name=op.f("ck_journey_publications_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_publications")),
    )
    op.create_index(
        op.f("ix_journey_publications_journey_id_published_at"),
        "journey_publications",
        ["journey_id", "published_at"],
    )
    op.create_table(
        "test_sends",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("step_id", sa.String(128), nullable=False),
        sa.Column("to_email", sa.String(320), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("sent_at", INSTANT(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_test_sends")),
    )
    op.create_index(op.f("ix_test_sends_sent_at"), "test_sends", ["sent_at"])
    op.create_table(
        "installation",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("set_at", INSTANT(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_installation")),
    )


def downgrade() -> None:
    op.drop_table("installation")
    op.drop_index(op.f("ix_test_sends_sent_at"), table_name="test_sends")
    op.drop_table("test_sends")
    op.drop_index(op.f("ix_journey_publications_journey_id_published_at"), table_name="journey_publications")
    op.drop_table("journey_publications")
    op.drop_table("journeys")

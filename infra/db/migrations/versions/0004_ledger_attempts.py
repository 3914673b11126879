"""Ledger attempts, leases and history: exactly once with a slow provider and without the webhook.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07

* ``ledger.attempt_id``: the delivery attempt (one UUID per claimed batch) that last claimed the row.
  The attempt's own answer is recorded only while the row still names it, so a ``202`` that arrives
  after the row became ``unknown`` ends it ``sent``, and a late answer of an older attempt changes
  nothing.
* ``ledger.sending_until``: the attempt's lease. Only rows whose lease expired become ``unknown``; the
  worker renews it while its provider calls are in flight. Rows ``sending`` at upgrade time get the
  rule they were claimed under: 15 minutes after their last update.
* ``ledger_history``: one row per status change after a ledger row was written (the claim, the
  outcome, an expired lease, the provider's evidence, an operator's requeue). A table rather than a JSON
  list on the row: append-only writes, one multi-row INSERT per batch on both backends, and plain SQL
  for "which failures were rejections before acceptance?" — the question ``posventa retry`` asks.
  Existing failures are attributed from their reason: SendGrid's ``4xx: …``, a journey webhook's
  ``HTTP 4xx``, a template's ``render: …`` were rejected before acceptance (``actor = 'deliver'``); a
  bounce or drop reported by the webhook is not backfilled and so never requeued.

Types and CHECK lists are spelled out (frozen history), as in 0001.
"""

from collections.abc import Sequence
from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OLD_STUCK_AFTER = timedelta(minutes=15)


def INSTANT() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("ledger", sa.Column("attempt_id", sa.String(36), nullable=True))
    op.add_column("ledger", sa.Column("sending_until", INSTANT(), nullable=True))
    for name, column in (("ix_ledger_sending_until", "sending_until"), ("ix_ledger_attempt_id", "attempt_id")):
        op.create_index(
            op.f(name),
            "ledger",
            [column],
            postgresql_where=sa.text("status = 'sending'"),
            sqlite_where=sa.text("status = 'sending'"),
        )
    op.create_table(
        "ledger_history",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("ledger_id", BIGID, nullable=False),
        sa.Column("attempt_id", sa.String(36), nullable=True),
        sa.Column("at", INSTANT(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown')",
            name=op.f("ck_ledger_history_status"),
        ),
        sa.CheckConstraint(
            "actor IN ('deliver', 'reconcile', 'webhook', 'operator')", name=op.f("ck_ledger_history_actor")
        ),
        sa.ForeignKeyConstraint(["ledger_id"], ["ledger.id"], name=op.f("fk_ledger_history_ledger_id_ledger")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_history")),
    )
    op.create_index(op.f("ix_ledger_history_ledger_id_id"), "ledger_history", ["ledger_id", "id"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    ledger = sa.table(
        "ledger",
        sa.column("id", BIGID),
        sa.column("status", sa.String()),
        sa.column("reason", sa.Text()),
        sa.column("updated_at", INSTANT()),
        sa.column("sending_until", INSTANT()),
    )
    # Few rows are in flight at any time: computed here rather than with dialect-specific date arithmetic.
    for row_id, updated_at in conn.execute(
        sa.select(ledger.c.id, ledger.c.updated_at).where(ledger.c.status == "sending")
    ).all():
        conn.execute(
            ledger.update().where(ledger.c.id == row_id).values(sending_until=updated_at + OLD_STUCK_AFTER)
        )
    rejected = sa.or_(
        ledger.c.reason.like("4__: %"), ledger.c.reason.like("HTTP 4__"), ledger.c.reason.like("render: %")
    )
    chosen = sa.select(
        ledger.c.id,
        ledger.c.updated_at,
        sa.literal("failed", sa.String()),
        sa.literal("deliver", sa.String()),
        ledger.c.reason,
    ).where(ledger.c.status == "failed", rejected)
    history = sa.table(
        "ledger_history",
        sa.column("ledger_id", BIGID),
        sa.column("at", INSTANT()),
        sa.column("status", sa.String()),
        sa.column("actor", sa.String()),
        sa.column("reason", sa.Text()),
    )
    conn.execute(history.insert().from_select(["ledger_id", "at", "status", "actor", "reason"], chosen))


def downgrade() -> None:
    op.drop_index(op.f("ix_ledger_history_ledger_id_id"), table_name="ledger_history")
    op.drop_table("ledger_history")
    op.drop_index(op.f("ix_ledger_attempt_id"), table_name="ledger")
    op.drop_index(op.f("ix_ledger_sending_until"), table_name="ledger")
    op.drop_column("ledger", "sending_until")
    op.drop_column("ledger", "attempt_id")

"""The ledger remembers what SendGrid's Event Webhook said of each message (``ledger.evidence``, a bit
set), so the results report counts delivered / opened / clicked … in the one ledger scan it does anyway.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29

Why a bit set on the ledger row and not a summary table: the funnel already reads every ledger row of its
cohort (sent, skipped, failed, time to step); reducing 1.85 million webhook events to distinct (message,
event) pairs per report took 3 of its 3.6 s on a million-row ledger. One integer per row, set with
``evidence | bit`` by the webhook path (idempotent, order-free), keeps one source of truth — the events
stay in ``webhook_events`` — and needs no refresh job. The bits are frozen here (as in 0001, history does
not import the models): delivered 1, bounce 2, dropped 4, open 8, click 16, (group_)unsubscribe 32,
spamreport 64. Existing events are folded in once.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BITS = {
    1: ("delivered",),
    2: ("bounce",),
    4: ("dropped",),
    8: ("open",),
    16: ("click",),
    32: ("unsubscribe", "group_unsubscribe"),
    64: ("spamreport",),
}


def upgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("evidence", sa.Integer(), nullable=False, server_default="0"))
    for bit, events in BITS.items():
        names = ", ".join(f"'{e}'" for e in events)
        op.execute(
            f"UPDATE ledger SET evidence = evidence | {bit} WHERE key IN "
            f"(SELECT ledger_key FROM webhook_events WHERE event IN ({names}) AND ledger_key IS NOT NULL)"
        )


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("evidence")

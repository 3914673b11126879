"""Initial schema: customers, orders, events, plans, enrollments, ledger, suppressions, feedback,
referrals, tickets, webhook dedupe, API keys.

Revision ID: 0001
Revises:
Create Date: 2026-11-23

Written to match ``infra.db.models`` exactly (tests/db/test_migrations.py compares them). Names are
wrapped in ``op.f()`` so the metadata naming convention is not applied on top of them. Types and
CHECK lists are spelled out here rather than imported: a migration is frozen history, it must not change
when the models move on.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen copies of infra.db.types as of this revision.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
BIGID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def INSTANT() -> sa.DateTime:
    # UTCDateTime's storage: timestamptz on PostgreSQL, naive UTC on SQLite.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("shop", sa.String(128), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("label", sa.String(200), nullable=True),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("revoked_at", INSTANT(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )

    op.create_table(
        "customers",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("locale", sa.String(8), nullable=False),
        sa.Column("timezone", sa.String(64), nullable=True),
        sa.Column("consent_email", sa.Boolean(), nullable=False),
        sa.Column("birthday", sa.Date(), nullable=True),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("updated_at", INSTANT(), nullable=False),
        sa.CheckConstraint("locale IN ('es', 'en')", name=op.f("ck_customers_locale")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
    )
    op.create_index(op.f("ix_customers_email"), "customers", ["email"])

    op.create_table(
        "events",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("occurred_at", INSTANT(), nullable=False),
        sa.Column("received_at", INSTANT(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("processed_at", INSTANT(), nullable=True),
        sa.CheckConstraint(
            "source IN ('api', 'import', 'webhook', 'system', 'simulation')", name=op.f("ck_events_source")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_customer_id_occurred_at"), "events", ["customer_id", "occurred_at"])
    op.create_index(
        op.f("ix_events_unprocessed"),
        "events",
        ["received_at"],
        postgresql_where=sa.text("processed_at IS NULL"),
        sqlite_where=sa.text("processed_at IS NULL"),
    )

    op.create_table(
        "feedback_responses",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("survey", sa.String(16), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("updated_at", INSTANT(), nullable=False),
        sa.CheckConstraint(
            "survey IN ('nps', 'product', 'service')", name=op.f("ck_feedback_responses_survey")
        ),
        sa.CheckConstraint("score >= 0 AND score <= 10", name=op.f("ck_feedback_responses_score")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback_responses")),
        sa.UniqueConstraint(
            "customer_id",
            "order_id",
            "survey",
            name=op.f("uq_feedback_responses_customer_id_order_id_survey"),
        ),
    )
    op.create_index(
        op.f("uq_feedback_responses_customer_id_survey_no_order"),
        "feedback_responses",
        ["customer_id", "survey"],
        unique=True,
        postgresql_where=sa.text("order_id IS NULL"),
        sqlite_where=sa.text("order_id IS NULL"),
    )

    op.create_table(
        "journey_plans",
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("plan", JSON, nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.PrimaryKeyConstraint("journey_id", "version", name=op.f("pk_journey_plans")),
    )

    op.create_table(
        "referral_codes",
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=True),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_referral_codes_customer_id")),
    )

    op.create_table(
        "support_tickets",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("opened_at", INSTANT(), nullable=False),
        sa.Column("resolved_at", INSTANT(), nullable=True),
        sa.CheckConstraint(
            "category IN ('complaint', 'support', 'return', 'warranty')",
            name=op.f("ck_support_tickets_category"),
        ),
        sa.CheckConstraint("status IN ('open', 'resolved')", name=op.f("ck_support_tickets_status")),
        sa.CheckConstraint("source IN ('journey', 'external')", name=op.f("ck_support_tickets_source")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_support_tickets")),
    )
    op.create_index(
        op.f("ix_support_tickets_customer_id_status"), "support_tickets", ["customer_id", "status"]
    )

    op.create_table(
        "suppressions",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=True),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("source", sa.String(40), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.CheckConstraint(
            "reason IN ('unsubscribed', 'bounced', 'spam_report', 'dropped', 'manual')",
            name=op.f("ck_suppressions_reason"),
        ),
        sa.CheckConstraint("scope IN ('all', 'promotional')", name=op.f("ck_suppressions_scope")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("email", "reason", name=op.f("uq_suppressions_email_reason")),
    )
    op.create_index(op.f("ix_suppressions_customer_id"), "suppressions", ["customer_id"])

    op.create_table(
        "webhook_events",
        sa.Column("sg_event_id", sa.String(128), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("ledger_key", sa.String(255), nullable=True),
        sa.Column("email", sa.String(320), nullable=True),
        sa.Column("occurred_at", INSTANT(), nullable=False),
        sa.Column("received_at", INSTANT(), nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.PrimaryKeyConstraint("sg_event_id", name=op.f("pk_webhook_events")),
    )
    op.create_index(op.f("ix_webhook_events_ledger_key"), "webhook_events", ["ledger_key"])

    op.create_table(
        "enrollments",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("plan_version", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=True),
        sa.Column("entry_key", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("next_due_at", INSTANT(), nullable=True),
        sa.Column("claimed_by", sa.String(128), nullable=True),
        sa.Column("claimed_until", INSTANT(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("entered_at", INSTANT(), nullable=False),
        sa.Column("updated_at", INSTANT(), nullable=False),
        sa.Column("ended_at", INSTANT(), nullable=True),
        sa.CheckConstraint(
            "status IN ('active', 'waiting', 'held', 'completed', 'exited', 'converted', 'failed')",
            name=op.f("ck_enrollments_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_enrollments_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["journey_id", "plan_version"],
            ["journey_plans.journey_id", "journey_plans.version"],
            name=op.f("fk_enrollments_plan_journey_plans"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrollments")),
        sa.UniqueConstraint("journey_id", "entry_key", name=op.f("uq_enrollments_journey_id_entry_key")),
    )
    op.create_index(op.f("ix_enrollments_customer_id"), "enrollments", ["customer_id"])
    op.create_index(op.f("ix_enrollments_status_next_due_at"), "enrollments", ["status", "next_due_at"])

    op.create_table(
        "orders",
        sa.Column("id", sa.String(128), nullable=False),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("placed_at", INSTANT(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("total", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("channel", sa.String(40), nullable=True),
        sa.Column("promised_delivery_date", sa.Date(), nullable=True),
        sa.Column("shipped_at", INSTANT(), nullable=True),
        sa.Column("delivered_at", INSTANT(), nullable=True),
        sa.Column("items", JSON, nullable=False),
        sa.Column("referral_code", sa.String(64), nullable=True),
        sa.Column("tracking_url", sa.String(2000), nullable=True),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("updated_at", INSTANT(), nullable=False),
        sa.CheckConstraint(
            "status IN ('placed', 'shipped', 'delivered', 'canceled', 'returned')",
            name=op.f("ck_orders_status"),
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_orders_customer_id_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index(op.f("ix_orders_customer_id"), "orders", ["customer_id"])

    op.create_table(
        "referral_conversions",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(128), nullable=False),
        sa.Column("referred_customer_id", sa.String(128), nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.ForeignKeyConstraint(
            ["code"], ["referral_codes.code"], name=op.f("fk_referral_conversions_code_referral_codes")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_conversions")),
        sa.UniqueConstraint("order_id", name=op.f("uq_referral_conversions_order_id")),
    )
    op.create_index(op.f("ix_referral_conversions_code"), "referral_conversions", ["code"])

    # The step ledger and message outbox. status: pending → sending → sent | failed | skipped, and
    # sending → unknown when the provider's outcome is ambiguous (reconciled, never resent blindly).
    op.create_table(
        "ledger",
        sa.Column("id", BIGID, autoincrement=True, nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("enrollment_id", BIGID, nullable=False),
        sa.Column("journey_id", sa.String(128), nullable=False),
        sa.Column("step_id", sa.String(128), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("template", sa.String(200), nullable=True),
        sa.Column("category", sa.String(16), nullable=True),
        sa.Column("customer_id", sa.String(128), nullable=False),
        sa.Column("to_email", sa.String(320), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("provider_message_id", sa.String(255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("created_at", INSTANT(), nullable=False),
        sa.Column("updated_at", INSTANT(), nullable=False),
        sa.Column("sent_at", INSTANT(), nullable=True),
        sa.Column("not_before", INSTANT(), nullable=True),
        sa.CheckConstraint("kind IN ('message', 'action')", name=op.f("ck_ledger_kind")),
        sa.CheckConstraint("channel IS NULL OR channel IN ('email')", name=op.f("ck_ledger_channel")),
        sa.CheckConstraint(
            "category IS NULL OR category IN ('transactional', 'promotional')",
            name=op.f("ck_ledger_category"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'skipped', 'unknown')",
            name=op.f("ck_ledger_status"),
        ),
        sa.ForeignKeyConstraint(
            ["enrollment_id"], ["enrollments.id"], name=op.f("fk_ledger_enrollment_id_enrollments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger")),
        sa.UniqueConstraint("key", name=op.f("uq_ledger_key")),
        sa.UniqueConstraint(
            "enrollment_id", "step_id", "occurrence", name=op.f("uq_ledger_enrollment_id_step_id_occurrence")
        ),
    )
    op.create_index(op.f("ix_ledger_status_updated_at"), "ledger", ["status", "updated_at"])
    op.create_index(op.f("ix_ledger_provider_message_id"), "ledger", ["provider_message_id"])


def downgrade() -> None:
    for table in (
        "ledger",
        "referral_conversions",
        "orders",
        "enrollments",
        "webhook_events",
        "suppressions",
        "support_tickets",
        "referral_codes",
        "journey_plans",
        "feedback_responses",
        "events",
        "customers",
        "api_keys",
    ):
        op.drop_table(table)  # drops the table's indexes with it

"""The database schema: SQLAlchemy 2 typed models that run on PostgreSQL (production) and SQLite (embedded).

Enum-like columns are plain strings guarded by CHECK constraints, not native PostgreSQL enums (adding a
value to a PG enum cannot run in a transaction and removing one is a rewrite). The values below are
**stored tags: frozen once shipped** (``docs/architecture.md``, "Stored tags"). Add values with a migration;
never rename one.

Every change here needs an Alembic revision in ``infra/db/migrations/versions``;
``tests/db/test_migrations.py`` fails when the two disagree.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.db.types import BigIntId, JSONType, UTCDateTime, utcnow

# --- stored tags (frozen once shipped) ----------------------------------------------------------------
LOCALES = ("es", "en")
ORDER_STATUSES = ("placed", "shipped", "delivered", "canceled", "returned")
EVENT_SOURCES = ("api", "import", "webhook", "system", "simulation")
ENROLLMENT_STATUSES = ("active", "waiting", "held", "completed", "exited", "converted", "failed")
#: Enrollments the sweep may still advance; the others are finished.
LIVE_ENROLLMENT_STATUSES = ("active", "waiting", "held")
LEDGER_KINDS = ("message", "action")
CHANNELS = ("email",)
CATEGORIES = ("transactional", "promotional")
# pending → sending → sent | failed | skipped; sending → unknown when the provider's outcome is ambiguous
# (timeout after the request left, 5xx): reconcile it, never resend blindly. pending → skipped | failed
# when the effect is not attempted (suppressed, no consent, no address). See app.records.LEDGER_TRANSITIONS.
LEDGER_STATUSES = ("pending", "sending", "sent", "failed", "skipped", "unknown")
#: Who moved a ledger row (``ledger_history.actor``): the delivering worker (its claim and its provider's
#: answer), the reconciler (an expired lease, the opt-in resend timer), the provider's event webhook
#: (evidence), an operator (``posventa retry``).
LEDGER_ACTORS = ("deliver", "reconcile", "webhook", "operator")
SUPPRESSION_REASONS = ("unsubscribed", "bounced", "spam_report", "dropped", "manual")
SUPPRESSION_SCOPES = ("all", "promotional")
SURVEYS = ("nps", "product", "service")
#: Why a due send waited (``posventa.state.DeferralReason``, stored in ``deferrals.reason``).
DEFERRAL_REASONS = ("quiet_hours", "frequency_cap", "complaint_hold")
TICKET_CATEGORIES = ("complaint", "support", "return", "warranty")
TICKET_STATUSES = ("open", "resolved")
TICKET_SOURCES = ("journey", "external")
#: What an API key opens: ``events`` (a shop's /v1 API) or ``admin`` (the /admin JSON, for scripts).
API_KEY_PURPOSES = ("events", "admin")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: SendGrid webhook event → the bit it sets in ``ledger.evidence`` (stored: never renumber a bit).
EVIDENCE_BITS: dict[str, int] = {
    "delivered": 1,
    "bounce": 2,
    "dropped": 4,
    "open": 8,
    "click": 16,
    "unsubscribe": 32,
    "group_unsubscribe": 32,
    "spamreport": 64,
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> CheckConstraint:
    """CHECK (column IN (...)), named ``ck_<table>_<column>``."""
    allowed = ", ".join(f"'{v}'" for v in values)
    sql = f"{column} IN ({allowed})"
    if nullable:
        sql = f"{column} IS NULL OR {sql}"
    return CheckConstraint(sql, name=column)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (one_of("locale", LOCALES), Index("ix_customers_email", "email"))

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the shop's id
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(8), default="es")
    timezone: Mapped[str | None] = mapped_column(String(64))
    consent_email: Mapped[bool] = mapped_column(Boolean, default=True)
    birthday: Mapped[date | None] = mapped_column(Date)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (one_of("status", ORDER_STATUSES),)

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), ForeignKey("customers.id"), index=True)
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="placed")
    total: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    currency: Mapped[str | None] = mapped_column(String(3))
    channel: Mapped[str | None] = mapped_column(String(40))
    promised_delivery_date: Mapped[date | None] = mapped_column(Date)
    shipped_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    referral_code: Mapped[str | None] = mapped_column(String(64))
    tracking_url: Mapped[str | None] = mapped_column(String(2000))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class StoredEvent(Base):
    """Every event accepted, once: ``id`` is the sender's idempotency key. No foreign keys: the log keeps
    what arrived even for customers or orders it has not seen yet."""

    __tablename__ = "events"
    __table_args__ = (
        one_of("source", EVENT_SOURCES),
        Index("ix_events_customer_id_occurred_at", "customer_id", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    type: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    source: Mapped[str] = mapped_column(String(16))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class StoredPlan(Base):
    """A compiled journey plan, by content-hashed version. Enrollments pin one, so editing a journey never
    changes the path of a customer already in it."""

    __tablename__ = "journey_plans"

    journey_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    plan: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = _created()


class Enrollment(Base):
    __tablename__ = "enrollments"
    __table_args__ = (
        one_of("status", ENROLLMENT_STATUSES),
        # The journey's entry rule (once per order, once a year…) is the entry_key: the database
        # enforces it, so two workers cannot enroll the same customer twice.
        UniqueConstraint("journey_id", "entry_key"),
        ForeignKeyConstraint(
            ["journey_id", "plan_version"],
            ["journey_plans.journey_id", "journey_plans.version"],
            name="fk_enrollments_plan_journey_plans",
        ),
        # The sweep: WHERE status IN (live) AND next_due_at <= now.
        Index("ix_enrollments_status_next_due_at", "status", "next_due_at"),
        Index("ix_enrollments_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    plan_version: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str] = mapped_column(String(128), ForeignKey("customers.id"))
    order_id: Mapped[str | None] = mapped_column(String(128))
    entry_key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16), default="active")
    #: The engine's serialised state.
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    #: When the sweep looks at it again (a wait is this row, not a sleeping process). Claims are row locks
    #: (``FOR UPDATE SKIP LOCKED``) that vanish with a dead worker's connection: no lease columns.
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Consecutive failed attempts to advance (reset on success).
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    entered_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = _updated()
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LedgerEntry(Base):
    """The step ledger and message outbox: one row per (enrollment, step, occurrence), reserved before the
    effect is performed, so a retry finds the row and never performs it twice."""

    __tablename__ = "ledger"
    __table_args__ = (
        one_of("kind", LEDGER_KINDS),
        one_of("channel", CHANNELS, nullable=True),
        one_of("category", CATEGORIES, nullable=True),
        one_of("status", LEDGER_STATUSES),
        # Revision 0010: the columns the results report's funnel reads ride in the unique index, so that
        # pass is an index-only scan on PostgreSQL (reasoning in the migration).
        UniqueConstraint(
            "enrollment_id",
            "step_id",
            "occurrence",
            postgresql_include=["status", "created_at", "evidence"],
        ),
        Index("ix_ledger_status_updated_at", "status", "updated_at"),
        Index("ix_ledger_provider_message_id", "provider_message_id"),
        # Revision 0002 — found by benchmarks/bench_sweep.py with EXPLAIN ANALYZE on a 100k-row ledger:
        # the frequency cap reads a customer's recent messages; delivery claims pending rows by id.
        Index("ix_ledger_customer_id_created_at", "customer_id", "created_at"),
        Index(
            "ix_ledger_pending_id",
            "id",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
        # Revision 0004: rows in flight, by lease (the reconciler) and by attempt (lease renewal). Partial:
        # only the few rows being sent right now are in them.
        Index(
            "ix_ledger_sending_until",
            "sending_until",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
        Index(
            "ix_ledger_attempt_id",
            "attempt_id",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    #: Derived, never random: f"{enrollment_id}:{step_id}:{occurrence}" (app.records.ledger_key).
    key: Mapped[str] = mapped_column(String(255), unique=True)
    enrollment_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("enrollments.id"))
    journey_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(128))
    occurrence: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(16))  # None for actions
    template: Mapped[str | None] = mapped_column(String(200))
    category: Mapped[str | None] = mapped_column(String(16))
    customer_id: Mapped[str] = mapped_column(String(128))
    to_email: Mapped[str | None] = mapped_column(String(320))
    # pending → sending → sent | failed | skipped; sending → unknown when the provider's outcome is
    # ambiguous (reconcile, never resend blindly). Transitions are guarded in infra.db.store.ledger.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    #: Why skipped / failed / unknown.
    reason: Mapped[str | None] = mapped_column(Text)
    provider_message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: What SendGrid's Event Webhook said of the message, as a bit set (EVIDENCE_BITS; revision 0009): the
    #: results report counts delivered / opened / clicked … from here with the ledger scan it does anyway,
    #: instead of reducing millions of webhook events per report.
    evidence: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: What the effect needs to be (re)performed: rendered message, action arguments.
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Do not retry before this instant.
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # --- revision 0004: attempts and leases (exactly once with a slow provider; see LedgerHistory) ---
    #: The delivery attempt that last claimed the row (a UUID, one per claimed batch). The attempt's own
    #: answer is recorded only while this still names it: a late answer of an older attempt is ignored.
    attempt_id: Mapped[str | None] = mapped_column(String(36))
    #: While ``sending``: the attempt's lease. The reconciler turns the row ``unknown`` only after it
    #: expired; the delivering worker renews it while its provider calls are in flight.
    sending_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class LedgerHistory(Base):
    """Every status change of a ledger row after it was written: the claim that began an attempt, that
    attempt's outcome, an expired lease, the provider's evidence, an operator's requeue.

    Why a table of rows and not a JSON list on the ledger row: the history is append-only and read
    rarely (ops, audits, ``posventa retry``), while the ledger row is on the hot path — appending to a
    growing JSON value would rewrite it on every move, and dialect-specific JSON updates would be needed
    in the bulk ``UPDATE … FROM (VALUES …)``. A row per change is one multi-row INSERT per batch, the
    same on PostgreSQL and SQLite, and queries ("which failures came from the provider's rejection?")
    stay plain SQL. ``posventa retry`` relies on it: only a failure whose *latest* change was recorded by
    the delivering worker (a rejection before acceptance, never a bounce reported afterwards) is
    requeued. Rows written before revision 0004 have no history; the migration backfills one line for
    the failures it can attribute to a rejection from their reason.
    """

    __tablename__ = "ledger_history"
    __table_args__ = (
        one_of("status", LEDGER_STATUSES),
        one_of("actor", LEDGER_ACTORS),
        Index("ix_ledger_history_ledger_id_id", "ledger_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    ledger_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("ledger.id"))
    #: The attempt the change belongs to (None for evidence and operator actions on no attempt).
    attempt_id: Mapped[str | None] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: The status the row moved to.
    status: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)


class Deferral(Base):
    """A message that waited instead of going out when due: one row per (enrollment, step, occurrence,
    reason) — the message and why it waited — however many sweeps it waited through (``ticks``).

    Written by the advance in the transaction that saves the enrollment's state (``app.advance``), as an
    upsert on the primary key: a retried advance rolls back with its state, and a message deferred again
    by a later sweep moves ``last_at``/``until`` and counts a tick, so the report counts distinct messages
    (the run tables count sweeps). ``until`` is when the engine looks again: the end of the quiet hours or
    of the cap's window; for a complaint hold, the next check.
    """

    __tablename__ = "deferrals"
    __table_args__ = (one_of("reason", DEFERRAL_REASONS),)

    enrollment_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("enrollments.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    occurrence: Mapped[int] = mapped_column(Integer, primary_key=True)
    reason: Mapped[str] = mapped_column(String(16), primary_key=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    first_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_at: Mapped[datetime] = mapped_column(UTCDateTime())
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    ticks: Mapped[int] = mapped_column(Integer, default=1)


class Suppression(Base):
    __tablename__ = "suppressions"
    __table_args__ = (
        one_of("reason", SUPPRESSION_REASONS),
        one_of("scope", SUPPRESSION_SCOPES),
        UniqueConstraint("email", "reason"),
        Index("ix_suppressions_customer_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    email: Mapped[str] = mapped_column(String(320))  # normalised: stripped, lower-case
    customer_id: Mapped[str | None] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(16))
    scope: Mapped[str] = mapped_column(String(16), default="all")
    source: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()


class FeedbackResponse(Base):
    __tablename__ = "feedback_responses"
    __table_args__ = (
        one_of("survey", SURVEYS),
        CheckConstraint("score >= 0 AND score <= 10", name="score"),
        # Answering twice updates the answer. NULLs are distinct in a UNIQUE constraint (both backends),
        # so answers not tied to an order get their own partial unique index.
        UniqueConstraint("customer_id", "order_id", "survey"),
        Index(
            "uq_feedback_responses_customer_id_survey_no_order",
            "customer_id",
            "survey",
            unique=True,
            postgresql_where=text("order_id IS NULL"),
            sqlite_where=text("order_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    survey: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()


class ReferralCode(Base):
    __tablename__ = "referral_codes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(128), unique=True)
    journey_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class ReferralConversion(Base):
    __tablename__ = "referral_conversions"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(32), ForeignKey("referral_codes.code"), index=True)
    order_id: Mapped[str] = mapped_column(String(128), unique=True)
    referred_customer_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _created()


class SupportTicket(Base):
    __tablename__ = "support_tickets"
    __table_args__ = (
        one_of("category", TICKET_CATEGORIES),
        one_of("status", TICKET_STATUSES),
        one_of("source", TICKET_SOURCES),
        Index("ix_support_tickets_customer_id_status", "customer_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # external id, or derived
    customer_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str | None] = mapped_column(String(128))
    subject: Mapped[str | None] = mapped_column(String(300))
    category: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="open")
    source: Mapped[str] = mapped_column(String(16))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class WebhookEvent(Base):
    """SendGrid event webhook deliveries, deduplicated by ``sg_event_id`` (SendGrid retries)."""

    __tablename__ = "webhook_events"
    __table_args__ = (Index("ix_webhook_events_ledger_key", "ledger_key"),)

    sg_event_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    event: Mapped[str] = mapped_column(String(32))
    ledger_key: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(320))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (one_of("purpose", API_KEY_PURPOSES),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    shop: Mapped[str] = mapped_column(String(128))
    #: sha256 hex of the key; the plaintext is shown once and never stored.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = _created()
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: revision 0008; a key opens one door only
    purpose: Mapped[str] = mapped_column(String(16), default="events", server_default="events")


# --- the marketer's controls (revision 0005): what runs, paused journeys, test sends ----------------------
#: A journey's control state. running: admits and advances; paused: admits nobody, advances nobody, sends
#: nothing (due steps wait, waits keep counting); draining: admits nobody, those inside finish;
#: stopped: admits nobody (every enrollment was ended). Stored tags: frozen once shipped.
JOURNEY_STATES = ("running", "paused", "draining", "stopped")
#: How a version became live: ``publish`` (someone ran it), ``first_run`` (the first process on a
#: database where nothing was ever published published the journey files, so a demo needs no step).
PUBLICATION_KINDS = ("publish", "first_run")


class JourneyControl(Base):
    """One row per journey that was ever published or controlled: the version new entrants get (the
    journey files are drafts until ``posventa publish``) and whether the journey runs."""

    __tablename__ = "journeys"
    __table_args__ = (
        one_of("state", JOURNEY_STATES),
        ForeignKeyConstraint(
            ["journey_id", "live_version"],
            ["journey_plans.journey_id", "journey_plans.version"],
            name="fk_journeys_live_journey_plans",
        ),
    )

    journey_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    #: None until published (a journey may be paused before its first publication).
    live_version: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="running")
    #: Why it was paused or stopped (shown by ``posventa status`` and ``customer``).
    reason: Mapped[str | None] = mapped_column(Text)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    changed_at: Mapped[datetime] = _updated()


class JourneyPublication(Base):
    """Every publication, in order: which version went live when, replacing which (an audit trail)."""

    __tablename__ = "journey_publications"
    __table_args__ = (
        one_of("kind", PUBLICATION_KINDS),
        Index("ix_journey_publications_journey_id_published_at", "journey_id", "published_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    version: Mapped[str] = mapped_column(String(64))
    previous_version: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SendTestLog(Base):
    """A test message sent with ``posventa send-test`` (never a ledger row): the rate limit counts these."""

    __tablename__ = "test_sends"
    __table_args__ = (Index("ix_test_sends_sent_at", "sent_at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    journey_id: Mapped[str] = mapped_column(String(128))
    step_id: Mapped[str] = mapped_column(String(128))
    to_email: Mapped[str] = mapped_column(String(320))
    #: The sender's outcome (sent, failed, unknown, retry) and its detail.
    outcome: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())


class InstallationFlag(Base):
    """Facts about this database itself: ``environment`` = ``production`` (``posventa environment
    production``: time travel is refused), ``clock:<customer>`` (the virtual time ``posventa run
    --customer … --advance`` last moved that customer to)."""

    __tablename__ = "installation"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime] = _updated()


# --- the admin area (revision 0006): who may sign in to /admin ------------------------------------------
class AdminUser(Base):
    """A marketer who may sign in to ``/admin`` (``posventa admin-user``). ``password_hash`` is a
    self-describing scrypt hash (``app.passwords``): the password itself is never stored. Changing the
    password changes the hash, which ends every session signed for the old one."""

    __tablename__ = "admin_users"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = _created()
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

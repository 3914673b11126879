"""The store: what the runtime reads and writes, as plain functions taking a :class:`Session`.

No engine logic and no Prefect here, and no commits either: the caller owns the transaction
(``infra.db.session.transaction``). Idempotency comes from the database, not from callers being careful:
inserts are ``INSERT … ON CONFLICT DO NOTHING`` on a derived key, state changes are guarded ``UPDATE …
WHERE status IN (…)``, so a retried task finds the work already done and does not do it twice.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar, cast

from sqlalchemy import (
    DateTime,
    Select,
    String,
    Table,
    Text,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy import values as sa_values
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from infra.db.models import (
    CATEGORIES,
    CHANNELS,
    ENROLLMENT_STATUSES,
    EVENT_SOURCES,
    LEDGER_KINDS,
    LIVE_ENROLLMENT_STATUSES,
    ORDER_STATUSES,
    SUPPRESSION_REASONS,
    SUPPRESSION_SCOPES,
    SURVEYS,
    TICKET_CATEGORIES,
    TICKET_SOURCES,
    ApiKey,
    Base,
    Customer,
    Enrollment,
    FeedbackResponse,
    LedgerEntry,
    Order,
    ReferralCode,
    ReferralConversion,
    StoredEvent,
    StoredPlan,
    SupportTicket,
    Suppression,
    WebhookEvent,
)
from infra.db.types import UTCDateTime, utcnow
from posventa.errors import ConfigError
from posventa.events import CustomerIn, Event, OrderIn

__all__ = [
    "LEDGER_TRANSITIONS",
    "TERMINAL_ENROLLMENT_STATUSES",
    "LedgerCount",
    "Move",
    "attribute_referral",
    "check_api_key",
    "claim_due",
    "create_api_key",
    "create_enrollment",
    "enrollments_for",
    "ensure_customer",
    "events_for",
    "get_ledger_entry",
    "get_plan",
    "has_open_complaint",
    "is_suppressed",
    "ledger_counts",
    "ledger_key",
    "mark",
    "mark_event_processed",
    "mark_many",
    "normalise_email",
    "open_ticket",
    "record_event",
    "record_webhook_event",
    "referral_code_for",
    "release",
    "reserve_step",
    "resolve_ticket",
    "revoke_api_key",
    "save_feedback",
    "save_plan",
    "set_order_status",
    "stale_sending",
    "suppress",
    "suppressions_for",
    "unknown_older_than",
    "unprocessed_events",
    "upsert_customer",
    "upsert_order",
]

TERMINAL_ENROLLMENT_STATUSES = frozenset(ENROLLMENT_STATUSES) - frozenset(LIVE_ENROLLMENT_STATUSES)

#: Allowed ledger moves: pending → sending → sent | failed | skipped, sending → unknown. ``pending →
#: skipped | failed`` decides without attempting (suppressed, no address). Statuses only move forward, with
#: one deliberate exception: ``sending → pending`` when nothing was sent (a *definite* transient refusal
#: such as HTTP 429, or a hold), with ``not_before`` set. An *ambiguous* outcome goes to ``unknown`` and is
#: reconciled to ``sent`` or ``failed``, never re-queued blindly.
LEDGER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"sending", "skipped", "failed"}),
    "sending": frozenset({"sent", "failed", "skipped", "unknown", "pending"}),
    # unknown → pending: released for a resend once the reconciliation window passed without webhook
    # evidence (POSVENTA_RECONCILE_AFTER_MINUTES). Deliberate: a customer missing a message forever is
    # worse than a rare duplicate after an hour of provider silence.
    "unknown": frozenset({"sent", "failed", "pending"}),
    "sent": frozenset(),
    "failed": frozenset(),
    "skipped": frozenset(),
}

#: Order statuses only advance (events can arrive out of order: a late "shipped" after "delivered" only
#: fills in ``shipped_at``).
_ORDER_RANK = {"placed": 0, "shipped": 1, "delivered": 2, "canceled": 3, "returned": 3}

_M = TypeVar("_M", bound=Base)

_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
_CODE_LENGTH = 8


# --- helpers -------------------------------------------------------------------------------------------
def _table(model: type[Base]) -> Table:
    return cast(Table, model.__table__)


def _insert(s: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which knows ``ON CONFLICT``."""
    name = s.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(_table(model))
    if name == "sqlite":
        return sqlite.insert(_table(model))
    raise ConfigError(f"POSVENTA_DATABASE_URL: Posventa supports PostgreSQL and SQLite, not {name}")


def _rowcount(result: Result[Any]) -> int:
    return cast(CursorResult[Any], result).rowcount


def _is_postgres(s: Session) -> bool:
    return s.get_bind().dialect.name == "postgresql"


def _one_of(value: str | None, allowed: Iterable[str], what: str, *, nullable: bool = False) -> None:
    if value is None and nullable:
        return
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}; got {value!r}")


def _aware(value: datetime, what: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be an aware datetime")
    return value


def normalise_email(email: str) -> str:
    return email.strip().lower()


# --- customers and orders ------------------------------------------------------------------------------
def ensure_customer(s: Session, customer_id: str) -> bool:
    """Make sure a customer row exists (an event may name a customer the shop never described).
    Returns True if it was created."""
    stmt = _insert(s, Customer).values(id=customer_id).on_conflict_do_nothing(index_elements=["id"])
    return s.execute(stmt.returning(Customer.id)).first() is not None


def upsert_customer(s: Session, customer: CustomerIn) -> Customer:
    """Create or update a customer. Only fields the shop sent are changed (a field sent as null keeps the
    stored value); ``attributes`` are merged key by key."""
    given = {
        name: getattr(customer, name)
        for name in customer.model_fields_set - {"id"}
        if getattr(customer, name) is not None
    }
    if "email" in given:
        given["email"] = given["email"].strip()
    attributes = dict(given.pop("attributes", {}))
    row: Customer = _insert_or_update(s, Customer, customer.id, {"id": customer.id}, given, attributes)
    return row


def upsert_order(s: Session, customer_id: str, order: OrderIn, placed_at: datetime) -> Order:
    """Create or update an order (creating a bare customer row if needed). ``placed_at`` and the owning
    customer are kept from the first time the order was seen; other fields the shop sent are updated."""
    _aware(placed_at, "placed_at")
    ensure_customer(s, customer_id)
    given: dict[str, Any] = {}
    for name in order.model_fields_set - {"id"}:
        value = getattr(order, name)
        if value is None:
            continue
        if name == "items":
            value = [item.model_dump(mode="json", exclude_none=True) for item in order.items]
        elif name == "total":
            value = Decimal(str(value)).quantize(Decimal("0.01"))
        elif name == "currency":
            value = value.upper()
        given[name] = value
    attributes = dict(given.pop("attributes", {}))
    first = {"id": order.id, "customer_id": customer_id, "placed_at": placed_at}
    row: Order = _insert_or_update(s, Order, order.id, first, given, attributes)
    return row


def _insert_or_update(
    s: Session,
    model: Any,
    row_id: str,
    first: dict[str, Any],
    given: dict[str, Any],
    attributes: dict[str, Any],
) -> Any:
    """Insert the row (``first`` are the values only the first sighting sets), or update the fields the
    shop sent this time and merge its custom attributes. Safe under concurrent upserts of the same id."""
    stmt = _insert(s, model).values(**first, attributes=attributes, **given)
    created = s.execute(stmt.on_conflict_do_nothing(index_elements=["id"]).returning(model.id)).first()
    row = _load_for_update(s, select(model).where(model.id == row_id))
    if created is None:
        for name, value in given.items():
            setattr(row, name, value)
        if attributes:
            row.attributes = {**row.attributes, **attributes}
        s.flush()
    return row


def set_order_status(s: Session, order_id: str, status: str, at: datetime) -> bool:
    """Advance an order's status and stamp ``shipped_at`` / ``delivered_at`` (first value wins).

    Returns True if the status changed. A status that would move the order backwards (a late "shipped"
    after "delivered") only fills in its timestamp. Guarded UPDATEs, so concurrent events cannot undo
    each other.
    """
    _one_of(status, ORDER_STATUSES, "order status")
    _aware(at, "at")
    stamp = {"shipped": Order.shipped_at, "delivered": Order.delivered_at}.get(status)
    if stamp is not None:
        s.execute(update(Order).where(Order.id == order_id, stamp.is_(None)).values({stamp: at}))
    behind = [name for name, rank in _ORDER_RANK.items() if rank < _ORDER_RANK[status]]
    moved = update(Order).where(Order.id == order_id, Order.status.in_(behind)).values(status=status)
    return _rowcount(s.execute(moved)) == 1


def _load_for_update(s: Session, stmt: Select[_M]) -> _M:
    """Load one row fresh from the database, locked on PostgreSQL (SQLite: the INSERT that preceded it
    already holds the write lock)."""
    stmt = stmt.execution_options(populate_existing=True)
    if _is_postgres(s):
        stmt = stmt.with_for_update()
    return s.scalars(stmt).one()


# --- events --------------------------------------------------------------------------------------------
def record_event(s: Session, event: Event, source: str) -> bool:
    """Store an event once (its ``id`` is the idempotency key). True if it was new."""
    _one_of(source, EVENT_SOURCES, "event source")
    stmt = _insert(s, StoredEvent).values(
        id=event.id,
        type=event.type,
        customer_id=event.customer_id,
        order_id=event.order_id,
        occurred_at=_aware(event.occurred_at, "occurred_at"),
        received_at=utcnow(),
        source=source,
        data=dict(event.data),
    )
    return (
        s.execute(stmt.on_conflict_do_nothing(index_elements=["id"]).returning(StoredEvent.id)).first()
        is not None
    )


def mark_event_processed(s: Session, event_id: str, at: datetime | None = None) -> bool:
    stmt = (
        update(StoredEvent)
        .where(StoredEvent.id == event_id, StoredEvent.processed_at.is_(None))
        .values(processed_at=at or utcnow())
    )
    return _rowcount(s.execute(stmt)) == 1


def unprocessed_events(s: Session, limit: int = 500) -> list[StoredEvent]:
    """Events recorded but not yet applied, oldest first (a crashed ingestion is resumed from these)."""
    stmt = (
        select(StoredEvent)
        .where(StoredEvent.processed_at.is_(None))
        .order_by(StoredEvent.received_at, StoredEvent.id)
        .limit(limit)
    )
    return list(s.scalars(stmt))


def events_for(s: Session, customer_id: str, since: datetime | None = None) -> list[StoredEvent]:
    """A customer's events in the order they happened."""
    stmt = select(StoredEvent).where(StoredEvent.customer_id == customer_id)
    if since is not None:
        stmt = stmt.where(StoredEvent.occurred_at >= since)
    return list(s.scalars(stmt.order_by(StoredEvent.occurred_at, StoredEvent.id)))


# --- plans and enrollments -----------------------------------------------------------------------------
def save_plan(s: Session, journey_id: str, version: str, plan_json: Mapping[str, Any] | str) -> bool:
    """Store a compiled plan under its content-hashed version. Idempotent; True if it was new."""
    plan = json.loads(plan_json) if isinstance(plan_json, str) else dict(plan_json)
    stmt = _insert(s, StoredPlan).values(journey_id=journey_id, version=version, plan=plan)
    stmt = stmt.on_conflict_do_nothing(index_elements=["journey_id", "version"])
    return s.execute(stmt.returning(StoredPlan.version)).first() is not None


def get_plan(s: Session, journey_id: str, version: str) -> dict[str, Any] | None:
    row = s.get(StoredPlan, (journey_id, version))
    return None if row is None else dict(row.plan)


def create_enrollment(
    s: Session,
    journey_id: str,
    plan_version: str,
    customer_id: str,
    order_id: str | None,
    entry_key: str,
    state: Mapping[str, Any],
    next_due_at: datetime | None,
    entered_at: datetime,
    *,
    status: str = "active",
) -> int | None:
    """Enroll a customer unless the journey's entry rule already let this ``entry_key`` in.

    Returns the new enrollment id, or None if (journey_id, entry_key) exists. The plan version must have
    been saved (:func:`save_plan`) and the customer must exist: both are foreign keys.
    """
    _one_of(status, LIVE_ENROLLMENT_STATUSES, "initial enrollment status")
    stmt = _insert(s, Enrollment).values(
        journey_id=journey_id,
        plan_version=plan_version,
        customer_id=customer_id,
        order_id=order_id,
        entry_key=entry_key,
        status=status,
        state=dict(state),
        next_due_at=next_due_at,
        attempts=0,
        entered_at=_aware(entered_at, "entered_at"),
    )
    stmt = stmt.on_conflict_do_nothing(index_elements=["journey_id", "entry_key"])
    return s.execute(stmt.returning(Enrollment.id)).scalar_one_or_none()


def claim_due(
    s: Session,
    now: datetime,
    limit: int,
    worker_id: str,
    lease: timedelta = timedelta(minutes=10),
    journey_id: str | None = None,
) -> list[Enrollment]:
    """Claim up to ``limit`` live enrollments due at ``now``, oldest due first, for ``lease``.

    A claim is a lease (``claimed_by``, ``claimed_until``): if the worker dies, the enrollment becomes
    claimable again when the lease runs out. PostgreSQL: ``SELECT … FOR UPDATE SKIP LOCKED`` so
    concurrent workers get disjoint batches without waiting on each other. SQLite (one writer): a single
    ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`` so the claim is atomic even though pysqlite only
    begins the transaction at the first write. The caller commits.
    """
    _aware(now, "now")
    if limit <= 0:
        return []
    until = now + lease
    due = and_(
        Enrollment.status.in_(LIVE_ENROLLMENT_STATUSES),
        Enrollment.next_due_at.is_not(None),
        Enrollment.next_due_at <= now,
        or_(Enrollment.claimed_until.is_(None), Enrollment.claimed_until < now),
    )
    if journey_id is not None:
        due = and_(due, Enrollment.journey_id == journey_id)
    order = (Enrollment.next_due_at, Enrollment.id)

    if _is_postgres(s):
        rows = list(
            s.scalars(
                select(Enrollment)
                .where(due)
                .order_by(*order)
                .limit(limit)
                .with_for_update(skip_locked=True)
                .execution_options(populate_existing=True)
            )
        )
        if rows:
            # ORM-enabled UPDATE: the loaded objects are updated in step ("evaluate").
            s.execute(
                update(Enrollment)
                .where(Enrollment.id.in_([r.id for r in rows]))
                .values(claimed_by=worker_id, claimed_until=until)
            )
        return rows

    table = _table(Enrollment)
    picked = select(table.c.id).where(due).order_by(*order).limit(limit)
    claimed = s.scalars(
        update(table)
        .where(table.c.id.in_(picked), due)
        .values(claimed_by=worker_id, claimed_until=until)
        .returning(table.c.id)
    ).all()
    if not claimed:
        return []
    stmt = (
        select(Enrollment)
        .where(Enrollment.id.in_(claimed))
        .order_by(*order)
        .execution_options(populate_existing=True)
    )
    return list(s.scalars(stmt))


def release(
    s: Session,
    enrollment_id: int,
    state: Mapping[str, Any],
    status: str,
    next_due_at: datetime | None,
    error: str | None = None,
    *,
    worker_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Write back what the engine decided and clear the claim.

    ``error`` records a failed attempt (``attempts`` grows; it resets on success). With ``worker_id``,
    only that worker's claim is released: a worker whose lease expired and was taken over gets False and
    must not apply its results.
    """
    _one_of(status, ENROLLMENT_STATUSES, "enrollment status")
    now = now or utcnow()
    values: dict[str, Any] = {
        "state": dict(state),
        "status": status,
        "next_due_at": next_due_at,
        "claimed_by": None,
        "claimed_until": None,
        "last_error": error,
        "attempts": Enrollment.attempts + 1 if error is not None else 0,
        "updated_at": now,
    }
    if status in TERMINAL_ENROLLMENT_STATUSES:
        values["ended_at"] = now
    stmt = update(Enrollment).where(Enrollment.id == enrollment_id)
    if worker_id is not None:
        stmt = stmt.where(Enrollment.claimed_by == worker_id)
    # ORM-enabled UPDATE so an Enrollment loaded in this session reflects the write.
    return _rowcount(s.execute(stmt.values(**values))) == 1


def enrollments_for(s: Session, customer_id: str, journey_id: str | None = None) -> list[Enrollment]:
    stmt = select(Enrollment).where(Enrollment.customer_id == customer_id)
    if journey_id is not None:
        stmt = stmt.where(Enrollment.journey_id == journey_id)
    return list(s.scalars(stmt.order_by(Enrollment.entered_at, Enrollment.id)))


# --- the step ledger / message outbox -----------------------------------------------------------------
def ledger_key(enrollment_id: int, step_id: str, occurrence: int) -> str:
    """The derived idempotency key of one effect: a retry computes the same key."""
    return f"{enrollment_id}:{step_id}:{occurrence}"


def reserve_step(
    s: Session,
    key: str,
    enrollment_id: int,
    journey_id: str,
    step_id: str,
    occurrence: int,
    kind: str,
    payload: Mapping[str, Any],
    customer_id: str,
    to_email: str | None = None,
    channel: str | None = None,
    template: str | None = None,
    category: str | None = None,
) -> LedgerEntry:
    """Reserve the ledger row of one effect, or find the one reserved before.

    Returns the row either way: its ``status`` tells the caller whether to act (``pending``) or what
    already happened. The stored payload is the first one; a retry does not overwrite it.
    """
    expected = ledger_key(enrollment_id, step_id, occurrence)
    if key != expected:
        raise ValueError(f"ledger key {key!r} is not derived from its step; expected {expected!r}")
    _one_of(kind, LEDGER_KINDS, "ledger kind")
    _one_of(channel, CHANNELS, "channel", nullable=True)
    _one_of(category, CATEGORIES, "category", nullable=True)
    now = utcnow()
    stmt = _insert(s, LedgerEntry).values(
        key=key,
        enrollment_id=enrollment_id,
        journey_id=journey_id,
        step_id=step_id,
        occurrence=occurrence,
        kind=kind,
        channel=channel,
        template=template,
        category=category,
        customer_id=customer_id,
        to_email=to_email,
        status="pending",
        attempts=0,
        payload=dict(payload),
        created_at=now,
        updated_at=now,
    )
    # No conflict target: the key and (enrollment, step, occurrence) are both unique, and naming only one
    # as the arbiter lets two racing inserts deadlock on the other (seen in test_concurrency_pg).
    s.execute(stmt.on_conflict_do_nothing())
    stmt2 = select(LedgerEntry).where(LedgerEntry.key == key).execution_options(populate_existing=True)
    return s.scalars(stmt2).one()


def get_ledger_entry(s: Session, key: str) -> LedgerEntry | None:
    stmt = select(LedgerEntry).where(LedgerEntry.key == key).execution_options(populate_existing=True)
    return s.scalars(stmt).one_or_none()


def mark(
    s: Session,
    key: str,
    from_statuses: Sequence[str] | str,
    to_status: str,
    reason: str | None = None,
    provider_message_id: str | None = None,
    not_before: datetime | None = None,
    *,
    now: datetime | None = None,
) -> bool:
    """Move a ledger row from one of ``from_statuses`` to ``to_status``; True if it moved.

    ``UPDATE … WHERE key = :k AND status IN (:from)``: two workers racing on the same row cannot both
    move it, and a row already further along is left alone. Asking for a move that
    :data:`LEDGER_TRANSITIONS` does not allow (backwards) is a bug and raises ValueError.
    Moving to ``sending`` counts an attempt; moving to ``sent`` stamps ``sent_at``.
    """
    froms = (from_statuses,) if isinstance(from_statuses, str) else tuple(from_statuses)
    if not froms:
        raise ValueError("from_statuses is empty")
    for src in froms:
        if src not in LEDGER_TRANSITIONS:
            raise ValueError(f"unknown ledger status {src!r}")
        if to_status not in LEDGER_TRANSITIONS[src]:
            raise ValueError(f"ledger status cannot move from {src!r} to {to_status!r}")
    now = now or utcnow()
    values: dict[str, Any] = {"status": to_status, "updated_at": now}
    if reason is not None:
        values["reason"] = reason
    if provider_message_id is not None:
        values["provider_message_id"] = provider_message_id
    if not_before is not None:
        values["not_before"] = _aware(not_before, "not_before")
    if to_status == "sending":
        values["attempts"] = LedgerEntry.attempts + 1
    if to_status == "sent":
        values["sent_at"] = now
    stmt = update(LedgerEntry).where(LedgerEntry.key == key, LedgerEntry.status.in_(froms)).values(**values)
    return _rowcount(s.execute(stmt)) == 1


class Move(NamedTuple):
    """One row's guarded transition, for :func:`mark_many`."""

    key: str
    to_status: str
    reason: str | None = None
    provider_message_id: str | None = None
    not_before: datetime | None = None


def mark_many(s: Session, moves: Sequence[Move], from_statuses: Sequence[str], *, now: datetime) -> None:
    """:func:`mark` for a batch: one executemany per target status instead of one round trip per row.

    Same guard (``WHERE key = :k AND status IN (:from)``) and the same transition table; ``reason`` and
    ``provider_message_id`` keep their old value when the move gives none. (Drivers do not report
    reliable row counts for executemany, so nothing is returned: a row already elsewhere stays there.)
    """
    froms = tuple(from_statuses)
    by_status: dict[str, list[Move]] = {}
    for mv in moves:
        by_status.setdefault(mv.to_status, []).append(mv)
    for to_status, group in by_status.items():
        for src in froms:
            if to_status not in LEDGER_TRANSITIONS.get(src, frozenset()):
                raise ValueError(f"ledger status cannot move from {src!r} to {to_status!r}")
        values: dict[str, Any] = {
            "status": to_status,
            "updated_at": _aware(now, "now"),
            "reason": func.coalesce(bindparam("b_reason", type_=Text()), LedgerEntry.reason),
            "provider_message_id": func.coalesce(
                bindparam("b_pid", type_=String()), LedgerEntry.provider_message_id
            ),
            "not_before": func.coalesce(
                bindparam("b_not_before", type_=UTCDateTime()), LedgerEntry.not_before
            ),
        }
        if to_status == "sent":
            values["sent_at"] = _aware(now, "now")
        guard = or_(*(LedgerEntry.status == f for f in froms))
        if _is_postgres(s):
            # PostgreSQL: UPDATE … FROM (VALUES …), one statement per thousand rows.
            rows = [(mv.key, mv.reason, mv.provider_message_id, mv.not_before) for mv in group]
            for start in range(0, len(rows), 1000):
                v = sa_values(
                    column("k", String()),
                    column("r", Text()),
                    column("p", String()),
                    column("nb", DateTime(timezone=True)),
                    name="moves",
                ).data(rows[start : start + 1000])
                pg_values = {
                    **values,
                    "reason": func.coalesce(sql_cast(v.c.r, Text()), LedgerEntry.reason),
                    "provider_message_id": func.coalesce(
                        sql_cast(v.c.p, String()), LedgerEntry.provider_message_id
                    ),
                    "not_before": func.coalesce(
                        sql_cast(v.c.nb, DateTime(timezone=True)), LedgerEntry.not_before
                    ),
                }
                s.execute(
                    update(LedgerEntry)
                    .where(LedgerEntry.key == v.c.k, guard)
                    .values(**pg_values)
                    .execution_options(synchronize_session=False)
                )
            continue
        stmt = (
            update(LedgerEntry)
            # Equalities, not IN: an expanding IN cannot be used in an executemany.
            .where(LedgerEntry.key == bindparam("b_key"), or_(*(LedgerEntry.status == f for f in froms)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        params = [
            {
                "b_key": mv.key,
                "b_reason": mv.reason,
                "b_pid": mv.provider_message_id,
                "b_not_before": mv.not_before,
            }
            for mv in group
        ]
        s.connection().execute(stmt, params)


def stale_sending(s: Session, older_than: datetime) -> list[LedgerEntry]:
    """Rows left in ``sending`` since before ``older_than``: their worker died mid-call. The outcome is
    unknown, so they are to be marked ``unknown`` and reconciled, not resent."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.status == "sending", LedgerEntry.updated_at < older_than)
        .order_by(LedgerEntry.updated_at, LedgerEntry.id)
    )
    return list(s.scalars(stmt))


def unknown_older_than(s: Session, cutoff: datetime) -> list[LedgerEntry]:
    """``unknown`` rows waiting since before ``cutoff``: time to reconcile them with the provider."""
    stmt = (
        select(LedgerEntry)
        .where(LedgerEntry.status == "unknown", LedgerEntry.updated_at < cutoff)
        .order_by(LedgerEntry.updated_at, LedgerEntry.id)
    )
    return list(s.scalars(stmt))


class LedgerCount(NamedTuple):
    journey_id: str
    step_id: str
    status: str
    reason: str | None
    n: int


def ledger_counts(s: Session, journey_id: str | None = None) -> list[LedgerCount]:
    """Sending statistics: how many effects per (journey, step, status, reason)."""
    stmt = select(
        LedgerEntry.journey_id,
        LedgerEntry.step_id,
        LedgerEntry.status,
        LedgerEntry.reason,
        func.count().label("n"),
    ).group_by(LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.status, LedgerEntry.reason)
    if journey_id is not None:
        stmt = stmt.where(LedgerEntry.journey_id == journey_id)
    stmt = stmt.order_by(LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.status, LedgerEntry.reason)
    return [LedgerCount(j, st, status, reason, int(n)) for j, st, status, reason, n in s.execute(stmt)]


# --- suppressions --------------------------------------------------------------------------------------
def suppress(
    s: Session,
    email: str,
    reason: str,
    scope: str = "all",
    customer_id: str | None = None,
    source: str = "system",
    detail: str | None = None,
) -> bool:
    """Stop sending to an address. Idempotent per (email, reason); an existing ``promotional``
    suppression is widened to ``all`` when asked, never narrowed. True if something changed."""
    _one_of(reason, SUPPRESSION_REASONS, "suppression reason")
    _one_of(scope, SUPPRESSION_SCOPES, "suppression scope")
    table = _table(Suppression)
    stmt = _insert(s, Suppression).values(
        email=normalise_email(email),
        customer_id=customer_id,
        reason=reason,
        scope=scope,
        source=source,
        detail=detail,
    )
    if scope == "all":
        stmt = stmt.on_conflict_do_update(
            index_elements=["email", "reason"], set_={"scope": "all"}, where=table.c.scope != "all"
        )
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=["email", "reason"])
    return s.execute(stmt.returning(table.c.id)).first() is not None


def is_suppressed(s: Session, email: str, promotional: bool) -> str | None:
    """The reason not to send to ``email``, or None. A promotional message is stopped by any suppression;
    a transactional one only by those of scope ``all``."""
    stmt = select(Suppression.reason).where(Suppression.email == normalise_email(email))
    if not promotional:
        stmt = stmt.where(Suppression.scope == "all")
    return s.scalars(stmt.order_by(Suppression.created_at, Suppression.id).limit(1)).first()


def suppressions_for(s: Session, customer_id: str) -> list[Suppression]:
    """Suppressions of a customer: recorded against them, or against their current address."""
    email = s.scalar(select(Customer.email).where(Customer.id == customer_id))
    cond: ColumnElement[bool] = Suppression.customer_id == customer_id
    if email:
        cond = or_(cond, Suppression.email == normalise_email(email))
    return list(s.scalars(select(Suppression).where(cond).order_by(Suppression.created_at, Suppression.id)))


# --- feedback ------------------------------------------------------------------------------------------
def save_feedback(
    s: Session, customer_id: str, order_id: str | None, survey: str, score: int, comment: str | None
) -> FeedbackResponse:
    """Record an answer; answering the same survey (for the same order) again replaces the answer."""
    _one_of(survey, SURVEYS, "survey")
    if not 0 <= score <= 10:
        raise ValueError(f"score must be between 0 and 10; got {score}")
    table = _table(FeedbackResponse)
    now = utcnow()
    stmt = _insert(s, FeedbackResponse).values(
        customer_id=customer_id,
        order_id=order_id,
        survey=survey,
        score=score,
        comment=comment,
        created_at=now,
        updated_at=now,
    )
    set_ = {"score": score, "comment": comment, "updated_at": now}
    same_order: ColumnElement[bool]
    if order_id is None:  # the partial unique index (NULLs are distinct in the UNIQUE constraint)
        stmt = stmt.on_conflict_do_update(
            index_elements=["customer_id", "survey"], index_where=table.c.order_id.is_(None), set_=set_
        )
        same_order = FeedbackResponse.order_id.is_(None)
    else:
        stmt = stmt.on_conflict_do_update(index_elements=["customer_id", "order_id", "survey"], set_=set_)
        same_order = FeedbackResponse.order_id == order_id
    s.execute(stmt)
    found = (
        select(FeedbackResponse)
        .where(FeedbackResponse.customer_id == customer_id, same_order, FeedbackResponse.survey == survey)
        .execution_options(populate_existing=True)
    )
    return s.scalars(found).one()


# --- support tickets -----------------------------------------------------------------------------------
def open_ticket(
    s: Session,
    ticket_id: str,
    customer_id: str,
    order_id: str | None,
    subject: str | None,
    category: str,
    source: str,
    opened_at: datetime | None = None,
) -> bool:
    """Open a ticket once per id (an external id, or one derived from the ledger key). True if new."""
    _one_of(category, TICKET_CATEGORIES, "ticket category")
    _one_of(source, TICKET_SOURCES, "ticket source")
    stmt = _insert(s, SupportTicket).values(
        id=ticket_id,
        customer_id=customer_id,
        order_id=order_id,
        subject=subject,
        category=category,
        status="open",
        source=source,
        opened_at=opened_at or utcnow(),
    )
    return (
        s.execute(stmt.on_conflict_do_nothing(index_elements=["id"]).returning(SupportTicket.id)).first()
        is not None
    )


def resolve_ticket(s: Session, ticket_id: str, at: datetime) -> bool:
    """Resolve an open ticket; True if it was open."""
    stmt = (
        update(SupportTicket)
        .where(SupportTicket.id == ticket_id, SupportTicket.status == "open")
        .values(status="resolved", resolved_at=_aware(at, "at"))
    )
    return _rowcount(s.execute(stmt)) == 1


def has_open_complaint(s: Session, customer_id: str) -> bool:
    """Resolve before you sell: promotional steps wait while this is True."""
    stmt = select(SupportTicket.id).where(
        SupportTicket.customer_id == customer_id,
        SupportTicket.category == "complaint",
        SupportTicket.status == "open",
    )
    return s.scalars(stmt.limit(1)).first() is not None


# --- referrals -----------------------------------------------------------------------------------------
def _new_code() -> str:
    return "".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_LENGTH))


def referral_code_for(s: Session, customer_id: str, journey_id: str | None) -> str:
    """The customer's referral code, created on first use (random, unguessable, retried on collision).
    A customer has one code whichever journey asks first."""
    existing = s.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
    if existing is not None:
        return existing
    for _ in range(8):
        code = _new_code()
        stmt = _insert(s, ReferralCode).values(code=code, customer_id=customer_id, journey_id=journey_id)
        stmt = stmt.on_conflict_do_nothing()  # either unique: the code, or the customer's one code
        if s.execute(stmt.returning(ReferralCode.code)).first() is not None:
            return code
        existing = s.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer_id))
        if existing is not None:  # another transaction created it meanwhile
            return existing
    raise RuntimeError("could not find a free referral code after 8 tries")


def attribute_referral(s: Session, code: str, order_id: str, referred_customer_id: str) -> bool:
    """Credit an order to the code's owner. Once per order; unknown codes and self-referrals are
    ignored. True if the conversion was recorded now."""
    owner = s.scalar(select(ReferralCode.customer_id).where(ReferralCode.code == code.strip().upper()))
    if owner is None or owner == referred_customer_id:
        return False
    stmt = _insert(s, ReferralConversion).values(
        code=code.strip().upper(), order_id=order_id, referred_customer_id=referred_customer_id
    )
    new = stmt.on_conflict_do_nothing(index_elements=["order_id"]).returning(ReferralConversion.id)
    return s.execute(new).first() is not None


# --- webhooks ------------------------------------------------------------------------------------------
def record_webhook_event(
    s: Session,
    sg_event_id: str,
    event: str,
    ledger_key: str | None,
    email: str | None,
    occurred_at: datetime,
    data: Mapping[str, Any],
) -> bool:
    """Remember a SendGrid webhook event by its ``sg_event_id``; False if it was seen before (SendGrid
    retries deliveries), in which case the caller does nothing."""
    stmt = _insert(s, WebhookEvent).values(
        sg_event_id=sg_event_id,
        event=event,
        ledger_key=ledger_key,
        email=normalise_email(email) if email else None,
        occurred_at=_aware(occurred_at, "occurred_at"),
        received_at=utcnow(),
        data=dict(data),
    )
    new = stmt.on_conflict_do_nothing(index_elements=["sg_event_id"]).returning(WebhookEvent.sg_event_id)
    return s.execute(new).first() is not None


# --- API keys ------------------------------------------------------------------------------------------
def _hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def create_api_key(s: Session, shop: str, label: str | None = None) -> str:
    """Create a key for ``shop`` and return its plaintext: the only time it is visible. Only its sha256 is
    stored (a random 256-bit key needs no slow hash)."""
    plaintext = "pv_" + secrets.token_urlsafe(32)
    s.add(ApiKey(shop=shop, key_hash=_hash_key(plaintext), label=label))
    s.flush()
    return plaintext


def check_api_key(s: Session, plaintext: str) -> str | None:
    """The shop a key belongs to, or None if unknown or revoked."""
    stmt = select(ApiKey.shop).where(ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None))
    return s.scalar(stmt)


def revoke_api_key(s: Session, plaintext: str, at: datetime | None = None) -> bool:
    stmt = (
        update(ApiKey)
        .where(ApiKey.key_hash == _hash_key(plaintext), ApiKey.revoked_at.is_(None))
        .values(revoked_at=at or utcnow())
    )
    return _rowcount(s.execute(stmt)) == 1

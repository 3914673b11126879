"""The plain data the store hands to the use cases, and the ledger's rules.

Rows cross the store port as frozen dataclasses or plain mappings (the engine's facts), never as ORM
objects: a use case cannot write to the database except through a store method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

#: A customer, order or event as the engine and the templates read it (``customer.*``, ``order.*``…).
Fact = dict[str, Any]

#: Allowed ledger moves: pending → sending → sent | failed | skipped, sending → unknown. ``pending →
#: skipped | failed`` decides without attempting (suppressed, no address). Statuses move forward, with
#: deliberate exceptions, each guarded where it is used:
#:
#: * ``sending → pending`` when nothing was sent (a *definite* transient refusal such as HTTP 429, or a
#:   hold), with ``not_before`` set;
#: * ``unknown → sent | failed | pending | skipped``: the answer of the attempt itself, arriving after
#:   its lease expired (the row had become ``unknown``), is definitive and wins — guarded by the attempt
#:   id, so a late answer of an old attempt never overwrites a newer one; evidence from the provider's
#:   webhook (``processed``, ``bounce``…) settles it too;
#: * ``unknown → pending`` otherwise only by an explicit decision: ``posventa retry --unknown`` (it may
#:   duplicate: the provider may have the message) or the opt-in timer
#:   ``POSVENTA_RESEND_UNKNOWN_AFTER_MINUTES``;
#: * ``failed → pending`` by an operator only (:data:`OPERATOR_ONLY`): ``posventa retry`` requeues a send
#:   the provider rejected (401 after a revoked key…) once the cause is fixed.
#:
#: An *ambiguous* outcome goes to ``unknown``; it is never re-queued by a timer unless asked to.
LEDGER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"sending", "skipped", "failed"}),
    "sending": frozenset({"sent", "failed", "skipped", "unknown", "pending"}),
    "unknown": frozenset({"sent", "failed", "pending", "skipped"}),
    "sent": frozenset(),
    "failed": frozenset({"pending"}),
    "skipped": frozenset(),
}

#: Moves only an operator may ask for (``actor="operator"``): a worker never turns a failure back.
OPERATOR_ONLY: frozenset[tuple[str, str]] = frozenset({("failed", "pending")})


def ledger_key(enrollment_id: int, effect_key: str) -> str:
    """The derived idempotency key of one effect, ``enrollment:step:occurrence``: a retried advance
    computes the same key, and the ledger's unique index turns the retry into nothing."""
    return f"{enrollment_id}:{effect_key}"


class Move(NamedTuple):
    """One ledger row's guarded transition (``UPDATE … WHERE key = :k AND status IN (:from)``)."""

    key: str
    to_status: str
    reason: str | None = None
    provider_message_id: str | None = None
    not_before: datetime | None = None


class StateChange(NamedTuple):
    """What the engine decided for one enrollment, written with the rest of its batch
    (:meth:`app.ports.Enrollments.save_states`); ``ended_at`` None keeps the stored value."""

    enrollment_id: int
    state: Mapping[str, Any]
    status: str
    next_due_at: datetime | None
    ended_at: datetime | None


class NewEnrollment(NamedTuple):
    """One enrollment to create unless its ``(journey_id, entry_key)`` exists
    (:meth:`app.ports.Enrollments.create_many`)."""

    journey_id: str
    plan_version: str
    customer_id: str
    order_id: str | None
    entry_key: str
    state: Mapping[str, Any]
    next_due_at: datetime | None
    entered_at: datetime


@dataclass(frozen=True)
class EnrollmentRecord:
    """One customer's place in one journey (the engine's serialised ``state`` and when to look again)."""

    id: int
    journey_id: str
    plan_version: str
    customer_id: str
    order_id: str | None
    status: str
    state: Mapping[str, Any]
    next_due_at: datetime | None
    entered_at: datetime
    attempts: int
    last_error: str | None


@dataclass(frozen=True)
class LedgerWork:
    """A ledger row claimed for delivery (already ``sending``): what to send or call, to whom."""

    key: str
    journey_id: str
    step_id: str
    kind: str  # message | action
    customer_id: str
    template: str | None
    category: str | None
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class LedgerRecord:
    """A ledger row as ops and the webhook see it."""

    key: str
    journey_id: str
    step_id: str
    kind: str
    customer_id: str
    status: str
    reason: str | None
    category: str | None
    template: str | None
    payload: Mapping[str, Any]
    sent_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True)
class LedgerChange:
    """One line of a ledger row's history: the status it moved to, when, by whom, in which attempt."""

    at: datetime
    status: str
    actor: str
    attempt_id: str | None
    reason: str | None


@dataclass(frozen=True)
class LedgerGroup:
    """Ledger rows counted by journey, step and reason (``posventa retry --dry-run``, ``unknown`` sends
    awaiting a decision)."""

    journey_id: str
    step_id: str
    reason: str | None
    count: int
    oldest: datetime


@dataclass(frozen=True)
class RequeueFilter:
    """Which rows ``posventa retry`` requeues: ``failed`` rows the provider rejected (or that were never
    attempted: a render error), or ``unknown`` rows. ``reason`` is a case-insensitive substring of the
    row's reason; ``since`` compares with the time the row reached its status."""

    status: str = "failed"  # failed | unknown
    journey: str | None = None
    step: str | None = None
    reason: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class SuppressionRecord:
    email: str
    customer_id: str | None
    reason: str
    scope: str
    source: str
    detail: str | None
    created_at: datetime


@dataclass(frozen=True)
class FeedbackRecord:
    customer_id: str
    order_id: str | None
    survey: str
    score: int
    comment: str | None


@dataclass(frozen=True)
class ReferralFigures:
    """The raw figures of the referral report: clicks per referrer, conversions and revenue per code,
    and every code with its owner and the journey that created it."""

    clicks_by_owner: Mapping[str, int]
    conversions_by_code: Mapping[str, tuple[int, float]]
    codes: list[tuple[str, str, str | None]]  # (code, owner, journey)


@dataclass(frozen=True)
class AdminRecord:
    """An admin user of the ``/admin`` area; ``password_hash`` is the stored scrypt hash (app.passwords)."""

    id: int
    username: str
    password_hash: str
    created_at: datetime
    password_changed_at: datetime
    last_login_at: datetime | None


@dataclass(frozen=True)
class DeferralRecord:
    """A message that waited when due (quiet hours, frequency cap, complaint hold), as the advance saw it
    at ``at``: the message is (enrollment, step, occurrence); ``until`` is when the engine looks again."""

    enrollment_id: int
    journey_id: str
    step_id: str
    occurrence: int
    reason: str
    at: datetime
    until: datetime


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to a customer (the admin area's timeline). ``kind``: ``event`` (the event
    log), ``enrollment`` (entered a journey), ``message`` / ``action`` (a ledger row), ``deferral`` (a message
    that waited: ``status`` says why), ``email`` (a SendGrid event on one of their messages), ``answer`` (a
    survey answer), ``ticket`` (opened or resolved)."""

    at: datetime
    kind: str
    what: str
    journey_id: str | None = None
    status: str | None = None
    detail: str | None = None
    order_id: str | None = None

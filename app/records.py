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
#: skipped | failed`` decides without attempting (suppressed, no address). Statuses only move forward, with
#: one deliberate exception: ``sending → pending`` when nothing was sent (a *definite* transient refusal
#: such as HTTP 429, or a hold), with ``not_before`` set. An *ambiguous* outcome goes to ``unknown`` and is
#: reconciled to ``sent`` or ``failed``, never re-queued blindly.
LEDGER_TRANSITIONS: Mapping[str, frozenset[str]] = {
    "pending": frozenset({"sending", "skipped", "failed"}),
    "sending": frozenset({"sent", "failed", "skipped", "unknown", "pending"}),
    # unknown → pending: released for a resend once the reconciliation window passed without evidence
    # (POSVENTA_RECONCILE_AFTER_MINUTES). Deliberate: a customer missing a message forever is worse than
    # a rare duplicate after an hour of provider silence.
    "unknown": frozenset({"sent", "failed", "pending"}),
    "sent": frozenset(),
    "failed": frozenset(),
    "skipped": frozenset(),
}


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

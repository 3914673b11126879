"""Enrollments: a customer's place in a journey. Entry rules are a unique ``(journey_id, entry_key)``;
due enrollments are claimed with ``FOR UPDATE SKIP LOCKED`` so workers get disjoint batches."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.records import EnrollmentRecord
from infra.db.models import LIVE_ENROLLMENT_STATUSES, Enrollment
from infra.db.store._base import Repo, aware
from infra.db.store.journeys import held_journeys

LIVE = LIVE_ENROLLMENT_STATUSES


def record(e: Enrollment) -> EnrollmentRecord:
    return EnrollmentRecord(
        id=e.id,
        journey_id=e.journey_id,
        plan_version=e.plan_version,
        customer_id=e.customer_id,
        order_id=e.order_id,
        status=e.status,
        state=dict(e.state or {}),
        next_due_at=e.next_due_at,
        entered_at=e.entered_at,
        attempts=e.attempts,
        last_error=e.last_error,
    )


class Enrollments(Repo):
    def __init__(self, s: Session) -> None:
        super().__init__(s)
        #: The rows this transaction claimed, held strongly (the session only holds them weakly): their
        #: new state is written by the flush at commit, in one batch, with no SELECT per row.
        self._claimed: dict[int, Enrollment] = {}

    def _row(self, enrollment_id: int) -> Enrollment:
        e = self._claimed.get(enrollment_id) or self.s.get(Enrollment, enrollment_id)
        assert e is not None, enrollment_id
        return e

    def create(
        self,
        journey_id: str,
        plan_version: str,
        customer_id: str,
        order_id: str | None,
        entry_key: str,
        state: Mapping[str, Any],
        next_due_at: datetime | None,
        entered_at: datetime,
    ) -> int | None:
        """Enroll a customer unless the journey's entry rule already let this ``entry_key`` in.

        Returns the new enrollment id, or None if (journey_id, entry_key) exists. The plan version must
        have been saved and the customer must exist: both are foreign keys.
        """
        stmt = self.insert_into(Enrollment).values(
            journey_id=journey_id,
            plan_version=plan_version,
            customer_id=customer_id,
            order_id=order_id,
            entry_key=entry_key,
            status="active",
            state=dict(state),
            next_due_at=next_due_at,
            attempts=0,
            entered_at=aware(entered_at, "entered_at"),
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["journey_id", "entry_key"])
        return self.s.execute(stmt.returning(Enrollment.id)).scalar_one_or_none()

    def last_entered(self, journey_id: str, customer_id: str) -> datetime | None:
        return self.s.scalar(
            select(func.max(Enrollment.entered_at)).where(
                Enrollment.journey_id == journey_id, Enrollment.customer_id == customer_id
            )
        )

    def count(self, journey_id: str, customer_id: str) -> int:
        stmt = (
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.journey_id == journey_id, Enrollment.customer_id == customer_id)
        )
        return int(self.s.scalar(stmt) or 0)

    def wake(self, customer_id: str, now: datetime) -> None:
        """Make the customer's live enrollments due now (an event may resolve a wait or an exit)."""
        self.s.execute(
            update(Enrollment)
            .where(
                Enrollment.customer_id == customer_id,
                Enrollment.status.in_(LIVE),
                or_(Enrollment.next_due_at.is_(None), Enrollment.next_due_at > now),
            )
            .values(next_due_at=now)
        )

    def claim_due(
        self, now: datetime, limit: int, journey: str | None, customer: str | None, force: bool
    ) -> list[EnrollmentRecord]:
        """Up to ``limit`` live enrollments due at ``now`` (any time with ``force``), oldest due first,
        locked until the transaction ends; rows another worker holds are skipped, not waited for."""
        q = select(Enrollment).where(Enrollment.status.in_(LIVE))
        q = q.where(Enrollment.journey_id.not_in(held_journeys()))  # a paused journey's steps wait
        if not force:
            q = q.where(Enrollment.next_due_at <= now)
        if journey:
            q = q.where(Enrollment.journey_id == journey)
        if customer:
            q = q.where(Enrollment.customer_id == customer)
        q = q.order_by(Enrollment.next_due_at, Enrollment.id).limit(limit).with_for_update(skip_locked=True)
        rows = list(self.s.scalars(q))
        self._claimed.update((e.id, e) for e in rows)
        return [record(e) for e in rows]

    def save_state(
        self,
        enrollment_id: int,
        state: Mapping[str, Any],
        status: str,
        next_due_at: datetime | None,
        ended_at: datetime | None,
    ) -> None:
        """What the engine decided (a success: the failure count starts again)."""
        e = self._row(enrollment_id)
        e.state, e.status, e.next_due_at = dict(state), status, next_due_at
        e.attempts, e.last_error = 0, None
        if ended_at is not None:
            e.ended_at = ended_at

    def record_failure(
        self, enrollment_id: int, attempts: int, error: str, status: str, next_due_at: datetime | None
    ) -> None:
        e = self._row(enrollment_id)
        e.attempts, e.last_error, e.status, e.next_due_at = attempts, error[:2000], status, next_due_at

    def count_due(self, now: datetime, journey: str | None) -> int:
        q = (
            select(func.count())
            .select_from(Enrollment)
            .where(Enrollment.status.in_(LIVE), Enrollment.next_due_at <= now)
        )
        if journey:
            q = q.where(Enrollment.journey_id == journey)
        return int(self.s.scalar(q) or 0)

    def for_customer(self, customer_id: str) -> list[EnrollmentRecord]:
        stmt = (
            select(Enrollment)
            .where(Enrollment.customer_id == customer_id)
            .order_by(Enrollment.entered_at, Enrollment.id)
        )
        return [record(e) for e in self.s.scalars(stmt)]

    def states_for_customer(self, customer_id: str, *, lock_live: bool) -> list[Mapping[str, Any]]:
        """The engine states of all the customer's enrollments. ``lock_live``: the live ones are locked
        until the transaction ends, so a sweep advancing one of them either committed already or waits."""
        live = select(Enrollment).where(Enrollment.customer_id == customer_id, Enrollment.status.in_(LIVE))
        if lock_live:
            live = live.with_for_update()
        states = [e.state or {} for e in self.s.scalars(live.execution_options(populate_existing=True))]
        ended = select(Enrollment.state).where(
            Enrollment.customer_id == customer_id, Enrollment.status.not_in(LIVE)
        )
        return states + [st or {} for st in self.s.scalars(ended)]

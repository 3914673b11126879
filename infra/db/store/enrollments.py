"""Enrollments: a customer's place in a journey. Entry rules are a unique ``(journey_id, entry_key)``;
due enrollments are claimed with ``FOR UPDATE SKIP LOCKED`` so workers get disjoint batches."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, String, Text, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from app.records import EnrollmentRecord, NewEnrollment, StateChange
from infra.db.models import LIVE_ENROLLMENT_STATUSES, Enrollment
from infra.db.store._base import Repo, aware, table
from infra.db.store.journeys import held_journeys
from infra.db.types import JSONType, UTCDateTime

LIVE = LIVE_ENROLLMENT_STATUSES
_E = table(Enrollment)
#: What a claim reads: the record's columns, as rows (no ORM objects to build, track and flush).
_RECORD = (
    Enrollment.id,
    Enrollment.journey_id,
    Enrollment.plan_version,
    Enrollment.customer_id,
    Enrollment.order_id,
    Enrollment.status,
    Enrollment.state,
    Enrollment.next_due_at,
    Enrollment.entered_at,
    Enrollment.attempts,
    Enrollment.last_error,
)


def record(e: Any) -> EnrollmentRecord:
    """From an :class:`Enrollment` or a row of its columns."""
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


def _params(r: NewEnrollment) -> dict[str, Any]:
    return {
        "journey_id": r.journey_id,
        "plan_version": r.plan_version,
        "customer_id": r.customer_id,
        "order_id": r.order_id,
        "entry_key": r.entry_key,
        "status": "active",
        "state": dict(r.state),
        "next_due_at": r.next_due_at,
        "attempts": 0,
        "entered_at": aware(r.entered_at, "entered_at"),
    }


#: :meth:`Enrollments.wake_many`, built once (``updated_at`` is set by the column's ``onupdate``).
_WAKE = (
    update(_E)
    .where(
        _E.c.customer_id.in_(bindparam("ids", expanding=True)),
        _E.c.status.in_(LIVE),
        or_(_E.c.next_due_at.is_(None), _E.c.next_due_at > bindparam("wake_now", type_=UTCDateTime())),
    )
    .values(next_due_at=bindparam("wake_now", type_=UTCDateTime()))
)


class Enrollments(Repo):
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
        row = NewEnrollment(
            journey_id, plan_version, customer_id, order_id, entry_key, state, next_due_at, entered_at
        )
        return self.s.execute(self._insert(), _params(row)).scalar_one_or_none()

    def create_many(self, rows: Sequence[NewEnrollment]) -> None:
        """:meth:`create` of many enrollments, in one statement (ids are given in the order of ``rows``)."""
        if rows:
            self.s.execute(self._insert(), [_params(r) for r in rows])

    def _insert(self) -> Any:
        # RETURNING: a list of rows is one multi-row INSERT (insertmanyvalues), not a round trip per row.
        return self.insert_ignoring(Enrollment, ("journey_id", "entry_key"), returning=("id",))

    def histories(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[datetime | None, int]]:
        """:meth:`last_entered` and :meth:`count` of many (journey id, customer id), in one statement; a
        pair with no enrollment is absent."""
        if not pairs:
            return {}
        wanted = set(pairs)
        stmt = (
            select(
                Enrollment.journey_id, Enrollment.customer_id, func.max(Enrollment.entered_at), func.count()
            )
            .where(
                Enrollment.journey_id.in_(sorted({j for j, _ in wanted})),
                Enrollment.customer_id.in_(sorted({c for _, c in wanted})),
            )
            .group_by(Enrollment.journey_id, Enrollment.customer_id)
        )
        return {(j, c): (last, int(n)) for j, c, last, n in self.s.execute(stmt) if (j, c) in wanted}

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
        self.wake_many([customer_id], now)

    def wake_many(self, customer_ids: Sequence[str], now: datetime) -> None:
        """:meth:`wake` of many customers, in one statement."""
        if customer_ids:
            # Core: no ORM objects to synchronise (claims read rows)
            self.s.connection().execute(_WAKE, {"ids": sorted(set(customer_ids)), "wake_now": now})

    def claim_due(
        self, now: datetime, limit: int, journey: str | None, customer: str | None, force: bool
    ) -> list[EnrollmentRecord]:
        """Up to ``limit`` live enrollments due at ``now`` (any time with ``force``), oldest due first,
        locked until the transaction ends; rows another worker holds are skipped, not waited for."""
        q = select(*_RECORD).where(Enrollment.status.in_(LIVE))
        q = q.where(Enrollment.journey_id.not_in(held_journeys()))  # a paused journey's steps wait
        if not force:
            q = q.where(Enrollment.next_due_at <= now)
        if journey:
            q = q.where(Enrollment.journey_id == journey)
        if customer:
            q = q.where(Enrollment.customer_id == customer)
        q = q.order_by(Enrollment.next_due_at, Enrollment.id).limit(limit).with_for_update(skip_locked=True)
        return [record(e) for e in self.s.execute(q)]

    def save_state(
        self,
        enrollment_id: int,
        state: Mapping[str, Any],
        status: str,
        next_due_at: datetime | None,
        ended_at: datetime | None,
    ) -> None:
        """What the engine decided (a success: the failure count starts again)."""
        self.save_states([StateChange(enrollment_id, state, status, next_due_at, ended_at)])

    def save_states(self, changes: Sequence[StateChange]) -> None:
        """:meth:`save_state` for a batch, in one statement on PostgreSQL (``UPDATE … FROM unnest(…)``,
        arrays as parameters: compiled once whatever the batch size); an executemany on SQLite.
        ``ended_at`` None keeps the stored value; ``updated_at`` is stamped by the column's default."""
        if not changes:
            return
        conn = self.s.connection()
        if self.is_postgres:
            u = (
                func.unnest(
                    bindparam("ids", [c.enrollment_id for c in changes], type_=ARRAY(BigInteger())),
                    bindparam("states", [json.dumps(dict(c.state)) for c in changes], type_=ARRAY(Text())),
                    bindparam("statuses", [c.status for c in changes], type_=ARRAY(String())),
                    bindparam("dues", [c.next_due_at for c in changes], type_=ARRAY(DateTime(timezone=True))),
                    bindparam("ends", [c.ended_at for c in changes], type_=ARRAY(DateTime(timezone=True))),
                )
                .table_valued("id", "state", "status", "due", "ended")
                .render_derived(name="changes")
            )
            stmt = (
                update(_E)
                .where(_E.c.id == u.c.id)
                .values(
                    state=cast(u.c.state, JSONB),
                    status=u.c.status,
                    next_due_at=u.c.due,
                    attempts=0,
                    last_error=None,
                    ended_at=func.coalesce(u.c.ended, _E.c.ended_at),
                )
            )
            conn.execute(stmt)
            return
        stmt = (
            update(_E)
            .where(_E.c.id == bindparam("b_id"))
            .values(
                state=bindparam("b_state", type_=JSONType),
                status=bindparam("b_status"),
                next_due_at=bindparam("b_due", type_=UTCDateTime()),
                attempts=0,
                last_error=None,
                ended_at=func.coalesce(bindparam("b_ended", type_=UTCDateTime()), _E.c.ended_at),
            )
        )
        rows = [
            {"b_id": c.enrollment_id, "b_state": dict(c.state), "b_status": c.status}
            | {"b_due": c.next_due_at, "b_ended": c.ended_at}
            for c in changes
        ]
        conn.execute(stmt, rows)

    def record_failure(
        self, enrollment_id: int, attempts: int, error: str, status: str, next_due_at: datetime | None
    ) -> None:
        values = {
            "attempts": attempts,
            "last_error": error[:2000],
            "status": status,
            "next_due_at": next_due_at,
        }
        self.s.connection().execute(update(_E).where(_E.c.id == enrollment_id).values(**values))

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
            .execution_options(populate_existing=True)
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

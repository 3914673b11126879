"""Journeys as the marketer controls them: the live version new entrants get, the state (running, paused,
draining, stopped), the publications; and the journey-wide operations on enrollments — counting who sits
at which step, moving live enrollments to another version (``posventa migrate``), ending them all
(``posventa stop --exit``).

:func:`held_journeys` is the filter the sweep's claims apply (``enrollments.claim_due`` and
``ledger.claim_pending``): a paused journey's due enrollments and pending messages are not claimed, so
they wait — nothing is dropped — and go on when it resumes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update

from app.journey_state import HOLDING, JourneyControl, LiveEnrollment, Publication, StepCount
from infra.db.models import (
    JOURNEY_STATES,
    LIVE_ENROLLMENT_STATUSES,
    Enrollment,
    JourneyPublication,
    LedgerEntry,
)
from infra.db.models import JourneyControl as Row
from infra.db.store._base import Repo, aware, one_of, rowcount


def held_journeys() -> Select[Any]:
    """The ids of the journeys whose due work must wait (paused): a subquery for the claims."""
    return select(Row.journey_id).where(Row.state.in_(sorted(HOLDING)))


#: :meth:`Journeys.controls`: the columns as rows (no ORM objects to build), built once.
_CONTROLS = select(
    Row.journey_id, Row.live_version, Row.state, Row.reason, Row.published_at, Row.changed_at
).order_by(Row.journey_id)


def _control(r: Any) -> JourneyControl:
    return JourneyControl(r.journey_id, r.live_version, r.state, r.reason, r.published_at, r.changed_at)


def _publication(p: JourneyPublication) -> Publication:
    return Publication(p.journey_id, p.version, p.previous_version, p.kind, p.published_at)


class Journeys(Repo):
    # --- controls ----------------------------------------------------------------------------------
    def controls(self) -> list[JourneyControl]:
        """Every controlled journey, by id (a handful of rows: read once per transaction that needs it)."""
        return [_control(r) for r in self.s.execute(_CONTROLS)]

    def control(self, journey_id: str) -> JourneyControl | None:
        stmt = select(Row).where(Row.journey_id == journey_id).execution_options(populate_existing=True)
        row = self.s.scalars(stmt).one_or_none()
        return None if row is None else _control(row)

    def any_published(self) -> bool:
        stmt = select(func.count()).select_from(Row).where(Row.live_version.is_not(None))
        return bool(self.s.scalar(stmt))

    def set_live(
        self, journey_id: str, version: str, kind: str, now: datetime, *, only_if_unpublished: bool = False
    ) -> Publication | None:
        """Make ``version`` (already saved in ``journey_plans``) the one new entrants get; None if it
        already was (or, with ``only_if_unpublished``, if the journey had a live version)."""
        aware(now, "now")
        row = self.s.scalars(select(Row).where(Row.journey_id == journey_id).with_for_update()).one_or_none()
        if row is None:
            stmt = self.insert_into(Row).values(
                journey_id=journey_id,
                live_version=version,
                state="running",
                published_at=now,
                changed_at=now,
            )
            if self.s.execute(stmt.on_conflict_do_nothing().returning(Row.journey_id)).first() is None:
                return None  # another process published it first
            previous = None
        else:
            if row.live_version == version or (only_if_unpublished and row.live_version is not None):
                return None
            previous = row.live_version
            row.live_version, row.published_at, row.changed_at = version, now, now
        pub = JourneyPublication(
            journey_id=journey_id, version=version, previous_version=previous, kind=kind, published_at=now
        )
        self.s.add(pub)
        self.s.flush()
        return _publication(pub)

    def set_state(self, journey_id: str, state: str, reason: str | None, now: datetime) -> JourneyControl:
        """Pause, resume, drain or stop a journey (a row is created for a journey never published)."""
        one_of(state, JOURNEY_STATES, "state")
        values: dict[str, Any] = {"state": state, "reason": reason, "changed_at": aware(now, "now")}
        stmt = self.insert_into(Row).values(journey_id=journey_id, live_version=None, **values)
        self.s.execute(stmt.on_conflict_do_update(index_elements=["journey_id"], set_=values))
        found = self.control(journey_id)
        assert found is not None
        return found

    def publications(self, journey_id: str) -> list[Publication]:
        stmt = (
            select(JourneyPublication)
            .where(JourneyPublication.journey_id == journey_id)
            .order_by(JourneyPublication.published_at, JourneyPublication.id)
        )
        return [_publication(p) for p in self.s.scalars(stmt)]

    # --- the journey's enrollments -----------------------------------------------------------------
    def step_counts(self, journey_id: str) -> list[StepCount]:
        """Live enrollments per (pinned version, current step), counted in the database."""
        step = Enrollment.state["step"].as_string()
        stmt = (
            select(Enrollment.plan_version, step, func.count())
            .where(Enrollment.journey_id == journey_id, Enrollment.status.in_(LIVE_ENROLLMENT_STATUSES))
            .group_by(Enrollment.plan_version, step)
        )
        return [StepCount(v, s, int(n)) for v, s, n in self.s.execute(stmt)]

    def live_enrollments(self, journey_id: str, *, lock: bool) -> list[LiveEnrollment]:
        """The journey's live enrollments, oldest first; ``lock``: locked until the transaction ends (a
        worker advancing one finishes first; the sweep's ``SKIP LOCKED`` claims pass over them)."""
        stmt = (
            select(Enrollment)
            .where(Enrollment.journey_id == journey_id, Enrollment.status.in_(LIVE_ENROLLMENT_STATUSES))
            .order_by(Enrollment.id)
            .execution_options(populate_existing=True)
        )
        if lock:
            stmt = stmt.with_for_update()
        return [
            LiveEnrollment(e.id, e.customer_id, e.plan_version, dict(e.state or {}), e.next_due_at)
            for e in self.s.scalars(stmt)
        ]

    def move(self, moves: Sequence[Mapping[str, Any]]) -> None:
        """Re-pin enrollments: each move is ``{id, plan_version, state, next_due_at}`` (one bulk UPDATE by
        primary key). Their ids — and so their ledger keys — stay as they were."""
        if moves:
            self.s.execute(update(Enrollment), [dict(m) for m in moves])

    def end(self, ended: Sequence[Mapping[str, Any]], now: datetime) -> None:
        """End enrollments: each is ``{id, state}``; status ``exited``, nothing due."""
        rows = [
            {"id": e["id"], "state": e["state"], "status": "exited", "next_due_at": None, "ended_at": now}
            for e in ended
        ]
        if rows:
            self.s.execute(update(Enrollment), rows)

    def skip_pending(self, journey_id: str, reason: str, now: datetime) -> int:
        """The journey's messages and webhooks not yet attempted (``pending``) will not be: ``skipped``
        (the ledger's ``pending → skipped`` move). Rows already ``sending`` finish as they are."""
        stmt = (
            update(LedgerEntry)
            .where(LedgerEntry.journey_id == journey_id, LedgerEntry.status == "pending")
            .values(status="skipped", reason=reason, updated_at=aware(now, "now"))
            .execution_options(synchronize_session=False)
        )
        return rowcount(self.s.execute(stmt))

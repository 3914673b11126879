"""Deferrals: messages that waited instead of going out when due (quiet hours, frequency cap, complaint
hold), one row per message and reason (:class:`infra.db.models.Deferral`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import case

from app.records import DeferralRecord
from infra.db.models import Deferral
from infra.db.store._base import Repo, aware, one_of

_KEY = ("enrollment_id", "step_id", "occurrence", "reason")


class Deferrals(Repo):
    def record(self, rows: Sequence[DeferralRecord]) -> None:
        """Upsert on (enrollment, step, occurrence, reason): a new message-and-reason gets its row; one
        seen before moves ``last_at`` and ``until`` forward and counts a tick. Replaying the same deferral
        (the same ``at``) changes nothing, so a retried sweep never counts twice."""
        if not rows:
            return
        values = []
        for r in sorted(rows, key=lambda r: (r.enrollment_id, r.step_id, r.occurrence, r.reason)):
            one_of(r.reason, ("quiet_hours", "frequency_cap", "complaint_hold"), "deferral reason")
            values.append(
                {
                    "enrollment_id": r.enrollment_id,
                    "step_id": r.step_id,
                    "occurrence": r.occurrence,
                    "reason": r.reason,
                    "journey_id": r.journey_id,
                    "first_at": aware(r.at, "at"),
                    "last_at": r.at,
                    "until": aware(r.until, "until"),
                    "ticks": 1,
                }
            )
        stmt = self.insert_into(Deferral).values(values)
        later = stmt.excluded.last_at > Deferral.last_at
        self.s.execute(
            stmt.on_conflict_do_update(
                index_elements=list(_KEY),
                set_={
                    "ticks": case((later, Deferral.ticks + 1), else_=Deferral.ticks),
                    "until": case((later, stmt.excluded.until), else_=Deferral.until),
                    "last_at": case((later, stmt.excluded.last_at), else_=Deferral.last_at),
                },
            )
        )

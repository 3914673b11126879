"""Read-only figures for ops (:class:`app.ports.Health`): the due backlog and its age, ledger rows by
status, and why rows failed — for ``posventa status`` and the flow runs' summaries. Nothing here writes
or locks: a status probe must never hold up a sweep."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from infra.db.models import LIVE_ENROLLMENT_STATUSES, Enrollment, LedgerEntry
from infra.db.store._base import Repo, aware


class Health(Repo):
    def backlog(self, now: datetime) -> tuple[int, datetime | None]:
        """How many live enrollments are due at ``now``, and since when the oldest of them is."""
        count, oldest = self.s.execute(
            select(func.count(), func.min(Enrollment.next_due_at)).where(
                Enrollment.status.in_(LIVE_ENROLLMENT_STATUSES),
                Enrollment.next_due_at <= aware(now, "now"),
            )
        ).one()
        return int(count or 0), oldest

    def ledger_counts(self, statuses: Sequence[str], *, since: datetime | None = None) -> dict[str, int]:
        """Ledger rows (messages and journey webhooks) per status, zero for a status without rows; with
        ``since``, only the rows that reached their status since then."""
        q = select(LedgerEntry.status, func.count()).where(LedgerEntry.status.in_(tuple(statuses)))
        if since is not None:
            q = q.where(LedgerEntry.updated_at >= aware(since, "since"))
        found = dict(self.s.execute(q.group_by(LedgerEntry.status)).all())
        return {status: int(found.get(status, 0)) for status in statuses}

    def latest(self, status: str, *, reason_prefixes: Sequence[str] = ()) -> datetime | None:
        """When a ledger row last reached ``status`` (with a reason starting with one of
        ``reason_prefixes``, when given); None if no row ever did."""
        q = select(func.max(LedgerEntry.updated_at)).where(LedgerEntry.status == status)
        if reason_prefixes:
            q = q.where(or_(*(LedgerEntry.reason.startswith(p, autoescape=True) for p in reason_prefixes)))
        found: datetime | None = self.s.execute(q).scalar_one_or_none()
        return found if found is None or found.tzinfo else found.replace(tzinfo=UTC)

    def reasons(
        self,
        statuses: Sequence[str],
        *,
        moved_at: datetime | None = None,
        since: datetime | None = None,
        limit: int = 50,
    ) -> list[tuple[str, str, str, str | None, int]]:
        """``(journey, step, status, reason, n)`` for ledger rows in ``statuses``, most frequent first;
        with ``moved_at``, only the rows a run stamped with that instant (its ``now``); with ``since``,
        only the rows that reached their status since then."""
        q = select(
            LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.status, LedgerEntry.reason, func.count()
        ).where(LedgerEntry.status.in_(tuple(statuses)))
        if moved_at is not None:
            q = q.where(LedgerEntry.updated_at == aware(moved_at, "moved_at"))
        if since is not None:
            q = q.where(LedgerEntry.updated_at >= aware(since, "since"))
        q = q.group_by(LedgerEntry.journey_id, LedgerEntry.step_id, LedgerEntry.status, LedgerEntry.reason)
        q = q.order_by(func.count().desc(), LedgerEntry.journey_id, LedgerEntry.step_id).limit(limit)
        return [(j, s, st, r, int(n)) for j, s, st, r, n in self.s.execute(q).all()]

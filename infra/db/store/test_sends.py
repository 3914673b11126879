"""Test messages (``posventa send-test``): recorded apart from the ledger, counted for the rate limit."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update

from infra.db.models import SendTestLog
from infra.db.store._base import Repo, aware


class SendTests(Repo):
    def record(
        self, journey_id: str, step_id: str, to_email: str, outcome: str, detail: str | None, at: datetime
    ) -> int:
        row = SendTestLog(
            journey_id=journey_id,
            step_id=step_id,
            to_email=to_email,
            outcome=outcome,
            detail=(detail or None) and detail[:2000],
            sent_at=aware(at, "at"),
        )
        self.s.add(row)
        self.s.flush()
        return row.id

    def finish(self, row_id: int, outcome: str, detail: str | None) -> None:
        self.s.execute(
            update(SendTestLog)
            .where(SendTestLog.id == row_id)
            .values(outcome=outcome, detail=(detail or None) and detail[:2000])
        )

    def since(self, since: datetime) -> list[datetime]:
        """When each test message since ``since`` was sent, oldest first (the rate limit's window)."""
        stmt = select(SendTestLog.sent_at).where(SendTestLog.sent_at > since).order_by(SendTestLog.sent_at)
        return list(self.s.scalars(stmt))

    def count(self) -> int:
        return int(self.s.scalar(select(func.count()).select_from(SendTestLog)) or 0)

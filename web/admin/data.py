"""What the /admin pages show, read from the database in one read transaction each (run in the thread
pool): the journeys with their live counts, a journey's funnel and diagram, the report. The numbers come
from ``infra.db.metrics`` and ``infra.report`` — the same queries as ``posventa report`` — never
recomputed here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from app.services import Services
from infra.db import metrics
from infra.db.metrics import Scope

LIVE = ("active", "waiting", "held")


@contextmanager
def read_session(services: Services) -> Iterator[Session]:
    """A read-only SQLAlchemy session of the services' store (the report's queries take one)."""
    with services.store.read() as tx:
        session = getattr(tx, "session", None)
        if not isinstance(session, Session):
            raise TypeError("the admin pages need the SQL store")
        yield session


@dataclass(frozen=True)
class JourneyRow:
    journey_id: str
    name: str | None
    state: str | None  # None: never published
    live_version: str | None
    statuses: dict[str, int]
    revenue: float

    @property
    def entered(self) -> int:
        return sum(self.statuses.values())

    @property
    def live(self) -> int:
        return sum(self.statuses.get(s, 0) for s in LIVE)

    @property
    def converted(self) -> int:
        return self.statuses.get("converted", 0)


def journeys(services: Services, now: datetime) -> list[JourneyRow]:
    """Every journey the database knows (published, stored or with enrollments), with its enrollments by
    status right now since the start."""
    with services.store.read() as tx:
        controls = {c.journey_id: c for c in tx.journeys.controls()}
    with read_session(services) as s:
        totals = metrics.journey_totals(s, Scope(None, None, None, now))
        plans = metrics.latest_plans(s)
        known = metrics.known_journeys(s)
    rows = []
    for j in sorted(known | set(controls) | set(totals)):
        control, total = controls.get(j), totals.get(j)
        name = plans.get(j, {}).get("name")
        rows.append(
            JourneyRow(
                journey_id=j,
                name=name if isinstance(name, str) else None,
                state=control.state if control else None,
                live_version=control.live_version if control else None,
                statuses=dict(total.statuses) if total else {},
                revenue=total.revenue if total else 0.0,
            )
        )
    return rows

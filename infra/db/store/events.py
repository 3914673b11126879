"""The event log: every accepted event once (its id is the idempotency key), read back as the engine's
facts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.records import Fact
from infra.db.models import EVENT_SOURCES, StoredEvent
from infra.db.store._base import Repo, aware, one_of
from infra.db.types import utcnow
from posventa.events import Event

#: The columns a fact reads: selected as rows by the batch reader (no ORM objects to build and track).
_FACT = (
    StoredEvent.id,
    StoredEvent.type,
    StoredEvent.customer_id,
    StoredEvent.occurred_at,
    StoredEvent.order_id,
    StoredEvent.data,
)


def event_fact(e: Any) -> Fact:
    """From a :class:`StoredEvent` or a row of :data:`_FACT`."""
    return {
        "id": e.id,
        "type": e.type,
        "occurred_at": e.occurred_at,
        "order_id": e.order_id,
        "data": dict(e.data or {}),
    }


def _row(event: Event, source: str, received_at: datetime) -> dict[str, Any]:
    return {
        "id": event.id,
        "type": event.type,
        "customer_id": event.customer_id,
        "order_id": event.order_id,
        "occurred_at": aware(event.occurred_at, "occurred_at"),
        "received_at": received_at,
        "source": source,
        "data": dict(event.data),
    }


class Events(Repo):
    def record(self, event: Event, source: str) -> bool:
        """Store an event once (its ``id`` is the idempotency key). True if it was new."""
        one_of(source, EVENT_SOURCES, "event source")
        new = self.insert_ignoring(StoredEvent, returning=("id",))
        return self.s.execute(new, _row(event, source, utcnow())).first() is not None

    def record_many(self, events: Sequence[Event], source: str) -> set[str]:
        """:meth:`record` of events with distinct ids, in one statement; returns the ids that were new."""
        one_of(source, EVENT_SOURCES, "event source")
        if not events:
            return set()
        at = utcnow()
        stmt = self.insert_ignoring(StoredEvent, returning=("id",))
        rows = self.s.execute(stmt, [_row(ev, source, at) for ev in events])
        return set(rows.scalars())

    def for_customers(
        self, customer_ids: Sequence[str], since: datetime, until: datetime
    ) -> dict[str, list[Fact]]:
        """Each customer's events in ``[since, until]``, in the order they happened."""
        out: dict[str, list[Fact]] = defaultdict(list)
        stmt = (
            select(*_FACT)
            .where(
                StoredEvent.customer_id.in_(sorted(set(customer_ids))),
                StoredEvent.occurred_at >= since,
                StoredEvent.occurred_at <= until,
            )
            .order_by(StoredEvent.occurred_at, StoredEvent.id)
        )
        for ev in self.s.execute(stmt):
            out[ev.customer_id].append(event_fact(ev))
        return dict(out)

    def data(self, event_id: str) -> dict[str, Any] | None:
        stored = self.s.get(StoredEvent, event_id, populate_existing=True)
        return None if stored is None else dict(stored.data or {})

    def set_data(self, event_id: str, data: Mapping[str, Any]) -> None:
        stored = self.s.get(StoredEvent, event_id)
        if stored is not None:
            stored.data = dict(data)

"""Small builders shared by the database tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from infra.db import store
from posventa.events import CustomerIn, Event, parse_event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PLAN = {"journey": "post_purchase", "steps": [{"id": "thanks", "type": "send_email"}]}


def event(event_id: str, type_: str = "order.placed", customer_id: str = "c1", **extra: Any) -> Event:
    raw: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "occurred_at": extra.pop("occurred_at", T0).isoformat(),
        "customer_id": customer_id,
    }
    if type_.startswith("order.") and "order_id" not in extra:
        raw["order_id"] = "o1"
    raw.update(extra)
    return parse_event(raw)


def customer(s: Session, customer_id: str = "c1", email: str | None = None) -> str:
    store.upsert_customer(s, CustomerIn(id=customer_id, email=email or f"{customer_id}@example.com"))
    return customer_id


def enrollment(
    s: Session,
    entry_key: str,
    *,
    customer_id: str = "c1",
    journey_id: str = "post_purchase",
    due: datetime | None = T0,
    status: str = "active",
) -> int:
    customer(s, customer_id)
    store.save_plan(s, journey_id, "v1", PLAN)
    new = store.create_enrollment(
        s,
        journey_id,
        "v1",
        customer_id,
        None,
        entry_key,
        {"at": "start"},
        due,
        T0 - timedelta(days=1),
        status=status,
    )
    assert new is not None
    return new

"""Small builders shared by the database tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from infra.db.store import SqlTx
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


def customer(tx: SqlTx, customer_id: str = "c1", email: str | None = None) -> str:
    tx.customers.upsert(CustomerIn(id=customer_id, email=email or f"{customer_id}@example.com"))
    return customer_id


def enrollment(
    tx: SqlTx,
    entry_key: str,
    *,
    customer_id: str = "c1",
    journey_id: str = "post_purchase",
    due: datetime | None = T0,
) -> int:
    customer(tx, customer_id)
    tx.plans.save(journey_id, "v1", PLAN)
    new = tx.enrollments.create(
        journey_id, "v1", customer_id, None, entry_key, {"at": "start"}, due, T0 - timedelta(days=1)
    )
    assert new is not None
    return new


def ledger_row(tx: SqlTx, enrollment_id: int, step: str = "thanks", **extra: Any) -> str:
    """A pending message row for ``enrollment_id`` (as advancing writes it); returns its key."""
    key = f"{enrollment_id}:{step}:0"
    row = {
        "key": key,
        "enrollment_id": enrollment_id,
        "journey_id": "post_purchase",
        "step_id": step,
        "occurrence": 0,
        "kind": "message",
        "channel": "email",
        "template": "thanks",
        "category": "transactional",
        "customer_id": "c1",
        "to_email": "c1@example.com",
        "status": "pending",
        "payload": {"locale": "es"},
        "created_at": T0,
        "updated_at": T0,
    }
    row.update(extra)
    tx.ledger.insert([row])
    return key

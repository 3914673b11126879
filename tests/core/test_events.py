"""The event catalogue: what the API and ``posventa ingest`` accept, and how they say no."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from posventa.errors import EventError
from posventa.events import EVENT_TYPES, ORDER_EVENTS, parse_event

WHEN = "2026-03-02T09:00:00+01:00"


def problems(raw: dict[str, Any]) -> list[str]:
    with pytest.raises(EventError) as info:
        parse_event(raw)
    assert str(info.value) == "; ".join(info.value.problems)
    return info.value.problems


def test_order_placed_with_inline_customer_and_order() -> None:
    event = parse_event(
        {
            "id": "shop-123",
            "type": "order.placed",
            "occurred_at": WHEN,
            "customer": {
                "id": "c1",
                "email": "ana@example.com",
                "name": "Ana Pérez",
                "locale": "es",
                "timezone": "Europe/Madrid",
                "birthday": "1990-05-01",
                "attributes": {"vip": True},
            },
            "order": {
                "id": "A-1001",
                "total": 59.9,
                "currency": "EUR",
                "promised_delivery_date": "2026-03-05",
                "items": [{"sku": "CEP-01", "name": "Cepillo", "price": 49.9, "warranty_months": 24}],
            },
        }
    )
    assert (event.customer_id, event.order_id, event.type) == ("c1", "A-1001", "order.placed")
    assert event.occurred_at == datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    assert event.customer is not None and event.customer.birthday == date(1990, 5, 1)
    assert event.order is not None and event.order.items[0].quantity == 1
    assert event.data == {}
    assert event.fact() == {
        "id": "shop-123",
        "type": "order.placed",
        "occurred_at": "2026-03-02T09:00:00+01:00",
        "order_id": "A-1001",
        "data": {},
    }


def test_ids_may_come_from_the_envelope() -> None:
    event = parse_event(
        {
            "id": "e2",
            "type": "feedback.submitted",
            "occurred_at": WHEN,
            "customer_id": "c1",
            "data": {"score": 9},
        }
    )
    assert (event.customer_id, event.order_id, event.data) == ("c1", None, {"score": 9, "survey": "nps"})


def test_unknown_type_with_hint() -> None:
    assert problems(
        {"id": "e1", "type": "order.shiped", "occurred_at": WHEN, "customer_id": "c1", "order_id": "o1"}
    ) == ["type: unknown event type 'order.shiped' (did you mean 'order.shipped'?)"]


def test_lists_every_problem_of_the_event() -> None:
    """Missing customer, a score of 11 and a misspelt payload field: all three, each with its path."""
    assert problems(
        {
            "id": "e1",
            "type": "feedback.submitted",
            "occurred_at": WHEN,
            "data": {"score": 11, "coment": "great"},
        }
    ) == [
        "customer_id: required (or a 'customer' object with an id)",
        "data.score: Input should be less than or equal to 10",
        "data.coment: unknown field",
    ]


def test_envelope_problems_together() -> None:
    """A naive datetime (whose zone would be a guess) and an unknown envelope field."""
    assert problems(
        {
            "id": "e1",
            "type": "order.placed",
            "occurred_at": "2026-03-02T09:00:00",
            "customer_id": "c1",
            "order_id": "o1",
            "colour": "red",
        }
    ) == [
        "occurred_at: Input should have timezone info",
        "colour: unknown field",
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"customer_id": "c1"}, ["order_id: required for 'order.placed' (or an 'order' object with an id)"]),
        (
            {"customer_id": "c1", "customer": {"id": "c2"}, "order_id": "o1", "order": {"id": "o2"}},
            ["customer.id: differs from customer_id", "order.id: differs from order_id"],
        ),
        (
            {"customer": {"id": "c1", "timezone": "Mars/Olympus"}, "order_id": "o1"},
            ["customer.timezone: 'Mars/Olympus' is not an IANA time zone (e.g. Europe/Madrid)"],
        ),
        (
            {"customer": {"id": "c1", "timezone": "Europe"}, "order_id": "o1"},  # a tzdata folder
            ["customer.timezone: 'Europe' is not an IANA time zone (e.g. Europe/Madrid)"],
        ),
        (
            {"customer": {"id": "c1", "email": "not-an-address"}, "order_id": "o1"},
            ["customer.email: String should match pattern '^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$'"],
        ),
        (
            {"customer_id": "c1", "order": {"id": "o1", "items": [{"sku": "X", "quantity": 0}]}},
            ["order.items.0.quantity: Input should be greater than or equal to 1"],
        ),
        ({"customer_id": "", "order_id": "o1"}, ["customer_id: String should have at least 1 character"]),
    ],
)
def test_order_placed_problems(raw: dict[str, Any], expected: list[str]) -> None:
    assert problems({"id": "e1", "type": "order.placed", "occurred_at": WHEN, **raw}) == expected


def test_payload_rules_per_type() -> None:
    assert problems(
        {
            "id": "e1",
            "type": "return.requested",
            "occurred_at": WHEN,
            "customer_id": "c1",
            "order_id": "o1",
            "data": {},
        }
    ) == ["data.rma_id: Field required"]
    assert problems(
        {
            "id": "e1",
            "type": "customer.unsubscribed",
            "occurred_at": WHEN,
            "customer_id": "c1",
            "data": {"scope": "everything"},
        }
    ) == ["data.scope: Input should be 'promotional' or 'all'"]
    delivered = parse_event(
        {
            "id": "e1",
            "type": "order.delivered",
            "occurred_at": WHEN,
            "customer_id": "c1",
            "order_id": "o1",
            "data": {"delivered_at": "2026-03-04T12:00:00Z"},
        }
    )
    assert delivered.data == {"delivered_at": "2026-03-04T12:00:00Z"}


def test_every_order_event_is_in_the_catalogue() -> None:
    assert set(EVENT_TYPES) >= ORDER_EVENTS


def test_zero_item_counts_mean_not_applicable() -> None:
    """Shops send 0 for "no warranty" or "not a consumable": accepted, and stored as not given."""
    raw = {
        "id": "e-zero",
        "type": "order.placed",
        "occurred_at": WHEN,
        "customer_id": "c1",
        "order": {"id": "A-2", "items": [{"sku": "CAM-05", "runs_out_in_days": 0, "warranty_months": 0}]},
    }
    event = parse_event(raw)
    assert event.order is not None
    item = event.order.items[0]
    assert (item.runs_out_in_days, item.warranty_months) == (None, None)
    assert "runs_out_in_days" not in item.model_dump(exclude_none=True)
    negative = {**raw, "order": {"id": "A-2", "items": [{"sku": "CAM-05", "warranty_months": -1}]}}
    assert problems(negative) == ["order.items.0.warranty_months: Input should be greater than or equal to 0"]

"""The journey rules of issue 15 in the runtime, on SQLite: in-store orders, stale events, waits that
start when the event happened, the frequency cap's look-back, entry conditions that count orders,
per-item date triggers, copies into customer attributes, returns that wait for their own parcel."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from uc_builders import T0, journey, ledger, make_services, next_due, order_placed

from app.services import Services
from infra.db import models as m
from posventa.plan import JourneyPlan

DAY = timedelta(days=1)


def run_until(svc: Services, until: datetime) -> None:
    """The sweep, at each moment an enrollment falls due, up to ``until`` (a virtual clock)."""
    for _ in range(500):
        due = next_due(svc)
        if due is None or due > until:
            return
        svc.sweep(due)
    raise AssertionError("the journeys did not come to rest")


def happen(svc: Services, when: datetime, *events: dict[str, Any]) -> None:
    """Time passes until ``when`` (sweeps at each due moment), then the events arrive and are swept."""
    run_until(svc, when)
    svc.ingest.apply(list(events), "api", when)
    svc.sweep(when)


def steps(svc: Services, **where: Any) -> list[tuple[str, str, str | None]]:
    return [(row.step_id, row.status, row.reason) for row in ledger(svc, **where)]


def enrollments(svc: Services) -> list[m.Enrollment]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        return list(s.scalars(select(m.Enrollment).order_by(m.Enrollment.id)))


@pytest.fixture
def services(sqlite_url: str, tmp_path: Path) -> Iterator[Any]:
    made: list[Services] = []

    def build(plans: dict[str, JourneyPlan], **config: Any) -> Services:
        svc = make_services(sqlite_url, tmp_path, plans, **config)
        made.append(svc)
        return svc

    yield build
    for svc in made:
        svc.store.dispose()  # type: ignore[attr-defined]


def store_order(cid: str, at: datetime = T0) -> dict[str, Any]:
    ev = order_placed(cid, at=at)
    ev["order"] = {**ev["order"], "channel": "store"}
    del ev["order"]["promised_delivery_date"]
    return ev


def test_an_in_store_order_gets_no_late_apology_and_no_ticket(services: Any, shipped: dict[str, Any]) -> None:
    """Nothing is delivered to a store customer: no "your order is late" on day 10, no complaint on day
    24 holding their promotions. A web order without a promised date still gets its ten days."""
    svc = services({"post_purchase": shipped["post_purchase"]})
    web = order_placed("luis")
    del web["order"]["promised_delivery_date"]
    svc.ingest.apply([store_order("ana"), web], "api", T0)
    run_until(svc, T0 + 40 * DAY)
    ana = [s for s, status, _ in steps(svc, customer_id="ana") if status == "sent"]
    assert ana[:2] == ["thank_you", "nps_survey"]
    assert "late_apology" not in ana and "delivery_check" not in ana
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        tickets = {t.customer_id for t in s.scalars(select(m.SupportTicket))}
    assert tickets == {"luis"}
    assert [s for s, st, _ in steps(svc, customer_id="luis") if st == "sent"][:2] == [
        "thank_you",
        "late_apology",
    ]


def test_an_event_older_than_stale_after_enrolls_nobody(services: Any, shipped: dict[str, Any]) -> None:
    svc = services({"post_purchase": shipped["post_purchase"]})
    report = svc.ingest.apply(
        [order_placed("old", at=T0 - 8 * DAY), order_placed("recent", at=T0 - 3 * DAY)], "import", T0
    )
    assert report.accepted == 2  # both recorded: the order history is kept
    [e] = enrollments(svc)
    assert e.customer_id == "recent"
    assert e.entered_at.replace(tzinfo=T0.tzinfo) == T0 - 3 * DAY  # the journey starts with the order
    svc.sweep(T0)
    # Three days late, the thank-you (which names the delivery date) expired; the journey goes on.
    assert steps(svc) == [("thank_you", "skipped", "expired")]


SIX_HOURS = """
name: Six hours later
trigger: {event: order.placed}
entry: {once_per: order}
steps:
  - {id: later, type: wait, duration: 6h}
  - {id: thanks, type: send, template: thank_you, category: transactional}
"""


def test_waits_start_when_the_event_happened(services: Any) -> None:
    svc = services({"six": journey(SIX_HOURS, "six")})
    svc.ingest.apply([order_placed("ana", at=T0 - timedelta(hours=5))], "api", T0)  # arrives 5 h late
    svc.sweep(T0)
    assert steps(svc) == []
    [e] = enrollments(svc)
    assert e.next_due_at is not None and e.next_due_at.replace(tzinfo=T0.tzinfo) == T0 + timedelta(hours=1)
    run_until(svc, T0 + DAY)
    [row] = ledger(svc)
    assert row.sent_at is not None and row.sent_at.replace(tzinfo=T0.tzinfo) == T0 + timedelta(hours=1)


QUARTERLY = """
name: Quarterly
trigger: {event: order.placed}
entry: {once_per: order}
policy:
  frequency_cap: {max: 1, per: 90d}
steps:
  - {id: tip, type: send, template: content_tip, category: promotional}
"""


def test_the_frequency_cap_looks_back_as_far_as_its_longest_window(services: Any) -> None:
    """``per: 90d`` holds in production as in simulate (the look-back used to stop at 60 days)."""
    svc = services({"quarterly": journey(QUARTERLY, "quarterly")})
    first = T0 - 70 * DAY
    svc.ingest.apply([order_placed("ana", "o-1", at=first)], "api", first)
    svc.sweep(first)
    svc.ingest.apply([order_placed("ana", "o-2", at=T0)], "api", T0)
    svc.sweep(T0)
    assert steps(svc) == [("tip", "sent", None)]
    [_, second] = enrollments(svc)
    assert second.next_due_at is not None
    assert second.next_due_at.replace(tzinfo=T0.tzinfo) == first + 90 * DAY
    run_until(svc, T0 + 30 * DAY)
    assert steps(svc) == [("tip", "sent", None), ("tip", "sent", None)]


FIRST_ORDER = """
name: First order only
trigger: {event: order.placed, when: "customer.orders_count == 1 and not customer.open_complaint"}
entry: {once_per: order}
steps:
  - {id: welcome, type: send, template: thank_you, category: transactional}
"""


def test_trigger_conditions_count_the_customers_orders(services: Any) -> None:
    svc = services({"first": journey(FIRST_ORDER, "first")})
    svc.ingest.apply([order_placed("ana", "o-1"), order_placed("ana", "o-2", at=T0 + DAY)], "api", T0 + DAY)
    assert [e.order_id for e in enrollments(svc)] == ["o-1"]


REFILL = """
name: Refill
trigger: {date: item.runs_out_on, offset: -5d}
entry: {once_per: item}
steps:
  - {id: remind, type: send, template: replenishment_reminder, category: promotional}
"""


def test_an_item_date_trigger_enrolls_per_item_with_its_item(services: Any) -> None:
    svc = services({"refill": journey(REFILL, "refill")})
    placed = order_placed("ana", at=T0 - 25 * DAY)
    placed["order"]["items"] = [
        {"sku": "CEP-01", "name": "Cepillo", "price": 30, "runs_out_in_days": 90, "warranty_months": 0},
        {"sku": "MER-02", "name": "Mermelada", "price": 6, "runs_out_in_days": 30},
        {"sku": "CAM-05", "name": "Camiseta", "price": 20, "runs_out_in_days": 0},
    ]
    svc.ingest.apply([placed], "api", T0 - 25 * DAY)
    assert svc.enroll.scheduled(T0).rows[("refill", "(entry)", "enrolled")] == 1  # the jam: 30 − 25 − 5
    assert svc.enroll.scheduled(T0 + DAY).rows[("refill", "(entry)", "enrolled")] == 0
    assert svc.enroll.scheduled(T0 + 60 * DAY).rows[("refill", "(entry)", "enrolled")] == 1  # the brush
    keys = [(e.entry_key, e.state["item"]) for e in enrollments(svc)]
    assert keys == [("item:o-ana:MER-02", "MER-02"), ("item:o-ana:CEP-01", "CEP-01")]
    svc.sweep(T0 + 60 * DAY)
    items = [row.payload["item"] for row in ledger(svc)]
    assert [(i["sku"], i["runs_out_on"]) for i in items] == [
        ("MER-02", "2026-03-07"),
        ("CEP-01", "2026-05-06"),
    ]


def _return(kind: str, rma: str, at: datetime, **data: Any) -> dict[str, Any]:
    return {
        "id": f"{kind}-{rma}",
        "type": kind,
        "occurred_at": at.isoformat(),
        "customer_id": "ana",
        "order_id": "o-ana",
        "data": {"rma_id": rma, **data},
    }


COPY = """
name: Remember the return
trigger: {event: return.requested}
entry: {once_per: occurrence}
steps:
  - id: remember
    type: action
    set_attribute: {last_rma: {from: event.data.rma_id}, last_reason: {from: event.data.reason}, seen: true}
"""


def test_each_return_waits_for_its_own_parcel(services: Any, shipped: dict[str, Any]) -> None:
    """Two returns of one order: the first parcel confirms the first refund only; and a journey copies
    event data into the customer's attributes."""
    svc = services({"returns": shipped["returns"], "copy": journey(COPY, "copy")})
    happen(svc, T0, order_placed("ana"))
    happen(svc, T0 + DAY, _return("return.requested", "RMA-1", T0 + DAY))
    happen(svc, T0 + 2 * DAY, _return("return.requested", "RMA-2", T0 + 2 * DAY, reason="size"))
    happen(svc, T0 + 5 * DAY, _return("return.received", "RMA-1", T0 + 5 * DAY, refund_amount=30))
    run_until(svc, T0 + 6 * DAY)
    refunds = [row for row in ledger(svc, step_id="refund_confirmation")]
    assert [r.payload["trigger_event"]["data"]["rma_id"] for r in refunds] == ["RMA-1"]
    assert refunds[0].payload["event"]["data"]["rma_id"] == "RMA-1" and refunds[0].payload["visit"] == 1
    with svc.store.read() as tx:
        customer = tx.customers.fact("ana")
    assert customer is not None
    assert customer["attributes"] == {"last_rma": "RMA-2", "last_reason": "size", "seen": True}

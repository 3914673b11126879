"""``posventa simulate`` and the runtime agree: the same scripted timeline, fed to the simulator and to the
real use cases on SQLite (the file outbox, a virtual clock that ingests each event when it happens, runs
the nightly enrollment at 02:00 UTC and sweeps at every moment something is due), gives the same
messages — journey, step, customer, time to the minute — and the same skipped steps.

The timeline exercises what used to differ: in-store orders, late and missing deliveries, NPS answers of
every kind, a complaint ticket opened by the shop (it holds promotions until resolved), an unsubscribe,
a second order (re-entry), two returns of one order, a birthday, run-out and warranty dates, a customer
without an address, times written with offsets, order facts given only by the script.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from uc_builders import make_services, next_due

from app.services import Services
from infra.db import models as m
from infra.db.testing import migrated_sqlite_url
from posventa.plan import JourneyPlan
from posventa.simulate import EPOCH, NIGHTLY_HOUR, load_script, script_events, simulate

DAYS = 75
MADRID_EN = {"locale": "en", "timezone": "Europe/Madrid", "name": "Emma Brown"}
ITEMS = [
    {"sku": "CEP-01", "name": "Cepillo", "price": 30, "runs_out_in_days": 20, "warranty_months": 1},
    {"sku": "MER-02", "name": "Mermelada", "price": 6, "runs_out_in_days": 0},
]
LINES: list[dict[str, Any]] = [
    # c1: delivered on time, a promoter: referral ask, then the content emails (quiet hours, the cap).
    {
        "customer": "c1",
        "at": "0d",
        "type": "order.placed",
        "order_id": "A-1",
        "profile": MADRID_EN,
        "order": {"promised_delivery_date": "2026-01-09", "total": 30, "items": ITEMS},
    },
    {"customer": "c1", "at": "2d", "type": "order.shipped", "order_id": "A-1"},
    {"customer": "c1", "at": "2026-01-07T18:30:00+01:00", "type": "order.delivered", "order_id": "A-1"},
    {"customer": "c1", "at": "10d2h", "type": "feedback.submitted", "data": {"score": 10}},
    # c2: Mexico City, a detractor: ticket, apology, no promotions.
    {
        "customer": "c2",
        "at": "3h",
        "type": "order.placed",
        "order_id": "B-1",
        "profile": {"timezone": "America/Mexico_City"},
        "order": {"promised_delivery_date": "2026-01-08"},
    },
    {"customer": "c2", "at": "3d", "type": "order.delivered", "order_id": "B-1"},
    {"customer": "c2", "at": "11d", "type": "feedback.submitted", "order_id": "B-1", "data": {"score": 2}},
    # c3: bought in the store: nothing to deliver, never answers.
    {
        "customer": "c3",
        "at": "1d5h",
        "type": "order.placed",
        "order_id": "S-1",
        "order": {"channel": "store"},
    },
    # c4: never delivered: the apology, then a ticket and the end.
    {
        "customer": "c4",
        "at": "0d",
        "type": "order.placed",
        "order_id": "D-1",
        "order": {"promised_delivery_date": "2026-01-07"},
    },
    # c5: a passive whose complaint (opened by the shop) holds the content emails until resolved.
    {
        "customer": "c5",
        "at": "0d",
        "type": "order.placed",
        "order_id": "E-1",
        "order": {"promised_delivery_date": "2026-01-08"},
    },
    {"customer": "c5", "at": "2d", "type": "order.delivered", "order_id": "E-1"},
    {"customer": "c5", "at": "9d", "type": "feedback.submitted", "order_id": "E-1", "data": {"score": 8}},
    {
        "customer": "c5",
        "at": "30d",
        "type": "ticket.opened",
        "data": {"ticket_id": "T-5", "category": "complaint"},
    },
    {"customer": "c5", "at": "52d", "type": "ticket.resolved", "data": {"ticket_id": "T-5"}},
    # c6: buys again on day 20 (the first journey converts, a second one starts).
    {
        "customer": "c6",
        "at": "0d",
        "type": "order.placed",
        "order_id": "F-1",
        "order": {"promised_delivery_date": "2026-01-08"},
    },
    {"customer": "c6", "at": "2d", "type": "order.delivered", "order_id": "F-1"},
    {
        "customer": "c6",
        "at": "20d",
        "type": "order.placed",
        "order_id": "F-2",
        "order": {"promised_delivery_date": "2026-01-28"},
    },
    # c7: a passive who leaves promotional mail on day 30.
    {
        "customer": "c7",
        "at": "0d",
        "type": "order.placed",
        "order_id": "G-1",
        "order": {"promised_delivery_date": "2026-01-08"},
    },
    {"customer": "c7", "at": "1d", "type": "order.delivered", "order_id": "G-1"},
    {"customer": "c7", "at": "8d", "type": "feedback.submitted", "order_id": "G-1", "data": {"score": 7}},
    {"customer": "c7", "at": "30d", "type": "customer.unsubscribed", "data": {"scope": "promotional"}},
    # c8: two returns of one order; the parcels arrive in the other order.
    {"customer": "c8", "at": "0d", "type": "order.placed", "order_id": "R-1", "order": {"items": ITEMS}},
    {"customer": "c8", "at": "3d", "type": "order.delivered", "order_id": "R-1"},
    {
        "customer": "c8",
        "at": "5d",
        "type": "return.requested",
        "order_id": "R-1",
        "data": {"rma_id": "RMA-1"},
    },
    {
        "customer": "c8",
        "at": "6d",
        "type": "return.requested",
        "order_id": "R-1",
        "data": {"rma_id": "RMA-2", "reason": "size"},
    },
    {"customer": "c8", "at": "9d", "type": "return.received", "order_id": "R-1", "data": {"rma_id": "RMA-2"}},
    {
        "customer": "c8",
        "at": "30d",
        "type": "return.received",
        "order_id": "R-1",
        "data": {"rma_id": "RMA-1", "refund_amount": 30},
    },
    # c10: no email address: every message is skipped.
    {"customer": "c10", "at": "4d", "type": "order.placed", "order_id": "N-1", "profile": {"email": None}},
    # c9: a birthday in the window.
    {
        "customer": "c9",
        "at": "1h",
        "type": "customer.updated",
        "profile": {"birthday": "1990-01-20", "timezone": "America/Bogota", "locale": "es"},
    },
]


def _driver(svc: Services, events: list[dict[str, Any]], plan: JourneyPlan, end: datetime) -> None:
    """The runtime on a virtual clock: events are ingested when they happen, the nightly run enrolls date
    triggers at 02:00 UTC, and the sweep runs at every moment an enrollment falls due."""
    pending = sorted(events, key=lambda e: e["occurred_at"])
    scheduled = bool(plan.trigger.date or plan.trigger.segment)
    night = EPOCH.replace(hour=NIGHTLY_HOUR, minute=0) + timedelta(days=1)
    for _ in range(20_000):
        due = next_due(svc)
        moments = [datetime.fromisoformat(pending[0]["occurred_at"])] if pending else []
        moments += [due] if due else []
        moments += [night] if scheduled else []
        now = min(moments, default=None)
        if now is None or now > end:
            return
        arrived = [e for e in pending if datetime.fromisoformat(e["occurred_at"]) <= now]
        pending = pending[len(arrived) :]
        if arrived:
            report = svc.ingest.apply(arrived, "api", now)
            assert not report.rejected, report.rejected
        if scheduled and night <= now:
            svc.enroll.scheduled(now)
            night += timedelta(days=1)
        svc.sweep(now)
    raise AssertionError("the runtime did not come to rest")


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    path = tmp_path_factory.mktemp("script") / "timeline.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in LINES) + "\n", encoding="utf-8")
    return load_script(path)


def _minute(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


@pytest.mark.parametrize("journey", ["post_purchase", "returns", "birthday", "replenishment", "warranty"])
def test_simulate_and_the_runtime_send_the_same(
    journey: str, script: list[dict[str, Any]], shipped: dict[str, JourneyPlan], tmp_path: Path
) -> None:
    plan = shipped[journey]
    expected = simulate(plan, days=DAYS, script=script)
    svc = make_services(migrated_sqlite_url(tmp_path), tmp_path, {journey: plan})
    try:
        _driver(svc, script_events(script), plan, EPOCH + timedelta(days=DAYS))
        with svc.store.factory() as s:  # type: ignore[attr-defined]
            rows = list(s.scalars(select(m.LedgerEntry).where(m.LedgerEntry.kind == "message")))
    finally:
        svc.store.dispose()  # type: ignore[attr-defined]
    sent = sorted(
        (r.customer_id, r.step_id, _minute(r.sent_at)) for r in rows if r.status == "sent" and r.sent_at
    )
    assert sent == sorted((c, step, _minute(at)) for c, step, at in expected.sent)
    assert sent, "the timeline sends something in every journey"
    skipped = Counter((r.step_id, r.reason) for r in rows if r.status == "skipped")
    assert skipped == Counter(expected.skips)
    if journey == "post_purchase":
        assert skipped[("thank_you", "no-address")] == 1

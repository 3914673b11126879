"""Deferrals are counted per message, not per sweep: the advance writes one ``deferrals`` row per message
and reason, however many sweeps the message waits through, and the report's ``deferred`` counts them
(on SQLite and PostgreSQL, with the real engine, store and report)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from uc_builders import journey, make_services, order_placed

from app.records import DeferralRecord
from app.stats import Stats
from infra.db import models as m
from infra.db.testing import clear_tables
from infra.report.assemble import build_report

PROMO = """
name: Promotion
trigger: {event: order.placed}
entry: {once_per: order}
policy:
  quiet_hours: {start: "21:00", end: "09:00"}
  hold_promotions_during_complaint: true
steps:
  - {id: tip, type: send, template: content_tip, category: promotional}
"""
LATE = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Madrid: quiet hours until 09:00 (08:00 UTC)
RECHECK = timedelta(hours=6)  # posventa.engine.RECHECK: how often a held send is looked at again


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    found: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    return found


def rows(svc: object) -> list[tuple[int, str, int, str, int]]:
    with svc.store.read() as tx:  # type: ignore[attr-defined]
        d = m.Deferral
        return [
            (r.enrollment_id, r.step_id, r.occurrence, r.reason, r.ticks)
            for r in tx.session.scalars(select(d).order_by(d.enrollment_id, d.reason))
        ]


def test_a_message_held_for_days_is_one_deferral(url: str, tmp_path: Path) -> None:
    plan = journey(PROMO, "promo")
    svc = make_services(url, tmp_path, {plan.id: plan})
    clear_tables(svc.store.factory.kw["bind"])  # type: ignore[attr-defined]
    svc.plans.publish()
    # ana: quiet hours (one deferral); luis: an open complaint (held, looked at again every 6 hours)
    svc.ingest.apply([order_placed(c, at=LATE) for c in ("ana", "luis")], "api", LATE)
    with svc.store.begin() as tx:
        tx.tickets.open("t1", "luis", None, "Roto", "complaint", "external")
    per_sweep = Stats()
    for k in range(5):  # 21:30, 03:30, 09:30 (ana goes out), 15:30, 21:30 (luis still held)
        per_sweep.merge(svc.sweep(LATE + k * RECHECK))
    # The run tables count sweeps: luis's one message was held five times.
    assert per_sweep.rows[("promo", "tip", "held")] == 5
    assert per_sweep.rows[("promo", "tip", "deferred")] == 1
    ana, luis = sorted(rows(svc), key=lambda r: r[3], reverse=True)
    assert ana[1:] == ("tip", 0, "quiet_hours", 1)
    assert luis[1:] == ("tip", 0, "complaint_hold", 5)

    with svc.store.begin() as tx:
        tx.tickets.resolve("t1", LATE + 5 * RECHECK)
    svc.sweep(LATE + 5 * RECHECK + timedelta(minutes=1))  # 03:31 UTC: not held now, but quiet hours
    svc.sweep(LATE + 6 * RECHECK)  # 09:30 UTC: sent
    with svc.store.read() as tx:
        report = build_report(tx.session, now=LATE + 8 * RECHECK, plans={plan.id: plan})  # type: ignore[attr-defined]
    [tip] = report.funnel[0].steps
    assert (tip.entered, tip.sent) == (2, 2)
    # two messages waited: ana's (quiet hours), luis's (held, then quiet hours) — each once
    assert tip.deferred == 2 and report.deferred == 2
    assert dict(tip.deferred_by) == {"quiet_hours": 2, "frequency_cap": 0, "complaint_hold": 1}
    svc.store.dispose()  # type: ignore[attr-defined]


def test_recording_is_idempotent_and_ticks_only_move_forward(url: str, tmp_path: Path) -> None:
    plan = journey(PROMO, "promo")
    svc = make_services(url, tmp_path, {plan.id: plan})
    clear_tables(svc.store.factory.kw["bind"])  # type: ignore[attr-defined]
    svc.plans.publish()
    svc.ingest.apply([order_placed("ana", at=LATE)], "api", LATE)
    with svc.store.read() as tx:
        [eid] = tx.session.scalars(select(m.Enrollment.id))  # type: ignore[attr-defined]

    def record(at: datetime) -> None:
        with svc.store.begin() as tx:
            tx.deferrals.record([DeferralRecord(eid, "promo", "tip", 0, "frequency_cap", at, at + RECHECK)])

    record(LATE)
    record(LATE)  # a replay of the same sweep
    assert rows(svc) == [(eid, "tip", 0, "frequency_cap", 1)]
    record(LATE + RECHECK)
    record(LATE)  # an older sweep arriving late changes nothing
    assert rows(svc) == [(eid, "tip", 0, "frequency_cap", 2)]
    with svc.store.read() as tx:
        d = tx.session.scalars(select(m.Deferral)).one()  # type: ignore[attr-defined]
        assert (d.first_at, d.last_at, d.until) == (LATE, LATE + RECHECK, LATE + 2 * RECHECK)
    with pytest.raises(ValueError, match="deferral reason"), svc.store.begin() as tx:
        tx.deferrals.record([DeferralRecord(eid, "promo", "tip", 0, "sleepy", LATE, LATE)])
    svc.store.dispose()  # type: ignore[attr-defined]

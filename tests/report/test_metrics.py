"""Each metric on a small hand-computed fixture, on SQLite and PostgreSQL (the ``session`` fixture runs every
test once per backend). The expected numbers are worked out in the comments from the rows inserted."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from report_builders import DAY, HOUR, T0, World, at
from sqlalchemy.orm import Session

from infra.db import metrics
from infra.db.metrics import Scope
from infra.report.assemble import build_report, parse_period
from infra.report.model import ReportError, StepFunnel
from posventa.plan import JourneyPlan

PP = "post_purchase"


def scope(
    now_days: float = 30,
    journey: str | None = None,
    since_days: float | None = None,
    until_days: float | None = None,
) -> Scope:
    until = None if until_days is None else at(until_days)
    return Scope(journey, None if since_days is None else at(since_days), until, until or at(now_days))


def steps(rows: list[StepFunnel]) -> dict[tuple[str, str, str | None], StepFunnel]:
    return {(r.journey_id, r.step_id, r.variant): r for r in rows}


# --- empty and one customer ---------------------------------------------------------------------------------
def test_an_empty_database_reports_zeros_and_no_rates(
    session: Session, plans: dict[str, JourneyPlan]
) -> None:
    report = build_report(session, now=T0)
    assert report.funnel == () and report.splits == ()
    assert report.nps.overall.responses == 0 and report.nps.overall.nps is None
    assert (
        report.nps.by_week
        == report.nps.by_journey
        == report.nps.by_product
        == report.nps.latest_comments
        == ()
    )
    assert (
        report.on_time_delivery.overall.delivered == 0
        and report.on_time_delivery.overall.on_time_rate is None
    )
    assert report.repeat_purchase.first_time_customers == 0
    assert [(w.days, w.eligible, w.rate) for w in report.repeat_purchase.windows] == [
        (30, 0, None),
        (60, 0, None),
        (90, 0, None),
        (180, 0, None),
    ]
    assert (report.churn.customers, report.churn.rate) == (0, None)
    assert (report.referral.codes_sent, report.referral.orders, report.referral.revenue) == (0, 0, 0.0)
    assert [(t.category, t.opened, t.median_resolution_s) for t in report.complaints.by_category] == [
        ("complaint", 0, None),
        ("support", 0, None),
        ("return", 0, None),
        ("warranty", 0, None),
    ]
    assert report.deferred == 0 and report.notes == ()

    # With the runtime's plans every journey is listed, with its diagram and nothing counted.
    with_plans = build_report(session, now=T0, plans=plans)
    assert [j.journey_id for j in with_plans.funnel] == sorted(plans)
    pp = next(j for j in with_plans.funnel if j.journey_id == PP)
    assert (pp.entered, pp.conversion_rate, pp.steps) == (0, None, ())
    assert pp.nodes[0].step_id == "thank_you" and pp.nodes[0].reached == 0 and pp.nodes[0].here_now == 0
    assert next(n for n in pp.nodes if n.step_id == "await_delivery").reached is None  # a wait leaves no row


def test_one_customer_through_every_metric(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.customer("c1", "en")
    w.order(
        "o1",
        "c1",
        T0,
        "40.00",
        status="delivered",
        promised=date(2026, 3, 4),
        delivered_at=at(2, 3),
        items=[{"sku": "X", "name": "Xeno"}],
    )
    w.enrollment(1, "c1", T0, order_id="o1", status="waiting", step="await_delivery")
    thanks = w.ledger(1, "thank_you", at(hours=1))
    for i, event in enumerate(("delivered", "open", "open", "click")):
        w.webhook(thanks, event, f"sg{i}")
    survey = w.ledger(1, "nps_survey", at(8))
    w.answer("c1", "o1", 10, at(9), comment="Great", via=survey)
    session.commit()

    report = build_report(session, now=at(10), plans=plans)
    pp = next(j for j in report.funnel if j.journey_id == PP)
    assert (pp.entered, pp.converted, pp.revenue, dict(pp.statuses)) == (1, 0, 0.0, {"waiting": 1})
    rows = {r.step_id: r for r in pp.steps}
    assert list(rows) == ["thank_you", "nps_survey"]  # plan order
    t = rows["thank_you"]
    assert (t.entered, t.due, t.sent, t.delivered, t.opened, t.clicked, t.bounced) == (1, 1, 1, 1, 1, 1, 0)
    assert (t.variant, t.type, t.median_time_to_step_s, t.open_rate, t.deferred) == (
        None,
        "send",
        3600.0,
        1.0,
        0,
    )
    assert (rows["nps_survey"].delivered, rows["nps_survey"].median_time_to_step_s) == (0, 8 * 86400.0)
    assert next(n for n in pp.nodes if n.step_id == "await_delivery").here_now == 1
    assert report.splits == ()

    nps = report.nps
    assert (nps.overall.responses, nps.overall.promoters, nps.overall.nps) == (1, 1, 100.0)
    assert [(g.key, g.nps) for g in nps.by_week] == [("2026-W11", 100.0)]  # T0 + 9 days is a Wednesday
    assert [(g.key, g.nps) for g in nps.by_journey] == [(PP, 100.0)]
    assert [(g.key, g.label, g.nps) for g in nps.by_product] == [("X", "Xeno", 100.0)]
    assert [(g.key, g.nps) for g in nps.by_locale] == [("en", 100.0)]
    assert [(c.score, c.comment, c.customer_id, c.locale) for c in nps.latest_comments] == [
        (10, "Great", "c1", "en")
    ]

    d = report.on_time_delivery
    assert (d.overall.delivered, d.overall.on_time, d.overall.on_time_rate) == (1, 1, 1.0)
    assert [(x.key, x.on_time) for x in d.by_week] == [("2026-W10", 1)]
    # the first order is 10 days old: no window has passed yet
    assert report.repeat_purchase.first_time_customers == 1
    assert all(wnd.eligible == 0 for wnd in report.repeat_purchase.windows)
    assert (report.churn.customers, report.churn.rate) == (0, None)  # nobody bought 180 days ago


# --- the funnel ---------------------------------------------------------------------------------------------
def funnel_world(w: World) -> None:
    """Three post-purchase enrollments (see test_step_funnel for the expected numbers)."""
    w.order("o1", "c1", at(hours=-1), "20.00")
    w.order("o4", "c1", at(5), "30.00")  # the conversion: in [entered, ended], not the journey's own order
    w.order("o5", "c1", at(5), "99.00", status="canceled")  # canceled: not revenue
    w.order("o6", "c1", at(7), "50.00")  # after converting: not this journey's revenue
    w.enrollment(1, "c1", T0, order_id="o1", status="converted", variant="plain", ended_at=at(6))
    w.enrollment(2, "c2", at(1), status="waiting", step="await_delivery")
    w.enrollment(3, "c3", at(2), status="exited", variant="holdout", ended_at=at(3))
    thanks1 = w.ledger(1, "thank_you", at(seconds=60))
    survey1 = w.ledger(1, "nps_survey", at(3))
    w.ledger(2, "thank_you", at(1, seconds=120), status="skipped")
    thanks3 = w.ledger(3, "thank_you", at(2, seconds=180))
    w.ledger(3, "thank_you", at(2, hours=1), occurrence=1, status="failed")
    for sg, (key, event) in enumerate(
        [
            (thanks1, "delivered"),
            (thanks1, "open"),
            (thanks1, "open"),
            (thanks1, "click"),
            (thanks1, "processed"),  # not a funnel stage
            (thanks3, "bounce"),
            (survey1, "delivered"),
            (survey1, "spamreport"),
            (survey1, "unsubscribe"),
            (survey1, "group_unsubscribe"),  # the same unsubscription, counted once
            (None, "delivered"),  # no ledger key: nothing to count it for
            ("999:thank_you:0", "open"),  # no such enrollment
            ("garbage", "open"),  # not one of our keys
        ]
    ):
        w.webhook(key, event, f"sg{sg}")


def test_step_funnel(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    funnel_world(w)
    session.commit()
    rows = steps(metrics.step_funnel(session, scope()))
    assert set(rows) == {
        (PP, "thank_you", "plain"),
        (PP, "nps_survey", "plain"),
        (PP, "thank_you", None),
        (PP, "thank_you", "holdout"),
    }
    t1 = rows[(PP, "thank_you", "plain")]
    assert (t1.entered, t1.due, t1.sent, t1.skipped, t1.failed) == (1, 1, 1, 0, 0)
    assert (t1.delivered, t1.opened, t1.clicked, t1.bounced, t1.unsubscribed, t1.spam_reports) == (
        1,
        1,
        1,
        0,
        0,
        0,
    )
    assert (t1.converted, t1.revenue, t1.median_time_to_step_s) == (1, 30.0, 60.0)
    s1 = rows[(PP, "nps_survey", "plain")]
    assert (s1.delivered, s1.spam_reports, s1.unsubscribed, s1.opened) == (1, 1, 1, 0)
    assert (s1.converted, s1.revenue, s1.median_time_to_step_s) == (1, 30.0, 3 * 86400.0)
    t2 = rows[(PP, "thank_you", None)]
    assert (t2.entered, t2.due, t2.sent, t2.skipped, t2.converted, t2.revenue) == (1, 1, 0, 1, 0, 0.0)
    assert t2.median_time_to_step_s == 120.0
    t3 = rows[(PP, "thank_you", "holdout")]
    assert (t3.entered, t3.due, t3.sent, t3.failed, t3.bounced, t3.delivered) == (1, 2, 1, 1, 1, 0)
    assert t3.median_time_to_step_s == 180.0  # the first occurrence only

    totals = metrics.journey_totals(session, scope())[PP]
    assert (totals.entered, totals.converted, totals.revenue) == (3, 1, 30.0)
    assert totals.statuses == {"converted": 1, "exited": 1, "waiting": 1}
    assert metrics.positions(session, scope()) == {(PP, "await_delivery"): 1}


def test_funnel_cohort_filters(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    funnel_world(w)
    w.enrollment(4, "c4", at(1), journey="warranty", status="waiting", step="watch_for_claim")
    w.ledger(4, "warranty_notice", at(1, hours=2))
    session.commit()
    # entered in [T0 + 1 day, T0 + 2 days): enrollments 2 and 4 only
    rows = steps(metrics.step_funnel(session, scope(since_days=1, until_days=2)))
    assert set(rows) == {(PP, "thank_you", None), ("warranty", "warranty_notice", None)}
    only_warranty = steps(metrics.step_funnel(session, scope(journey="warranty")))
    assert set(only_warranty) == {("warranty", "warranty_notice", None)}
    assert only_warranty[("warranty", "warranty_notice", None)].median_time_to_step_s == 7200.0
    assert set(metrics.journey_totals(session, scope(journey="warranty"))) == {"warranty"}
    assert metrics.positions(session, scope(journey="warranty")) == {("warranty", "watch_for_claim"): 1}


def test_median_time_to_step(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    for eid, secs in enumerate((60, 120, 180, 3600), start=1):
        w.enrollment(eid, f"c{eid}", T0)
        w.ledger(eid, "thank_you", at(seconds=secs))
    for eid, days in zip((1, 2, 3), (1, 2, 10), strict=True):
        w.ledger(eid, "nps_survey", at(days))
    session.commit()
    rows = steps(metrics.step_funnel(session, scope()))
    assert rows[(PP, "thank_you", None)].median_time_to_step_s == 150.0  # (120 + 180) / 2
    assert rows[(PP, "nps_survey", None)].median_time_to_step_s == 2 * 86400.0


# --- splits -------------------------------------------------------------------------------------------------
def test_splits_compare_each_variant_with_the_holdout(
    session: Session, plans: dict[str, JourneyPlan]
) -> None:
    w = World(session, plans)
    eid = 0
    for arm, buyers in (("plain", 9), ("holdout", 3)):
        for i in range(10):
            eid += 1
            cid = f"{arm}{i}"
            w.enrollment(
                eid,
                cid,
                T0,
                order_id=f"own-{cid}",
                variant=arm,
                status="exited" if arm == "holdout" else "waiting",
            )
            if i < buyers:
                w.order(f"buy-{cid}", cid, at(2), "10.00")
    # none of these is a conversion: before entering, the journey's own order, canceled, after as_of
    w.order("early", "holdout3", at(-1), "5.00")
    w.order("own-holdout4", "holdout4", at(hours=1), "5.00")
    w.order("void", "holdout5", at(2), "5.00", status="canceled")
    w.order("late", "holdout6", at(40), "5.00")
    w.enrollment(99, "nobody", T0)  # no variant: not in any split
    session.commit()

    arms = metrics.splits(session, scope(now_days=30))
    assert set(arms) == {PP}
    plain, holdout = arms[PP]["plain"], arms[PP]["holdout"]
    assert (plain.enrolled, plain.converted, plain.revenue) == (10, 9, 90.0)
    assert (holdout.enrolled, holdout.converted, holdout.revenue) == (10, 3, 30.0)
    # Newcombe (1998), Table II example (b): 9/10 − 3/10 = 0.6, hybrid score interval 0.1705 to 0.8090
    compared = plain.against(holdout)
    assert (compared.difference, compared.ci_low, compared.ci_high) == (0.6, 0.1705, 0.809)

    report = build_report(session, now=at(30), plans=plans)
    [split] = report.splits
    assert (split.journey_id, split.step_id) == (PP, "referral_split")
    assert split.holdout is not None and split.holdout.difference is None
    assert [(v.variant, v.difference, v.ci_low, v.ci_high) for v in split.variants] == [
        ("plain", 0.6, 0.1705, 0.809)
    ]


# --- NPS ----------------------------------------------------------------------------------------------------
def nps_world(w: World) -> None:
    w.customer("a", "es")
    w.customer("b", "es")
    w.customer("c", "en")
    w.customer("d", "en")
    w.order("oa", "a", T0, items=[{"sku": "A", "name": "Alfa"}])
    w.order("ob", "b", T0, items=[{"sku": "A", "name": "Alfa"}, {"sku": "B", "name": "Beta"}])
    w.order("oc", "c", T0, items=[{"sku": "B", "name": "Beta"}, {"sku": "B", "name": "Beta"}])
    w.order("od", "d", T0)
    w.enrollment(1, "a", T0, order_id="oa")
    w.enrollment(2, "b", T0, order_id="ob")
    w.enrollment(3, "c", T0, journey="warranty", order_id="oc")
    w.answer("a", "oa", 10, at(0), comment="Genial", via=w.ledger(1, "nps_survey", at(-1)))  # W10
    w.answer("b", "ob", 9, at(1), via=w.ledger(2, "nps_survey", at(-1)))  # W10
    w.answer("c", "oc", 7, at(7), comment="ok", via=w.ledger(3, "warranty_notice", at(-1)))  # W11
    w.answer("d", "od", 3, at(8))  # W11, through the API: no journey
    w.answer("a", None, 0, at(9), comment="Mal")  # W11, not about an order: no product


def test_nps_overall_and_by_week_journey_product_locale(
    session: Session, plans: dict[str, JourneyPlan]
) -> None:
    w = World(session, plans)
    nps_world(w)
    session.commit()
    nps = metrics.nps(session, scope(), comments=2)
    # 10, 9 promoters; 7 passive; 3, 0 detractors: (2 − 2) / 5
    o = nps.overall
    assert (o.responses, o.promoters, o.passives, o.detractors, o.nps) == (5, 2, 1, 2, 0.0)
    assert [(g.key, g.responses, g.nps) for g in nps.by_week] == [
        ("2026-W10", 2, 100.0),
        ("2026-W11", 3, -66.7),
    ]
    assert [(g.key, g.responses, g.nps) for g in nps.by_journey] == [(PP, 2, 100.0), ("warranty", 1, 0.0)]
    # A: 10, 9; B: 9, 7 (order oc lists B twice: one answer)
    assert [(g.key, g.label, g.responses, g.nps) for g in nps.by_product] == [
        ("A", "Alfa", 2, 100.0),
        ("B", "Beta", 2, 50.0),
    ]
    assert [(g.key, g.responses, g.nps) for g in nps.by_locale] == [("en", 2, -50.0), ("es", 3, 33.3)]
    assert [(c.comment, c.score) for c in nps.latest_comments] == [("Mal", 0), ("ok", 7)]

    only_pp = metrics.nps(session, scope(journey=PP))
    assert (only_pp.overall.responses, only_pp.overall.nps) == (2, 100.0)
    assert [g.key for g in only_pp.by_journey] == [PP]
    later = metrics.nps(session, scope(since_days=7))
    assert (later.overall.responses, later.overall.nps) == (3, -66.7)


# --- on-time delivery ---------------------------------------------------------------------------------------
def test_on_time_delivery(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    # 2026-03-02 is T0's day (Monday, W10); 2026-03-09 starts W11.
    w.order(
        "d1", "c", T0, promised=date(2026, 3, 5), delivered_at=at(3, 14.5), status="delivered"
    )  # 23:30 on the day
    w.order("d2", "c", T0, promised=date(2026, 3, 6), delivered_at=at(2, 1), status="delivered")  # early
    w.order(
        "d3", "c", T0, promised=date(2026, 3, 3), delivered_at=at(3, 23), status="delivered"
    )  # 3 days late
    w.order(
        "d4", "c", T0, promised=date(2026, 3, 9), delivered_at=at(7, 15.5), status="returned"
    )  # 00:30: 1 late
    w.order("d5", "c", T0, delivered_at=at(8), status="delivered")  # no promise
    w.order("d6", "c", T0, promised=date(2026, 3, 4), status="shipped")  # overdue
    w.order("d7", "c", T0, promised=date(2026, 3, 4), status="canceled")  # canceled: not overdue
    w.order("d8", "c", T0, promised=date(2026, 4, 30))  # promised after the report's day
    session.commit()
    d = metrics.on_time_delivery(session, scope(now_days=30))
    o = d.overall
    assert (o.delivered, o.on_time, o.late, o.days_late_total, o.max_days_late) == (4, 2, 2, 4, 3)
    assert (o.on_time_rate, o.average_days_late) == (0.5, 2.0)
    assert [(x.key, x.delivered, x.on_time, x.late, x.days_late_total) for x in d.by_week] == [
        ("2026-W10", 3, 2, 1, 3),
        ("2026-W11", 1, 0, 1, 1),
    ]
    assert (d.without_promise, d.overdue) == (1, 1)
    since = metrics.on_time_delivery(session, scope(now_days=30, since_days=7))  # from 2026-03-09 09:00
    assert (since.overall.delivered, since.overall.late, since.without_promise, since.overdue) == (1, 1, 1, 0)


# --- repeat purchase and churn ------------------------------------------------------------------------------
def purchases_world(w: World) -> None:
    w.order("a1", "A", T0)
    w.order("a2", "A", at(20))
    w.order("b1", "B", T0)
    w.order("b2", "B", at(45))
    w.order("c1", "C", T0)
    w.order("d1", "D", at(100))
    w.order("e0", "E", at(-10), status="canceled")  # not a purchase: E's first is e1
    w.order("e1", "E", at(5))
    w.order("e2", "E", at(40))
    w.order("f1", "F", at(1))
    w.order("f2", "F", at(1))  # the same instant: a repeat within any window
    w.order("g1", "G", at(250))  # after every as_of below


def test_repeat_purchase_windows(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    purchases_world(w)
    session.commit()
    r = metrics.repeat_purchase(session, scope(now_days=150))
    assert r.first_time_customers == 6  # A–F (G's order is after as_of)
    # eligible: first purchase at least N days before T0+150; repeated: second within N days of the first
    assert [(x.days, x.eligible, x.repeated, x.rate) for x in r.windows] == [
        (30, 6, 2, 0.3333),  # A (20 d), F (0 d)
        (60, 5, 4, 0.8),  # D's first is only 50 days old; A, B (45 d), E (35 d), F
        (90, 5, 4, 0.8),
        (180, 0, 0, None),
    ]
    # first purchase in [T0+1d, T0+101d): D, E, F; as_of T0+101d, so D (T0+100d) is in no window yet
    period = metrics.repeat_purchase(session, scope(since_days=1, until_days=101))
    assert period.first_time_customers == 3
    assert [(x.days, x.eligible, x.repeated) for x in period.windows][:2] == [(30, 2, 1), (60, 2, 2)]


def test_churn(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    purchases_world(w)
    session.commit()
    # as of T0+200d, window 180 → cutoff T0+20d; bought before it: A, B, C, E, F; none since: C, F
    c = metrics.churn(session, scope(now_days=200))
    assert (c.window_days, c.customers, c.churned, c.rate) == (180, 5, 2, 0.4)
    short = metrics.churn(session, scope(now_days=200), window_days=30)  # nobody bought in the last 30 days
    assert (short.customers, short.churned, short.rate) == (6, 6, 1.0)
    with pytest.raises(ValueError, match="at least one day"):
        metrics.churn(session, scope(), window_days=0)


# --- referrals and tickets ----------------------------------------------------------------------------------
def test_referral_funnel(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.referral_code("R1", "c1", T0)
    w.referral_code("R2", "c2", at(1), journey="warranty")
    w.referral_code("R3", "c3", at(60))
    for i, cid in enumerate(("c1", "c1", "c1", "c3")):
        w.event(f"click{i}", "referral.clicked", cid, at(61))
    w.referral_order("R1", "o10", "friend1", "50.00")
    w.referral_order("R1", "o11", "friend2", "20.00", status="canceled")
    w.referral_order("R2", "o12", "friend3", "10.00")
    session.commit()
    r = metrics.referral(session, scope(now_days=90))
    assert (r.codes_sent, r.referrers_clicked, r.clicks, r.orders, r.revenue) == (3, 2, 4, 2, 60.0)
    assert (r.click_rate, r.order_rate) == (0.6667, 0.6667)
    pp = metrics.referral(session, scope(now_days=90, journey=PP))
    assert (pp.codes_sent, pp.referrers_clicked, pp.clicks, pp.orders, pp.revenue) == (2, 2, 4, 1, 50.0)
    later = metrics.referral(session, scope(now_days=90, since_days=30))
    assert (later.codes_sent, later.clicks, later.orders) == (1, 1, 0)


def test_complaint_tickets_and_time_to_resolution(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.ticket("t1", "c1", T0, T0 + 2 * HOUR)
    w.ticket("t2", "c2", at(1), at(1) + 4 * HOUR)
    w.ticket("t3", "c3", at(2))
    w.ticket("t4", "c4", T0, T0 + HOUR, category="support")
    w.ticket("t5", "c5", at(-5), category="return")
    session.commit()
    c = metrics.complaints(session, scope())
    o = c.overall
    assert (o.category, o.opened, o.resolved, o.still_open, o.median_resolution_s) == (
        "complaint",
        3,
        2,
        1,
        10800.0,
    )
    assert [
        (t.category, t.opened, t.resolved, t.still_open, t.median_resolution_s) for t in c.by_category
    ] == [
        ("complaint", 3, 2, 1, 10800.0),
        ("support", 1, 1, 0, 3600.0),
        ("return", 1, 0, 1, None),
        ("warranty", 0, 0, 0, None),
    ]
    since = metrics.complaints(session, scope(since_days=0))
    assert [t.opened for t in since.by_category] == [3, 1, 0, 0]


# --- the assembly's checks ----------------------------------------------------------------------------------
def test_bad_requests_are_report_errors(session: Session, plans: dict[str, JourneyPlan]) -> None:
    with pytest.raises(ReportError, match="period is empty"):
        build_report(session, since=at(2), until=at(1), now=at(3))
    with pytest.raises(ReportError, match="aware"):
        build_report(session, since=at(1).replace(tzinfo=None), now=at(3))
    with pytest.raises(ReportError, match=r"unknown journey 'nope'.*post_purchase"):
        build_report(session, journey="nope", now=at(3), plans=plans)
    with pytest.raises(ReportError, match="churn window"):
        build_report(session, now=at(3), churn_window_days=0)
    report = build_report(session, journey=PP, now=at(3), plans=plans)
    assert [j.journey_id for j in report.funnel] == [PP] and report.journey == PP


def test_parse_period() -> None:
    since, until = parse_period("2026-03-01", "2026-04-01T00:00:00+02:00", tz="Europe/Madrid")
    assert since is not None and until is not None
    assert since.isoformat() == "2026-02-28T23:00:00+00:00"  # midnight in Madrid (CET)
    assert until.isoformat() == "2026-03-31T22:00:00+00:00"
    assert parse_period(None, " ") == (None, None)
    with pytest.raises(ReportError, match="--since 'yesterday'"):
        parse_period("yesterday", None)
    with pytest.raises(ReportError, match="--until"):
        parse_period(None, "2026-03-01T10:00:00")  # no offset
    assert timedelta(days=1) == DAY


def test_a_period_that_runs_into_the_future_is_counted_as_of_now(
    session: Session, plans: dict[str, JourneyPlan]
) -> None:
    """``--until`` next month: windows that end "as of" the period end now, not in the future (found by a
    new-user run: ``as_of`` read a day ahead); a period in the past ends at its ``until``."""
    ahead = build_report(session, since=at(0), until=at(60), now=at(30), plans=plans)
    assert ahead.period.as_of == at(30)
    past = build_report(session, since=at(0), until=at(10), now=at(30), plans=plans)
    assert past.period.as_of == at(10)

"""Two report fixes on hand-computed fixtures (both backends): the steps before a split get one row, not
one per variant the customer got later; without any SendGrid Event Webhook data, delivered / opened /
clicked are unknown (null, "n/a"), not zero."""

from __future__ import annotations

import json

from report_builders import T0, World, at
from sqlalchemy.orm import Session
from test_metrics import PP, funnel_world

from infra.report.assemble import build_report
from infra.report.model import StepFunnel
from infra.report.render import render
from posventa.graph import after_split
from posventa.plan import JourneyPlan


def rows(report_steps: tuple[StepFunnel, ...]) -> dict[tuple[str, str | None], StepFunnel]:
    return {(r.step_id, r.variant): r for r in report_steps}


def test_after_split_is_what_the_split_leads_to(plans: dict[str, JourneyPlan]) -> None:
    reachable = after_split(plans[PP])
    assert {"referral_ask", "referral_ask_incentive", "content_wait"} <= reachable
    assert not {"thank_you", "delivery_check", "nps_survey", "referral_split"} & reachable


def test_steps_before_the_split_get_one_row(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    funnel_world(w)  # enrollments 1 (plain), 2 (no variant), 3 (holdout); all reached thank_you
    w.ledger(1, "referral_ask", at(4))  # after the split: stays the plain arm's row
    session.commit()
    [journey] = [j for j in build_report(session, now=at(30), plans=plans).funnel if j.journey_id == PP]
    found = rows(journey.steps)
    assert set(found) == {("thank_you", None), ("nps_survey", None), ("referral_ask", "plain")}
    t = found[("thank_you", None)]
    # 1 + 1 + 1 entered; rows: e1 sent, e2 skipped, e3 sent + failed retry (occurrence 1)
    assert (t.entered, t.due, t.sent, t.skipped, t.failed) == (3, 4, 2, 1, 1)
    # e1: delivered, opened (twice: once), clicked; e3: bounced
    assert (t.delivered, t.opened, t.clicked, t.bounced) == (1, 1, 1, 1)
    # e1 converted (order o4 30.00); median of 60, 120, 180 s
    assert (t.converted, t.revenue, t.median_time_to_step_s) == (1, 30.0, 120.0)
    assert found[("nps_survey", None)].entered == 1
    assert found[("referral_ask", "plain")].entered == 1
    table = render(build_report(session, now=at(30), plans=plans), "table", "en")
    assert not [line for line in table.splitlines() if line.startswith("thank_you") and "holdout" in line]


def test_no_webhook_data_is_unknown_not_zero(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.enrollment(1, "c1", T0)
    w.ledger(1, "thank_you", at(seconds=60))
    session.commit()
    report = build_report(session, now=at(30), plans=plans)
    [t] = next(j for j in report.funnel if j.journey_id == PP).steps
    assert (t.sent, t.delivered, t.opened, t.clicked, t.delivery_rate, t.open_rate) == (
        1,
        None,
        None,
        None,
        None,
        None,
    )
    data = json.loads(render(report, "json", "en"))
    step = next(j for j in data["funnel"] if j["journey_id"] == PP)["steps"][0]
    assert (step["delivered"], step["opened"], step["clicked"], step["delivery_rate"]) == (None,) * 4
    assert "n/a (no Event Webhook data)" in render(report, "summary", "en")
    assert "s/d (sin datos del webhook)" in render(report, "summary", "es")
    assert "0 delivered" not in render(report, "summary", "en")
    table = render(report, "table", "en")
    assert "n/a (no Event Webhook data)" in table
    assert "s/d (sin datos del webhook)" in render(report, "table", "es")
    html = render(report, "html", "en")
    assert "n/a (no Event Webhook data)" in html and ">n/a</td>" in html


def test_with_webhook_data_counts_are_numbers(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.enrollment(1, "c1", T0)
    w.enrollment(2, "c2", T0)
    key = w.ledger(1, "thank_you", at(seconds=60))
    w.ledger(2, "thank_you", at(seconds=60))
    w.webhook(key, "delivered", "sg1")
    session.commit()
    report = build_report(session, now=at(30), plans=plans)
    [t] = next(j for j in report.funnel if j.journey_id == PP).steps
    assert (t.sent, t.delivered, t.opened, t.clicked, t.delivery_rate) == (2, 1, 0, 0, 0.5)
    summary = render(report, "summary", "en")
    assert "1 delivered (50.0%)" in summary and "n/a" not in summary
    assert "n/a" not in render(report, "table", "en")

"""The funnel's ``deferred``: distinct messages that waited, per step and variant and per reason, from
small hand-computed fixtures (one customer, several, a cohort filter), on SQLite and PostgreSQL."""

from __future__ import annotations

from report_builders import T0, World, at
from sqlalchemy.orm import Session

from infra.report.assemble import build_report
from posventa.plan import JourneyPlan

PP = "post_purchase"
NONE = {"quiet_hours": 0, "frequency_cap": 0, "complaint_hold": 0}


def test_one_customer_one_message_many_sweeps(session: Session, plans: dict[str, JourneyPlan]) -> None:
    w = World(session, plans)
    w.enrollment(1, "c1", T0, status="waiting", step="content_wait")
    # the content tip waited through three quiet-hours sweeps, then once for the cap; then it went out
    w.deferral(1, "content_tip", "quiet_hours", at(1, 12), at(1, 13), at(1, 14))
    w.deferral(1, "content_tip", "frequency_cap", at(2))
    w.ledger(1, "content_tip", at(3))
    session.commit()
    report = build_report(session, now=at(10), plans=plans)
    [tip] = next(j for j in report.funnel if j.journey_id == PP).steps
    assert (tip.step_id, tip.entered, tip.sent, tip.deferred) == ("content_tip", 1, 1, 1)
    assert dict(tip.deferred_by) == NONE | {"quiet_hours": 1, "frequency_cap": 1}
    assert report.deferred == 1


def test_messages_are_counted_once_per_occurrence_and_variant(
    session: Session, plans: dict[str, JourneyPlan]
) -> None:
    w = World(session, plans)
    w.enrollment(1, "c1", T0, status="waiting", step="content_wait")
    w.enrollment(2, "c2", T0, status="held", step="content_tip", variant="plain")
    w.enrollment(3, "c3", at(5), status="waiting", step="content_wait")  # entered later
    w.deferral(1, "content_tip", "quiet_hours", at(1))
    w.deferral(1, "content_tip", "quiet_hours", at(31), occurrence=1)  # the repeat's second tip
    w.ledger(1, "content_tip", at(2))
    w.deferral(2, "content_tip", "complaint_hold", *(at(1, 6 * k) for k in range(20)))  # still held
    w.deferral(3, "content_tip", "quiet_hours", at(5, 1))
    session.commit()

    report = build_report(session, now=at(40), plans=plans)
    rows = {st.variant: st for st in next(j for j in report.funnel if j.journey_id == PP).steps}
    # c1 twice (two occurrences), c3 once; only c1's first tip has a ledger row
    assert (rows[None].deferred, rows[None].entered) == (3, 1)
    assert dict(rows[None].deferred_by) == NONE | {"quiet_hours": 3}
    # c2's tip is still held: a row without a ledger entry, held twenty sweeps, one message
    assert (rows["plain"].deferred, rows["plain"].entered, rows["plain"].sent) == (1, 0, 0)
    assert dict(rows["plain"].deferred_by) == NONE | {"complaint_hold": 1}
    assert report.deferred == 4

    early = build_report(session, now=at(40), until=at(1), plans=plans)  # c3 entered after the period
    rows = {st.variant: st for st in next(j for j in early.funnel if j.journey_id == PP).steps}
    assert rows[None].deferred == 2 and early.deferred == 3

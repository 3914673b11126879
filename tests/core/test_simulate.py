"""The simulator runs the real engine on a virtual clock: the shipped post-purchase journey, at scale and
on a scripted timeline."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from core_helpers import REPO

from posventa.compile import compile_file
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan
from posventa.simulate import EPOCH, Result, _World, load_script, report, simulate

REFERRAL_STEPS = ("referral_ask", "referral_ask_incentive")


@pytest.fixture(scope="module")
def plan() -> JourneyPlan:
    return compile_file(REPO / "journeys" / "post_purchase.yaml")


@pytest.fixture(scope="module")
def thousand(plan: JourneyPlan) -> Result:
    return simulate(plan, customers=1000, days=120, seed=1)


def test_every_order_enrolls_and_is_welcomed(thousand: Result) -> None:
    """once_per: order — a customer who buys again enters again, as in production."""
    window = EPOCH + timedelta(days=120)
    second = sum(
        1
        for i in range(1000)
        for e in _World(i, 1, EPOCH, 120).events
        if e["type"] == "order.placed" and e["order_id"].endswith("-2") and e["occurred_at"] <= window
    )
    assert second > 50
    assert thousand.enrolled == 1000 + second
    assert thousand.sends["thank_you"] == thousand.enrolled
    assert sum(thousand.outcomes.values()) == thousand.enrolled


def test_promoters_reach_the_referral_ask(thousand: Result) -> None:
    referrals = sum(thousand.sends[s] for s in REFERRAL_STEPS)
    promoters, held_out = thousand.nps["promoter"], thousand.variants["holdout"]
    assert promoters > 100 and referrals > 0
    # Every promoter not held out is asked (a deferral cut short by an exit may lose a few).
    assert promoters - held_out - 5 <= referrals <= promoters - held_out
    assert thousand.promoters_asked == referrals
    assert thousand.variants["plain"] + thousand.variants["incentive"] == referrals
    assert 0.04 <= held_out / promoters <= 0.16  # holdout: 10 %
    assert thousand.outcomes["exited: holdout"] == 0  # the holdout goes on to the content emails


def test_detractors_never_get_a_promotion(thousand: Result) -> None:
    detractors = thousand.nps["detractor"]
    assert detractors > 50  # the check below means something
    assert thousand.promo_to_detractors == 0
    assert thousand.actions["flag_detractor"] == thousand.actions["detractor_ticket"] == detractors
    # A detractor now waits for support to resolve the case (a return may end the journey meanwhile), then
    # hears from us again: the simulated support resolves every ticket within days.
    assert detractors - 5 <= thousand.outcomes["exited: detractor"] <= detractors
    assert thousand.sends["detractor_followup"] == thousand.outcomes["exited: detractor"]


def test_same_seed_same_report(plan: JourneyPlan) -> None:
    a = simulate(plan, customers=300, days=90, seed=7)
    b = simulate(plan, customers=300, days=90, seed=7)
    assert report(a) == report(b)
    assert (a.sends, a.skips, a.actions, a.visits, a.outcomes, a.variants, a.nps, a.advances) == (
        b.sends,
        b.skips,
        b.actions,
        b.visits,
        b.outcomes,
        b.variants,
        b.nps,
        b.advances,
    )
    assert [t.entries for t in a.timelines] == [t.entries for t in b.timelines]
    other = simulate(plan, customers=300, days=90, seed=8)
    assert report(other) != report(a)


def test_report_shows_a_timeline_and_every_step(thousand: Result) -> None:
    text = report(thousand)
    assert text.startswith(f"Journey post_purchase (Post-purchase follow-up) — plan {thousand.plan.version}")
    assert "Timeline of customer c000000" in text
    for sid in thousand.plan.order:
        assert f"\n{sid} " in text
    assert "Promotional messages to detractors: 0" in text


MADRID_EN = {"timezone": "Europe/Madrid", "locale": "en"}
SCRIPT = "\n".join(
    [
        "# c1: delivered in two days, answers 10 the day after the survey; c2: answers 2",
        json.dumps(
            {"customer": "c1", "at": "0d", "type": "order.placed", "order_id": "A-1", "profile": MADRID_EN}
        ),
        json.dumps({"customer": "c1", "at": "2d", "type": "order.delivered", "order_id": "A-1"}),
        json.dumps(
            {
                "customer": "c1",
                "at": "2026-01-15T12:00:00+00:00",
                "type": "feedback.submitted",
                "data": {"score": 10, "survey": "nps"},
            }
        ),
        "",
        json.dumps(
            {
                "customer": "c2",
                "at": "0d",
                "type": "order.placed",
                "order_id": "B-1",
                "profile": {"timezone": "America/Mexico_City"},
            }
        ),
        json.dumps({"customer": "c2", "at": "3d", "type": "order.delivered", "order_id": "B-1"}),
        json.dumps({"customer": "c2", "at": "11d", "type": "feedback.submitted", "data": {"score": 2}}),
    ]
)


def _at(day: int, hour: int, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, 0, tzinfo=UTC)


def test_scripted_timeline_gives_the_exact_sequence(plan: JourneyPlan, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(SCRIPT, encoding="utf-8")
    result = simulate(plan, days=120, script=load_script(path))
    assert result.customers == result.enrolled == 2
    c1, c2 = result.timelines
    assert c1.customer["id"] == "c1"
    # The clock starts Monday 2026-01-05 08:00 UTC. Madrid is UTC+1, and UTC+2 from 29 March.
    assert c1.entries == [
        (_at(5, 8), "send", "thank_you (transactional, en)"),
        (_at(8, 9), "send", "delivery_check (transactional, en)"),  # delivered 7th; +1d, then 10:00 local
        (_at(14, 9), "send", "nps_survey (transactional, en)"),  # +6d at 10:00
        (_at(15, 12), "answered", "NPS 10 (promoter)"),
        (_at(15, 12), "send", "review_request (promotional, en)"),  # a good score: a product review
        (_at(19, 9), "send", "referral_ask_incentive (promotional, en)"),  # +3d, then 10:00 local
        (_at(18, 9, 2), "send", "content_tip (promotional, en)"),  # +30d is Wed 18 Feb, 10:00
        (_at(24, 9, 3), "send", "content_tip (promotional, en)"),  # +30d is Fri 20 Mar → Tue 24, 10:00
        # +30d is Thu 23 Apr 11:00 CEST, past 10:00 → Fri 24, not a content day → Tue 28, 10:00 CEST
        (_at(28, 8, 4), "send", "content_tip (promotional, en)"),
    ]
    # Mexico City is UTC-6: 10:00 local is 16:00 UTC.
    assert c2.entries == [
        (_at(5, 8), "send", "thank_you (transactional, es)"),
        (_at(9, 16), "send", "delivery_check (transactional, es)"),
        (_at(15, 16), "send", "nps_survey (transactional, es)"),
        (_at(16, 8), "answered", "NPS 2 (detractor)"),
        (_at(16, 8), "action", "set_attribute (flag_detractor)"),
        (_at(16, 8), "action", "open_ticket (detractor_ticket)"),
        (_at(16, 8), "send", "detractor_apology (transactional, es)"),
        (_at(15, 8, 2), "end", "exited (detractor)"),  # no ticket.resolved scripted: 30 days, no follow-up
    ]
    assert result.promo_to_detractors == 0


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"customer": "c1"}', "needs 'customer' and 'type'"),
        ('{"customer": "c1", "type": "order.placed", "at": "soon"}', "is not a duration"),
        (
            '{"customer": "c1", "type": "order.placed", "at": "2026-13-01T00:00:00"}',
            "neither a duration nor an ISO time",
        ),
        ("not json", "Expecting value"),
    ],
)
def test_bad_script_lines_name_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"customer": "c1", "type": "order.placed"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(PosventaError, match=rf"events\.jsonl:2: .*{message}"):
        load_script(path)


def test_at_least_one_customer_and_day(plan: JourneyPlan) -> None:
    with pytest.raises(PosventaError, match="at least 1"):
        simulate(plan, customers=0)


def _script(tmp_path: Path, *lines: dict[str, object]) -> list[dict[str, object]]:
    path = tmp_path / "timeline.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n", encoding="utf-8")
    return load_script(path)


def test_a_scripted_customer_has_only_what_the_script_says(plan: JourneyPlan, tmp_path: Path) -> None:
    """No invented promised date, items or channel: an order without a promised date gets the ten-day
    timeout, as in production; a store order gets no delivery tracking at all."""
    script = _script(
        tmp_path,
        {"customer": "web", "at": "0d", "type": "order.placed", "order_id": "W-1"},
        {
            "customer": "shop",
            "at": "0d",
            "type": "order.placed",
            "order_id": "S-1",
            "order": {"channel": "store"},
        },
    )
    result = simulate(plan, days=20, script=script)
    shop, web = result.timelines
    assert [what for _, kind, what in web.entries if kind == "send"][:2] == [
        "thank_you (transactional, es)",
        "delivery_late (transactional, es)",
    ]
    assert web.entries[1][0] == EPOCH + timedelta(days=10)
    assert "delivery_late" not in str(shop.entries) and "nps_survey" in str(shop.entries)
    assert (shop.customer, web.customer) == (
        {"id": "shop", "attributes": {}},
        {"id": "web", "attributes": {}},
    )


def test_scripted_complaints_hold_promotions_and_orders_enroll_again(
    plan: JourneyPlan, tmp_path: Path
) -> None:
    lines: list[dict[str, object]] = [
        {
            "customer": "c1",
            "at": "0d",
            "type": "order.placed",
            "order_id": "A-1",
            "order": {"promised_delivery_date": "2026-01-08"},
        },
        {"customer": "c1", "at": "2d", "type": "order.delivered", "order_id": "A-1"},
        {"customer": "c1", "at": "9d", "type": "feedback.submitted", "order_id": "A-1", "data": {"score": 8}},
        {"customer": "c1", "at": "20d", "type": "ticket.opened", "data": {"ticket_id": "T-1"}},
        {"customer": "c1", "at": "60d", "type": "ticket.resolved", "data": {"ticket_id": "T-1"}},
    ]
    result = simulate(plan, days=70, script=_script(tmp_path, *lines))
    [tl] = result.timelines
    tips = [at for at, kind, what in tl.entries if kind == "send" and what.startswith("content_tip")]
    assert tips == [EPOCH + timedelta(days=60)]  # held by the shop's complaint ticket until it was resolved
    again = _script(
        tmp_path,
        *lines[:2],
        {"customer": "c1", "at": "30d", "type": "order.placed", "order_id": "A-2"},
    )
    twice = simulate(plan, days=40, script=again)
    assert twice.enrolled == 2 and twice.sends["thank_you"] == 2
    assert twice.outcomes["converted: goal:order.placed"] == 1


def test_a_scripted_event_is_checked_like_an_api_event(plan: JourneyPlan, tmp_path: Path) -> None:
    script = _script(
        tmp_path,
        {"customer": "c1", "at": "0d", "type": "order.placed"},
        {"customer": "c1", "at": "1d", "type": "feedback.submitted", "data": {"score": 11}},
    )
    with pytest.raises(
        PosventaError, match=r"timeline\.jsonl:2: data\.score: Input should be less than or equal to 10"
    ):
        simulate(plan, script=script)

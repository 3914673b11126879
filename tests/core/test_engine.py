"""The pure engine: hand-built journeys, hand-built facts, exact decisions.

Times: T0 is Monday 2026-03-02 08:00 UTC — 09:00 in Madrid (CET, UTC+1 until 29 March), 02:00 in
Mexico City (UTC-6 all year).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from core_helpers import T0, customer, event, facts, hours, plan_of, run_until_rest

from posventa.engine import RECHECK, Act, Deferral, DeferralReason, Send, Skip, State, advance, bucket
from posventa.errors import EngineError
from posventa.plan import JourneyPlan

DAY = timedelta(days=1)
Make = Callable[..., JourneyPlan]


def journey(steps: str, *, policy: str = "", exit_: str = "", trigger: str = "event: order.placed") -> str:
    text = f"name: Test\ntrigger: {{{trigger}}}\n"
    if exit_:
        text += f"exit:\n{exit_}"
    if policy:
        text += f"policy:\n{policy}"
    return text + "steps:\n" + steps


@pytest.fixture
def make(templates_root: Path) -> Make:
    def build(steps: str, **kw: str) -> JourneyPlan:
        return plan_of(journey(steps, **kw), templates_root)

    return build


SEND_WAIT_SEND = """\
  - {id: hello, type: send, template: hello, category: transactional}
  - {id: pause, type: wait, duration: 1d}
  - {id: tip, type: send, template: tip, category: transactional}
"""


# ------------------------------------------------------------------------------------------- sends
def test_send_happens_once_and_advances(make: Make) -> None:
    plan = make(SEND_WAIT_SEND)
    first = advance(State.start(plan, T0), plan, T0, facts())
    assert first.effects == (Send("hello", 0, "hello", "email", "transactional", "es"),)
    assert first.effects[0].key == "hello:0"
    assert (first.state.step, first.status, first.next_due_at) == ("pause", "waiting", T0 + DAY)
    assert first.state.visits == {"hello": 1}
    # Looked at again before the wait is over: nothing is sent twice.
    again = advance(first.state, plan, T0 + hours(3), facts())
    assert again.effects == ()
    assert (again.state.step, again.next_due_at) == ("pause", T0 + DAY)
    done = advance(again.state, plan, T0 + DAY, facts())
    assert [e.step for e in done.effects] == ["tip"]
    assert (done.status, done.state.reason, done.next_due_at) == ("completed", "end of journey", None)
    # An ended enrollment does nothing, whatever happens.
    assert advance(done.state, plan, T0 + 9 * DAY, facts()).effects == ()


def test_locale_is_the_customers_when_supported_else_the_default(make: Make) -> None:
    plan = make(SEND_WAIT_SEND, policy="  default_locale: en\n")
    for locale, expected in (("es", "es"), ("en", "en"), ("fr", "en"), (None, "en")):
        adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(locale=locale)))
        assert adv.effects[0].locale == expected, locale


# ------------------------------------------------------------------------------------------- waits
@pytest.mark.parametrize(
    ("zone", "due"),
    [
        ("America/Mexico_City", datetime(2026, 3, 2, 16, 0, tzinfo=UTC)),  # 02:00 local → 10:00 today
        ("Europe/Madrid", datetime(2026, 3, 2, 9, 0, tzinfo=UTC)),  # 09:00 local → 10:00 today
        ("Asia/Tokyo", datetime(2026, 3, 3, 1, 0, tzinfo=UTC)),  # 17:00 local → 10:00 tomorrow
    ],
)
def test_wait_at_local_time_in_the_customers_zone(make: Make, zone: str, due: datetime) -> None:
    plan = make(
        "  - {id: w, type: wait, at: '10:00'}\n  - {id: t, type: send, template: tip, "
        "category: transactional}\n"
    )
    adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(timezone=zone)))
    assert (adv.status, adv.next_due_at) == ("waiting", due)
    assert (
        advance(adv.state, plan, due - timedelta(minutes=1), facts(customer=customer(timezone=zone))).effects
        == ()
    )
    sent = advance(adv.state, plan, due, facts(customer=customer(timezone=zone)))
    assert [e.step for e in sent.effects] == ["t"]


def test_customer_without_zone_uses_the_journeys_default_zone(make: Make) -> None:
    plan = make("  - {id: w, type: wait, at: '10:00'}\n", policy="  default_timezone: America/Mexico_City\n")
    adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(timezone=None)))
    assert adv.next_due_at == datetime(2026, 3, 2, 16, 0, tzinfo=UTC)


def test_wait_weekdays_and_time(make: Make) -> None:
    plan = make("  - {id: w, type: wait, at: '10:00', weekdays: [wed, fri]}\n")
    adv = advance(State.start(plan, T0), plan, T0, facts())  # Monday → Wednesday 10:00 Madrid
    assert adv.next_due_at == datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def test_wait_weekdays_only_keeps_the_time_of_day(make: Make) -> None:
    plan = make("  - {id: w, type: wait, weekdays: [mon]}\n  - {id: x, type: exit}\n")
    now_monday = advance(State.start(plan, T0), plan, T0, facts())
    assert now_monday.status == "exited"  # Monday is allowed: no wait at all
    tuesday = T0 + DAY
    adv = advance(State.start(plan, tuesday), plan, tuesday, facts())
    assert adv.next_due_at == T0 + 7 * DAY


def test_wait_duration_then_local_time_across_daylight_saving(make: Make) -> None:
    """30 days after 2 March is 1 April, after Madrid moved to CEST (UTC+2): 10:00 local is 08:00 UTC."""
    plan = make("  - {id: w, type: wait, duration: 30d, at: '10:00', weekdays: [tue, wed, thu]}\n")
    adv = advance(State.start(plan, T0), plan, T0, facts())
    assert adv.next_due_at == datetime(2026, 4, 1, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "due"),
    [
        ("0d", datetime(2026, 3, 9, 23, 0, tzinfo=UTC)),  # 10 March 00:00 in Madrid
        ("1d", datetime(2026, 3, 10, 23, 0, tzinfo=UTC)),
        ("-2d", datetime(2026, 3, 7, 23, 0, tzinfo=UTC)),
        ("12h", datetime(2026, 3, 10, 11, 0, tzinfo=UTC)),
    ],
)
def test_wait_until_date_with_offset(make: Make, offset: str, due: datetime) -> None:
    plan = make(
        "  - id: w\n    type: wait\n"
        f"    until_date: {{field: order.promised_delivery_date, offset: '{offset}'}}\n"
    )
    f = facts(order={"id": "o1", "promised_delivery_date": "2026-03-10"})
    adv = advance(State.start(plan, T0), plan, T0, f)
    assert (adv.status, adv.next_due_at) == ("waiting", due)
    assert advance(adv.state, plan, due, f).status == "completed"


def test_wait_until_an_instant_keeps_its_time(make: Make) -> None:
    plan = make("  - id: w\n    type: wait\n    until_date: {field: order.delivered_at, offset: 2d}\n")
    f = facts(order={"id": "o1", "delivered_at": "2026-03-03T17:45:00+00:00"})
    assert advance(State.start(plan, T0), plan, T0, f).next_due_at == datetime(2026, 3, 5, 17, 45, tzinfo=UTC)


def test_wait_until_a_missing_date_exits(make: Make) -> None:
    plan = make("  - id: w\n    type: wait\n    until_date: {field: order.promised_delivery_date}\n")
    adv = advance(State.start(plan, T0), plan, T0, facts())
    assert (adv.status, adv.state.reason, adv.next_due_at) == (
        "exited",
        "missing-date:order.promised_delivery_date",
        None,
    )


# ---------------------------------------------------------------------------------------- wait_for
FEEDBACK = """\
  - id: ask
    type: wait_for
    event: feedback.submitted
    timeout: 5d
    on_timeout: remind
    next: by_score
  - {id: remind, type: send, template: reminder, category: transactional, next: bye}
  - id: by_score
    type: branch
    cases:
      - {when: "event.data.score >= 9", goto: promo}
    otherwise: bye
  - {id: promo, type: send, template: promo, category: promotional, next: bye}
  - {id: bye, type: exit, reason: done}
"""


def test_wait_for_resolved_by_an_event_whose_data_reaches_the_branch(make: Make) -> None:
    plan = make(FEEDBACK)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    assert (waiting.status, waiting.next_due_at, waiting.state.wait_step) == ("waiting", T0 + 5 * DAY, "ask")
    answer = event("feedback.submitted", T0 + DAY, score=10, survey="nps")
    adv = advance(waiting.state, plan, T0 + DAY, facts(events=[answer]))
    assert [e.step for e in adv.effects] == ["promo"]
    assert adv.state.event is not None and adv.state.event["data"] == {"score": 10, "survey": "nps"}
    assert adv.state.consumed == (answer["id"],)
    assert (adv.status, adv.state.reason) == ("exited", "done")
    low = advance(
        waiting.state, plan, T0 + DAY, facts(events=[event("feedback.submitted", T0 + DAY, score=3)])
    )
    assert (low.effects, low.state.reason) == ((), "done")


def test_wait_for_timeout_path(make: Make) -> None:
    plan = make(FEEDBACK)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    assert advance(waiting.state, plan, T0 + 5 * DAY - timedelta(seconds=1), facts()).effects == ()
    adv = advance(waiting.state, plan, T0 + 5 * DAY, facts())
    assert [e.step for e in adv.effects] == ["remind"]
    assert any("timed out" in line for line in adv.trace)


def test_wait_for_event_after_the_timeout_does_not_count(make: Make) -> None:
    plan = make(FEEDBACK)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    late = event("feedback.submitted", T0 + 6 * DAY, score=10)
    adv = advance(waiting.state, plan, T0 + 6 * DAY, facts(events=[late]))
    assert [e.step for e in adv.effects] == ["remind"]


def test_wait_for_deadline_path(make: Make) -> None:
    plan = make("""\
  - id: await_delivery
    type: wait_for
    event: order.delivered
    deadline: {field: order.promised_delivery_date, offset: 1d}
    on_timeout: late
    next: check
  - {id: late, type: send, template: reminder, category: transactional, next: stop}
  - {id: check, type: send, template: hello, category: transactional, next: stop}
  - {id: stop, type: exit}
""")
    f = facts(order={"id": "o1", "promised_delivery_date": "2026-03-05"})
    deadline = datetime(2026, 3, 5, 23, 0, tzinfo=UTC)  # 6 March 00:00 in Madrid
    waiting = advance(State.start(plan, T0), plan, T0, f)
    assert waiting.next_due_at == deadline
    assert [e.step for e in advance(waiting.state, plan, deadline, f).effects] == ["late"]
    on_time = replace(f, events=[event("order.delivered", deadline - hours(1))])
    assert [e.step for e in advance(waiting.state, plan, deadline - hours(1), on_time).effects] == ["check"]
    other_order = replace(f, events=[event("order.delivered", deadline - hours(1), order_id="o2")])
    assert advance(waiting.state, plan, deadline - hours(1), other_order).effects == ()


def test_events_before_entry_are_ignored(make: Make) -> None:
    plan = make(FEEDBACK)
    old = event("feedback.submitted", T0 - hours(1), score=10)
    adv = advance(State.start(plan, T0), plan, T0 + hours(1), facts(events=[old]))
    assert (adv.status, adv.effects, adv.state.consumed) == ("waiting", (), ())


def test_consumed_events_are_not_reused_in_a_repeat(make: Make) -> None:
    plan = make("""\
  - {id: ask, type: send, template: hello, category: transactional}
  - {id: answer, type: wait_for, event: feedback.submitted, timeout: 2d, on_timeout: gave_up}
  - {id: thanks, type: send, template: tip, category: transactional}
  - {id: again, type: repeat, from: ask, times: 2}
  - {id: finished, type: exit, reason: answered-twice}
  - {id: gave_up, type: exit, reason: no-answer}
""")
    one = event("feedback.submitted", T0 + hours(1), score=8)
    f = facts(events=[one])
    first = advance(State.start(plan, T0), plan, T0, facts())  # facts are as of now: no answer yet
    assert [e.key for e in first.effects] == ["ask:0"]
    second = advance(first.state, plan, T0 + hours(1), f)
    assert [e.key for e in second.effects] == ["thanks:0", "ask:1"]
    assert (second.status, second.next_due_at) == ("waiting", T0 + hours(1) + 2 * DAY)
    end = advance(second.state, plan, T0 + hours(1) + 2 * DAY, f)
    assert (end.status, end.state.reason) == ("exited", "no-answer")
    two = replace(f, events=[one, event("feedback.submitted", T0 + hours(2), score=9)])
    end2 = advance(second.state, plan, T0 + hours(2), two)
    assert [e.key for e in end2.effects] == ["thanks:1"]
    assert (end2.status, end2.state.reason) == ("exited", "answered-twice")


def test_wait_for_match_condition(make: Make) -> None:
    plan = make(
        "  - id: w\n    type: wait_for\n    event: feedback.submitted\n"
        "    match: \"event.data.survey == 'nps'\"\n"
        "    timeout: 5d\n    on_timeout: x\n  - {id: y, type: exit, reason: matched}\n"
        "  - {id: x, type: exit, reason: timeout}\n"
    )
    product = event("feedback.submitted", T0 + hours(1), score=9, survey="product")
    assert advance(State.start(plan, T0), plan, T0 + hours(2), facts(events=[product])).status == "waiting"
    nps = event("feedback.submitted", T0 + hours(1), score=9, survey="nps")
    assert advance(State.start(plan, T0), plan, T0 + hours(2), facts(events=[nps])).state.reason == "matched"


# ----------------------------------------------------------------------------------- branch, split
def test_branch_first_true_case_else_otherwise(make: Make) -> None:
    plan = make("""\
  - id: b
    type: branch
    cases:
      - {when: "order.total >= 100", goto: big}
      - {when: "customer.locale == 'en'", goto: english}
  - {id: small, type: exit, reason: small}
  - {id: big, type: exit, reason: big}
  - {id: english, type: exit, reason: english}
""")

    def reason(**kw: Any) -> str | None:
        return advance(State.start(plan, T0), plan, T0, facts(**kw)).state.reason

    assert reason(order={"id": "o1", "total": 150}, customer=customer(locale="en")) == "big"
    assert reason(order={"id": "o1", "total": 50}, customer=customer(locale="en")) == "english"
    assert reason(order={"id": "o1", "total": 50}) == "small"


def test_condition_error_is_false_with_a_trace_entry(make: Make) -> None:
    plan = make(
        '  - id: b\n    type: branch\n    cases:\n      - {when: "event.data.score >= 9", goto: yes_}\n'
        "  - {id: no_, type: exit, reason: otherwise}\n  - {id: yes_, type: exit, reason: promoter}\n"
    )
    adv = advance(State.start(plan, T0), plan, T0, facts())  # no event: None >= 9 cannot be evaluated
    assert adv.state.reason == "otherwise"
    assert any(
        line.startswith("condition treated as false: condition 'event.data.score >= 9'") for line in adv.trace
    )


SPLIT = """\
  - id: s
    type: split
    holdout: 10
    variants:
      - {name: plain, weight: 30, goto: plain}
      - {name: incentive, weight: 70, goto: incentive}
  - {id: plain, type: exit, reason: plain}
  - {id: incentive, type: exit, reason: incentive}
"""


def test_split_is_deterministic_per_customer(make: Make) -> None:
    plan = make(SPLIT)
    for cid in ("c1", "c2", "c3", "c4", "c5"):
        f = facts(customer=customer(id=cid))
        first = advance(State.start(plan, T0), plan, T0, f)
        for later in (T0 + DAY, T0 + 30 * DAY):
            again = advance(State.start(plan, later), plan, later, f)
            assert (again.state.variant, again.state.reason) == (first.state.variant, first.state.reason)
    assert bucket("j", "c1", "s") == bucket("j", "c1", "s")
    assert 0 <= bucket("j", "c1", "s") < 100


def test_split_distribution_follows_weights_and_holdout(make: Make) -> None:
    plan = make(SPLIT)
    counts: Counter[str] = Counter()
    for i in range(10_000):
        adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(id=f"cust-{i}")))
        counts[adv.state.variant or "none"] += 1
    assert set(counts) == {"holdout", "plain", "incentive"}
    for name, share in (("holdout", 0.10), ("plain", 0.90 * 0.30), ("incentive", 0.90 * 0.70)):
        assert abs(counts[name] / 10_000 - share) <= 0.03, counts


def test_holdout_exits_untouched(make: Make) -> None:
    plan = make(SPLIT)
    held = next(f"cust-{i}" for i in range(1000) if bucket(plan.id, f"cust-{i}", "s") < 10)
    adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(id=held)))
    assert (adv.status, adv.state.reason, adv.state.variant, adv.effects) == (
        "exited",
        "holdout",
        "holdout",
        (),
    )


# --------------------------------------------------------------------------------- actions, repeat
def test_action_effects(make: Make) -> None:
    plan = make("""\
  - {id: tag, type: action, set_attribute: {nps_segment: detractor, calls: 2}}
  - {id: ticket, type: action, open_ticket: {subject: Call them, priority: high}}
  - {id: hook, type: action, webhook: {url: "https://crm.example/hook", event: detractor}}
""")
    adv = advance(State.start(plan, T0), plan, T0, facts())
    assert adv.effects == (
        Act("tag", 0, "set_attribute", {"nps_segment": "detractor", "calls": 2}),
        Act(
            "ticket", 0, "open_ticket", {"subject": "Call them", "category": "complaint", "priority": "high"}
        ),
        Act("hook", 0, "webhook", {"url": "https://crm.example/hook", "event": "detractor"}),
    )
    assert [e.key for e in adv.effects] == ["tag:0", "ticket:0", "hook:0"]
    assert adv.status == "completed"


def test_repeat_runs_the_block_exactly_n_times(make: Make) -> None:
    plan = make("""\
  - {id: w, type: wait, duration: 7d}
  - {id: tip, type: send, template: tip, category: transactional}
  - {id: more, type: repeat, from: w, times: 3}
  - {id: last, type: send, template: hello, category: transactional}
""")
    state, advances = run_until_rest(plan, facts())
    keys = [e.key for a in advances for e in a.effects]
    assert keys == ["tip:0", "tip:1", "tip:2", "last:0"]
    assert state.status == "completed"
    assert state.visits["w"] == 3 and state.visits["more"] == 3


# ------------------------------------------------------------------------------------- exits, goal
EXITS = '  on:\n    - order.canceled\n  goal: {event: order.placed, when: "event.order_id != order.id"}\n'


def test_exit_event_is_scoped_to_the_order(make: Make) -> None:
    plan = make(SEND_WAIT_SEND, exit_=EXITS)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    other = advance(
        waiting.state,
        plan,
        T0 + hours(2),
        facts(events=[event("order.canceled", T0 + hours(1), order_id="o2")]),
    )
    assert other.status == "waiting"
    mine = advance(waiting.state, plan, T0 + hours(2), facts(events=[event("order.canceled", T0 + hours(1))]))
    assert (mine.status, mine.state.reason, mine.state.step, mine.next_due_at) == (
        "exited",
        "event:order.canceled",
        None,
        None,
    )
    assert advance(mine.state, plan, T0 + DAY, facts()).effects == ()


def test_exit_before_entry_does_not_count(make: Make) -> None:
    plan = make(SEND_WAIT_SEND, exit_=EXITS)
    adv = advance(State.start(plan, T0), plan, T0, facts(events=[event("order.canceled", T0 - hours(1))]))
    assert adv.status == "waiting"


def test_goal_converts(make: Make) -> None:
    plan = make(SEND_WAIT_SEND, exit_=EXITS)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    same_order = advance(waiting.state, plan, T0 + hours(2), facts(events=[event("order.placed", T0)]))
    assert same_order.status == "waiting"  # the trigger itself is not a repeat purchase
    again = advance(
        waiting.state,
        plan,
        T0 + hours(2),
        facts(events=[event("order.placed", T0), event("order.placed", T0 + hours(1), order_id="o2")]),
    )
    assert (again.status, again.state.reason) == ("converted", "goal:order.placed")


# ------------------------------------------------------------------------------------------ policy
PROMO_THEN_TX = """\
  - {id: promo, type: send, template: promo, category: promotional}
  - {id: receipt, type: send, template: hello, category: transactional}
"""
QUIET = "  quiet_hours: {start: '21:00', end: '09:00'}\n"


def test_quiet_hours_defer_promotional_to_their_end(make: Make) -> None:
    plan = make(PROMO_THEN_TX, policy=QUIET)
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Madrid
    end = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Madrid
    adv = advance(State.start(plan, late), plan, late, facts())
    assert (adv.effects, adv.status, adv.next_due_at, adv.state.step) == ((), "waiting", end, "promo")
    assert adv.deferrals == (Deferral("promo", DeferralReason.QUIET_HOURS, end),)
    sent = advance(adv.state, plan, end, facts())
    assert [e.key for e in sent.effects] == ["promo:0", "receipt:0"]
    assert sent.deferrals == ()


def test_quiet_hours_spare_transactional_unless_applies_to_all(make: Make) -> None:
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)
    tx = "  - {id: receipt, type: send, template: hello, category: transactional}\n"
    promotional_only = make(tx, policy=QUIET)
    assert [
        e.step for e in advance(State.start(promotional_only, late), promotional_only, late, facts()).effects
    ] == ["receipt"]
    everything = make(tx, policy="  quiet_hours: {start: '21:00', end: '09:00', applies_to: all}\n")
    adv = advance(State.start(everything, late), everything, late, facts())
    assert (adv.effects, adv.next_due_at) == ((), datetime(2026, 3, 3, 8, 0, tzinfo=UTC))


def test_quiet_hours_are_the_customers_local_hours(make: Make) -> None:
    plan = make(PROMO_THEN_TX, policy=QUIET)
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 15:30 in Mexico City
    mx = facts(customer=customer(timezone="America/Mexico_City"))
    assert [e.step for e in advance(State.start(plan, late), plan, late, mx).effects] == ["promo", "receipt"]


def test_frequency_cap_defers_until_the_oldest_send_leaves_the_window(make: Make) -> None:
    plan = make(PROMO_THEN_TX, policy="  frequency_cap: {max: 2, per: 7d}\n")
    recent = [T0 - 6 * DAY, T0 - 2 * DAY]
    adv = advance(State.start(plan, T0), plan, T0, facts(recent_promotional=recent))
    assert (adv.effects, adv.status, adv.next_due_at) == ((), "waiting", T0 + DAY)
    assert adv.deferrals == (Deferral("promo", DeferralReason.FREQUENCY_CAP, T0 + DAY),)
    assert [e.step for e in advance(adv.state, plan, T0 + DAY, facts(recent_promotional=recent)).effects] == [
        "promo",
        "receipt",
    ]
    one_recent = advance(State.start(plan, T0), plan, T0, facts(recent_promotional=[T0 - 2 * DAY]))
    assert [e.step for e in one_recent.effects] == ["promo", "receipt"]


def test_frequency_cap_counts_sends_of_the_same_advance(make: Make) -> None:
    plan = make(
        """\
  - {id: p1, type: send, template: promo, category: promotional}
  - {id: p2, type: send, template: promo, category: promotional}
""",
        policy="  frequency_cap: {max: 1, per: 1d}\n",
    )
    adv = advance(State.start(plan, T0), plan, T0, facts())
    assert ([e.step for e in adv.effects], adv.state.step, adv.next_due_at) == (["p1"], "p2", T0 + DAY)


def test_open_complaint_holds_promotional_until_it_is_gone(make: Make) -> None:
    plan = make(PROMO_THEN_TX)
    held = advance(State.start(plan, T0), plan, T0, facts(open_complaint=True))
    assert (held.effects, held.status, held.next_due_at) == ((), "held", T0 + RECHECK)
    assert [(d.step, d.reason.value) for d in held.deferrals] == [("promo", "complaint_hold")]
    still = advance(held.state, plan, T0 + RECHECK, facts(open_complaint=True))
    assert (still.effects, still.status) == ((), "held")
    released = advance(still.state, plan, T0 + 2 * RECHECK, facts(open_complaint=False))
    assert [e.key for e in released.effects] == ["promo:0", "receipt:0"]
    tx_only = make("  - {id: receipt, type: send, template: hello, category: transactional}\n")
    assert (
        advance(State.start(tx_only, T0), tx_only, T0, facts(open_complaint=True)).effects[0].step
        == "receipt"
    )


def test_complaint_hold_can_be_switched_off(make: Make) -> None:
    plan = make(PROMO_THEN_TX, policy="  hold_promotions_during_complaint: false\n")
    adv = advance(State.start(plan, T0), plan, T0, facts(open_complaint=True))
    assert [e.step for e in adv.effects] == ["promo", "receipt"]


def test_suppressed_address_skips_with_the_reason(make: Make) -> None:
    plan = make(PROMO_THEN_TX)
    adv = advance(State.start(plan, T0), plan, T0, facts(suppressed="bounce"))
    assert adv.effects == (
        Skip("promo", 0, "suppressed:bounce", "promotional", "promo"),
        Skip("receipt", 0, "suppressed:bounce", "transactional", "hello"),
    )
    assert adv.status == "completed"
    no_email = advance(State.start(plan, T0), plan, T0, facts(customer=customer(email=None)))
    assert {e.reason for e in no_email.effects if isinstance(e, Skip)} == {"no-address"}


def test_unsubscribed_from_promotions_skips_only_promotional(make: Make) -> None:
    plan = make(PROMO_THEN_TX)
    for f in (facts(unsubscribed_promotional=True), facts(customer=customer(consent_email=False))):
        adv = advance(State.start(plan, T0), plan, T0, f)
        assert adv.effects == (
            Skip("promo", 0, "unsubscribed", "promotional", "promo"),
            Send("receipt", 0, "hello", "email", "transactional", "es"),
        )


# ----------------------------------------------------------------------------------- purity, state
def test_same_inputs_same_outputs(make: Make) -> None:
    plan = make(FEEDBACK, exit_=EXITS, policy=QUIET)
    f = facts(events=[event("feedback.submitted", T0 + hours(30), score=10)])
    s0 = State.start(plan, T0)
    a, b = advance(s0, plan, T0, facts()), advance(s0, plan, T0, facts())
    assert a == b
    c, d = advance(a.state, plan, T0 + hours(30), f), advance(b.state, plan, T0 + hours(30), f)
    assert c == d and c.effects
    assert s0 == State.start(plan, T0)  # the input state was not mutated


def test_state_json_round_trip(make: Make) -> None:
    plan = make(FEEDBACK)
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    f = facts(events=[event("feedback.submitted", T0 + DAY, score=4)])
    for state in (waiting.state, advance(waiting.state, plan, T0 + DAY, f).state):
        stored = json.loads(json.dumps(state.to_json()))
        back = State.from_json(stored)
        assert back == state
        assert back.to_json() == stored
        assert advance(back, plan, T0 + 2 * DAY, f) == advance(state, plan, T0 + 2 * DAY, f)


def test_naive_now_and_unknown_step_are_engine_errors(make: Make) -> None:
    plan = make(SEND_WAIT_SEND)
    with pytest.raises(EngineError, match="aware"):
        advance(State.start(plan, T0), plan, T0.replace(tzinfo=None), facts())
    stale = replace(State.start(plan, T0), step="removed_step")
    with pytest.raises(EngineError, match="'removed_step' is not in plan"):
        advance(stale, plan, T0, facts())


def test_fields_named_like_dict_methods_read_the_data() -> None:
    """`order.items` is the order's items, not dict.items (conditions and templates alike)."""
    from posventa.expressions import compile_condition
    from posventa.templates import sample_context

    assert compile_condition("order.items | length == 2")({"order": {"items": [1, 2]}})
    assert compile_condition("order.items[0].sku == 'A'")({"order": {"items": [{"sku": "A"}]}})
    assert sample_context()["order"]["items"][0]["sku"] == "CEP-01"

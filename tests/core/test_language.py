"""The language features journeys gained with issue 15, end to end in the core: each keyword's diagnostics
(file:line:col, code, message, hint), its compiled form, and what the engine does with it.

Keywords: ``trigger_event`` (conditions, templates), ``journey.visits`` / ``journey.visit``, ``expires_after``
(sends), ``set_attribute: {name: {from: <path>}}``, ``item.*`` date triggers with ``once_per: item`` and
``item`` (conditions, templates), ``holdout: {percent, goto}``, ``policy.stale_after``; and the journey's
own clock: waits count from when things happened, never from when a worker got to them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest
from core_helpers import T0, customer, event, facts, hours, plan_of

from posventa.engine import Act, Send, Skip, State, advance, bucket
from posventa.entry import customer_dates, is_stale, order_dates, trigger_context
from posventa.errors import JourneyError
from posventa.facts import derive_item, derive_order
from posventa.loader import load_text
from posventa.plan import JourneyPlan, SplitStep
from posventa.schema import json_schema
from posventa.templates import Templates, message_context
from posventa.validate import check_text

DAY = timedelta(days=1)
RETURNS = "name: Case\ntrigger:\n  event: return.requested\nsteps:\n"
WARRANTY = "name: Case\ntrigger:\n  date: order.warranty_expires_on\nsteps:\n"
ITEMS = "name: Case\ntrigger:\n  date: item.runs_out_on\n  offset: -5d\nentry: {once_per: item}\nsteps:\n"
SPLIT_TO = (
    "  - {id: s, type: split, variants: [{name: a, weight: 1, goto: t}], %s}\n  - {id: t, type: exit}\n"
)


@dataclass(frozen=True)
class E:
    line: int
    col: int
    code: str
    message: str
    hint: str | None = None


CASES: list[tuple[str, str, list[E]]] = [
    (
        "holdout-goto-unknown-step",
        RETURNS + SPLIT_TO % "holdout: {percent: 10, goto: nowhere}",
        [E(5, 98, "unknown-step", "goto target 'nowhere' does not exist")],
    ),
    (
        "holdout-percent-out-of-range",
        RETURNS + SPLIT_TO % "holdout: {percent: 100}",
        [E(5, 88, "invalid-value", "percent: Input should be less than or equal to 99 (got 100)")],
    ),
    (
        "holdout-not-a-number",
        RETURNS + SPLIT_TO % "holdout: ten",
        [E(5, 78, "invalid-value", "'ten' is not a holdout", "{percent: 10, goto: <step>}")],
    ),
    (
        "holdout-typo",
        RETURNS + SPLIT_TO % "holdout: {percent: 10, gotto: t}",
        [E(5, 92, "unknown-field", "unknown field 'gotto'", "did you mean 'goto'?")],
    ),
    (
        "expires-after-zero",
        RETURNS + "  - {id: a, type: send, template: hello, category: transactional, expires_after: 0d}\n",
        [E(5, 82, "bad-duration", "'0d' must be a positive duration")],
    ),
    (
        "copy-not-a-path",
        RETURNS
        + "  - id: a\n    type: action\n    set_attribute:\n      last: {from: 'event.data.rma id'}\n",
        [E(8, 20, "invalid-value", "'event.data.rma id' is not a path to copy from", "trigger_event.data")],
    ),
    (
        "copy-unknown-event-field",
        RETURNS + "  - id: a\n    type: action\n    set_attribute:\n      last: {from: event.data.rma}\n",
        [E(8, 20, "unknown-name", "no event carries a data field 'rma'", "did you mean 'rma_id'?")],
    ),
    (
        "copy-a-list",
        RETURNS + "  - id: a\n    type: action\n    set_attribute:\n      last: [1, 2]\n",
        [E(8, 13, "invalid-value", "'last' cannot be set to [1, 2]", "{from: event.data.<field>}")],
    ),
    (
        "trigger-event-field-of-the-trigger",
        RETURNS + "  - id: w\n    type: wait_for\n    event: return.received\n"
        '    match: "event.data.rma_id == trigger_event.data.rma"\n    timeout: 7d\n    on_timeout: t\n'
        "  - {id: t, type: exit}\n",
        [
            E(
                8,
                12,
                "unknown-name",
                "'return.requested' (the trigger) has no data field 'rma'; it carries reason, rma_id, sku",
                "did you mean 'rma_id'?",
            )
        ],
    ),
    (
        "trigger-event-without-an-event-trigger",
        WARRANTY + "  - id: b\n    type: branch\n"
        "    cases: [{when: \"trigger_event.type == 'x'\", goto: t}]\n  - {id: t, type: exit}\n",
        [E(7, 20, "unknown-name", "'trigger_event' is only known to journeys that an event starts")],
    ),
    (
        "item-without-an-item-trigger",
        RETURNS + "  - id: b\n    type: branch\n    cases: [{when: \"item.sku == 'x'\", goto: t}]\n"
        "  - {id: t, type: exit}\n",
        [E(7, 20, "unknown-name", "'item' is only known to journeys that a date trigger over items starts")],
    ),
    (
        "item-date-without-an-item-trigger",
        RETURNS + "  - {id: w, type: wait, until_date: {field: item.runs_out_on}}\n",
        [E(5, 45, "unknown-date-field", "'item.runs_out_on' is only known", "use 'order.runs_out_on'")],
    ),
    (
        "visits-of-an-unknown-step",
        RETURNS + "  - {id: tip, type: wait, duration: 1d}\n  - id: b\n    type: branch\n"
        '    cases: [{when: "journey.visits.tipp >= 2", goto: t}]\n  - {id: t, type: exit}\n',
        [E(8, 20, "unknown-name", "'journey.visits' counts steps, and there is no step 'tipp'", "'tip'")],
    ),
    (
        "stale-after-zero",
        RETURNS.replace("steps:\n", "policy: {stale_after: 0d}\nsteps:\n") + "  - {id: t, type: exit}\n",
        [E(4, 23, "bad-duration", "'0d' must be a positive duration")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [pytest.param(t, e, id=name) for name, t, e in CASES])
def test_diagnostics(text: str, expected: list[E], templates_root: Path) -> None:
    with pytest.raises(JourneyError) as info:
        check_text(text, "journeys/case.yaml", templates_root)
    got = info.value.diagnostics
    rendered = "\n".join(d.render() for d in got)
    assert [(d.line, d.column, d.code) for d in got] == [(e.line, e.col, e.code) for e in expected], rendered
    for d, e in zip(got, expected, strict=True):
        assert e.message in d.message, rendered
        if e.hint is not None:
            assert d.hint is not None and e.hint in d.hint, rendered


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (RETURNS.replace("steps:\n", "entry: {once_per: item}\nsteps:\n"), (4, 19), "once_per: item needs"),
        (WARRANTY.replace("steps:\n", "policy: {stale_after: 3d}\nsteps:\n"), (4, 23), "guards event"),
    ],
)
def test_settings_without_effect(
    text: str, where: tuple[int, int], message: str, templates_root: Path
) -> None:
    [w] = check_text(text + "  - {id: t, type: exit}\n", "journeys/case.yaml", templates_root).warnings
    assert (w.line, w.column, w.code, w.severity) == (*where, "no-effect", "warning")
    assert message in w.message


def test_an_item_journey_may_read_its_item(templates_root: Path) -> None:
    text = ITEMS + (
        "  - {id: w, type: wait, until_date: {field: item.runs_out_on, offset: -1d}}\n"
        "  - id: b\n    type: branch\n"
        '    cases: [{when: "item.runs_out_in_days > 10", goto: t}]\n'
        "  - id: a\n    type: action\n    set_attribute: {last_sku: {from: item.sku}, kind: consumable}\n"
        "  - {id: t, type: exit}\n"
    )
    plan = plan_of(text, templates_root)
    assert plan.entry.once_per == "item"
    assert dict(plan.steps["a"].params) == {"last_sku": {"from": "item.sku"}, "kind": "consumable"}  # type: ignore[union-attr]


def test_short_holdout_form_is_the_long_form_without_goto(templates_root: Path) -> None:
    short = plan_of(RETURNS + SPLIT_TO % "holdout: 10", templates_root)
    long = plan_of(RETURNS + SPLIT_TO % "holdout: {percent: 10}", templates_root)
    assert short == long and short.steps["s"] == SplitStep(long.steps["s"].variants, 10)  # type: ignore[union-attr]
    assert "holdout_goto" not in short.to_json()["steps"]["s"]  # a format-1 plan, byte for byte


# --------------------------------------------------------------------------------------------- engine
Make = Callable[[str], JourneyPlan]


@pytest.fixture
def make(templates_root: Path) -> Make:
    def build(text: str) -> JourneyPlan:
        return plan_of(text, templates_root)

    return build


ORDER = "name: Case\ntrigger:\n  event: order.placed\n%ssteps:\n"


def test_waits_count_from_when_the_event_happened(make: Make) -> None:
    """A worker that gets to the order five hours late does not push the whole journey five hours."""
    plan = make(
        ORDER % ""
        + "  - {id: w, type: wait, duration: 1d}\n"
        + "  - {id: hi, type: send, template: hello, category: transactional}\n"
    )
    late = advance(State.start(plan, T0), plan, T0 + hours(5), facts())
    assert late.next_due_at == T0 + DAY
    assert [e.step for e in advance(late.state, plan, T0 + DAY, facts()).effects] == ["hi"]


def test_nothing_is_sent_in_the_past_and_sends_restart_the_clock(make: Make) -> None:
    plan = make(
        ORDER % ""
        + "  - {id: w, type: wait, duration: 1d}\n"
        + "  - {id: hi, type: send, template: hello, category: transactional}\n"
        + "  - {id: w2, type: wait, duration: 1d}\n"
        + "  - {id: tip, type: send, template: tip, category: transactional}\n"
    )
    now = T0 + 3 * DAY  # ingested three days after the order
    adv = advance(State.start(plan, T0), plan, now, facts())
    assert [e.step for e in adv.effects] == ["hi"]  # due two days ago: happens now, not before
    assert adv.next_due_at == now + DAY  # the next wait counts from the message, not from the order
    assert adv.state.since == now


def test_a_wait_for_continues_from_the_event_it_received(make: Make) -> None:
    plan = make(
        ORDER % ""
        + "  - {id: d, type: wait_for, event: order.delivered, timeout: 10d, on_timeout: x}\n"
        + "  - {id: w, type: wait, duration: 1d}\n  - {id: x, type: exit}\n"
    )
    waiting = advance(State.start(plan, T0), plan, T0, facts())
    delivered = event("order.delivered", T0 + 2 * DAY)
    adv = advance(waiting.state, plan, T0 + 2 * DAY + hours(7), facts(events=[delivered]))
    assert adv.next_due_at == T0 + 3 * DAY


EXPIRING = (
    "  - {id: hi, type: send, template: promo, category: promotional, expires_after: %s}\n"
    "  - {id: x, type: exit}\n"
)


def test_a_send_processed_too_late_expires(make: Make) -> None:
    plan = make(ORDER % "" + EXPIRING % "2d")
    adv = advance(State.start(plan, T0), plan, T0 + 2 * DAY, facts())
    assert adv.effects == (Skip("hi", 0, "expired", "promotional", "promo"),)
    assert (adv.status, adv.state.reason) == ("exited", "completed")  # the journey goes on
    in_time = advance(State.start(plan, T0), plan, T0 + 2 * DAY - timedelta(minutes=1), facts())
    assert [type(e) for e in in_time.effects] == [Send]


def test_a_deferral_that_would_end_too_late_expires_at_once(make: Make) -> None:
    quiet = 'policy: {quiet_hours: {start: "21:00", end: "09:00"}}\n'
    night = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Madrid: deferred until 09:00
    short = make(ORDER % quiet + EXPIRING % "1h")
    assert advance(State.start(short, night), short, night, facts()).effects[0] == Skip(
        "hi", 0, "expired", "promotional", "promo"
    )
    long = make(ORDER % quiet + EXPIRING % "12h")
    deferred = advance(State.start(long, night), long, night, facts())
    assert (deferred.effects, deferred.next_due_at) == ((), datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    assert [type(e) for e in advance(deferred.state, long, deferred.next_due_at, facts()).effects] == [Send]


def test_a_held_send_expires_when_its_time_is_up(make: Make) -> None:
    plan = make(ORDER % "" + EXPIRING % "3h")
    held = advance(State.start(plan, T0), plan, T0, facts(open_complaint=True))
    assert (held.status, held.next_due_at) == ("held", T0 + hours(3))  # looked at again when it expires
    assert advance(held.state, plan, T0 + hours(3), facts(open_complaint=True)).effects == (
        Skip("hi", 0, "expired", "promotional", "promo"),
    )


def test_holdout_may_continue_at_a_later_step(make: Make) -> None:
    plan = make(
        ORDER % ""
        + "  - id: s\n    type: split\n    holdout: {percent: 10, goto: tip}\n"
        + "    variants: [{name: a, weight: 1, goto: ask}]\n"
        + "  - {id: ask, type: send, template: promo, category: promotional}\n"
        + "  - {id: tip, type: send, template: tip, category: transactional}\n"
    )
    held = next(f"cust-{i}" for i in range(1000) if bucket(plan.id, f"cust-{i}", "s") < 10)
    adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(id=held)))
    assert ([e.step for e in adv.effects], adv.state.variant, adv.status) == (["tip"], "holdout", "completed")
    chosen = next(f"cust-{i}" for i in range(1000) if bucket(plan.id, f"cust-{i}", "s") >= 10)
    adv = advance(State.start(plan, T0), plan, T0, facts(customer=customer(id=chosen)))
    assert [e.step for e in adv.effects] == ["ask", "tip"]


RMA_WAIT = (
    "  - id: parcel\n    type: wait_for\n    event: return.received\n"
    '    match: "event.data.rma_id == trigger_event.data.rma_id"\n'
    "    timeout: 14d\n    on_timeout: lost\n"
    "  - id: tag\n    type: action\n"
    "    set_attribute:\n"
    "      last_rma: {from: trigger_event.data.rma_id}\n"
    "      refund: {from: event.data.refund_amount}\n"
    "      note: {from: event.data.comment}\n"
    "      source: journey\n"
    "  - {id: lost, type: exit}\n"
)


def test_wait_for_matches_the_triggering_event_and_set_attribute_copies(make: Make) -> None:
    plan = make(RETURNS + RMA_WAIT)
    requested = event("return.requested", T0, rma_id="RMA-2")
    state = State.start(plan, T0, trigger={**requested, "occurred_at": T0.isoformat()})
    waiting = advance(state, plan, T0, facts())
    other = event("return.received", T0 + DAY, rma_id="RMA-1", refund_amount=5.0)  # another return's parcel
    mine = event("return.received", T0 + 2 * DAY, rma_id="RMA-2", refund_amount=30.0)
    still = advance(waiting.state, plan, T0 + DAY, facts(events=[other]))
    assert (still.effects, still.status) == ((), "waiting")
    got = advance(still.state, plan, T0 + 2 * DAY, facts(events=[other, mine]))
    assert got.effects == (
        Act("tag", 0, "set_attribute", {"last_rma": "RMA-2", "refund": 30.0, "source": "journey"}),
    )
    assert "tag: note unchanged (event.data.comment has no value)" in got.trace
    assert got.state.trigger_event is not None and got.state.trigger_event["data"]["rma_id"] == "RMA-2"


def test_a_state_stored_before_trigger_existed_still_knows_its_trigger(make: Make) -> None:
    plan = make(RETURNS + RMA_WAIT)
    old = State.start(plan, T0, trigger={"type": "return.requested", "data": {"rma_id": "RMA-2"}}).to_json()
    del old["trigger"], old["since"], old["item"]
    restored = State.from_json(old)
    mine = event("return.received", T0 + DAY, rma_id="RMA-2")
    adv = advance(restored, plan, T0 + DAY, facts(events=[mine]))
    assert [e.step for e in adv.effects] == ["tag"]


def test_visits_count_the_rounds_of_a_repeat(make: Make) -> None:
    plan = make(
        ORDER % ""
        + "  - {id: w, type: wait, duration: 7d}\n"
        + "  - {id: tip, type: send, template: tip, category: transactional}\n"
        + "  - id: b\n    type: branch\n"
        + '    cases: [{when: "journey.visits.tip >= 2", goto: stop}]\n'
        + "  - {id: more, type: repeat, from: w, times: 5}\n  - {id: stop, type: exit}\n"
    )
    state, now, sends = State.start(plan, T0), T0, []
    for _ in range(10):
        adv = advance(state, plan, now, facts())
        sends += [e for e in adv.effects if isinstance(e, Send)]
        state = adv.state
        if adv.next_due_at is None:
            break
        now = adv.next_due_at
    assert [(s.context["visit"], s.context["visits"]["tip"]) for s in sends] == [(1, 1), (2, 2)]
    assert state.reason == "completed" and state.visits["tip"] == 2


# ------------------------------------------------------------------------------------------- per item
BRUSH = {"sku": "CEP-01", "name": "Cepillo", "runs_out_in_days": 90, "warranty_months": 24}
JAM = {"sku": "MER-02", "name": "Mermelada", "runs_out_in_days": 30, "warranty_months": 0}
TWO_ITEMS = {
    "id": "o1",
    "placed_at": "2026-01-10T10:00:00+00:00",
    "delivered_at": "2026-01-12",
    "items": [BRUSH, JAM],
}


def test_each_item_has_its_own_dates_and_zero_means_not_applicable() -> None:
    assert derive_item(TWO_ITEMS, "MER-02") == {
        **JAM,
        "warranty_expires_on": None,
        "runs_out_on": "2026-02-11",
    }
    assert derive_item(TWO_ITEMS, "CEP-01")["warranty_expires_on"] == "2028-01-12"  # type: ignore[index]
    order = derive_order(TWO_ITEMS)
    assert order is not None
    assert (order["runs_out_on"], order["warranty_expires_on"]) == ("2026-02-11", "2028-01-12")
    assert derive_order({**TWO_ITEMS, "items": [{**BRUSH, "runs_out_in_days": 0, "warranty_months": 0}]}) == {
        **TWO_ITEMS,
        "items": [{**BRUSH, "runs_out_in_days": 0, "warranty_months": 0}],
        "days_late": None,
        "delivered_late": False,
        "warranty_expires_on": None,
        "runs_out_on": None,
    }


def test_an_item_date_trigger_enrolls_per_item_and_the_journey_sees_its_item(make: Make) -> None:
    plan = make(
        ITEMS
        + "  - {id: w, type: wait, until_date: {field: item.runs_out_on, offset: -1d}}\n"
        + "  - {id: hi, type: send, template: hello, category: transactional}\n"
    )
    [jam] = order_dates(plan, TWO_ITEMS, datetime(2026, 2, 6).date())  # 5 days before the jam runs out
    assert (jam.occurrence, jam.item and jam.item["sku"]) == ("date:o1:MER-02:2026-02-06", "MER-02")
    assert order_dates(plan, TWO_ITEMS, datetime(2026, 4, 7).date())[0].item["sku"] == "CEP-01"  # type: ignore[index]
    state = State.start(plan, datetime(2026, 2, 6, tzinfo=UTC), item="MER-02")
    f = facts(order=TWO_ITEMS)
    waiting = advance(state, plan, datetime(2026, 2, 6, 2, tzinfo=UTC), f)
    assert waiting.next_due_at == datetime(2026, 2, 9, 23, tzinfo=UTC)  # 10 Feb 00:00 in Madrid
    [sent] = advance(waiting.state, plan, waiting.next_due_at, f).effects
    assert isinstance(sent, Send) and sent.context["item"]["name"] == "Mermelada"
    ctx = trigger_context(plan, customer(), TWO_ITEMS, None, jam.item)
    assert ctx["item"]["runs_out_on"] == "2026-02-11"


def test_templates_see_the_trigger_the_visit_and_the_item(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "t.j2").write_text(
        "{% block subject %}{{ trigger_event.data.rma_id }} #{{ journey.visit }}{% endblock %}"
        "{% block text %}{{ item.name }} runs out on {{ item.runs_out_on }}; "
        "tips sent: {{ journey.visits.tip }}"
        "; {{ order['items'][0].runs_out_in_days }}{% endblock %}{% block html %}-{% endblock %}",
        encoding="utf-8",
    )
    ctx = message_context(
        customer=customer(),
        order=TWO_ITEMS,
        journey="j",
        step="tip",
        links={},
        brand={},
        event={"type": "return.received", "data": {"rma_id": "RMA-9"}},
        trigger_event={"type": "return.requested", "data": {"rma_id": "RMA-7"}},
        visit=2,
        visits={"tip": 2},
        item=derive_item(TWO_ITEMS, "MER-02"),
    )
    r = Templates(tmp_path).render("t", "en", ctx)
    assert (r.subject, r.text) == ("RMA-7 #2", "Mermelada runs out on 2026-02-11; tips sent: 2; 90")


# ------------------------------------------------------------------------------------------- stale
def test_stale_events_enroll_nobody(make: Make) -> None:
    default = make(ORDER % "" + "  - {id: x, type: exit}\n")
    assert default.policy.stale_after_s == 7 * 86400
    assert not is_stale(default, T0, T0 + 7 * DAY)
    assert is_stale(default, T0, T0 + 7 * DAY + timedelta(seconds=1))
    off = make(ORDER % "policy: {stale_after: null}\n" + "  - {id: x, type: exit}\n")
    assert off.policy.stale_after_s is None and not is_stale(off, T0, T0 + 3650 * DAY)
    assert "stale_after_s" not in off.to_json()["policy"]


def test_old_enrollments_without_a_clock_start_it_now(make: Make) -> None:
    plan = make(
        ORDER % ""
        + "  - {id: hi, type: send, template: hello, category: transactional}\n"
        + "  - {id: w, type: wait, duration: 1d}\n"
    )
    stored = State.start(plan, T0).to_json()
    stored.pop("since")
    moved = replace(State.from_json(stored), visits={"hi": 1}, step="w")
    assert advance(moved, plan, T0 + hours(2), facts()).next_due_at == T0 + hours(2) + DAY


# ------------------------------------------------------------------------------------------- docs
def test_the_annotated_example_in_the_docs_validates(tmp_path: Path) -> None:
    """docs/journey-language.md says its example "validates as it is": every new keyword appears in it."""
    from core_helpers import REPO

    doc = (REPO / "docs" / "journey-language.md").read_text(encoding="utf-8")
    example = doc.split("## A complete annotated example", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    for keyword in ("expires_after", "holdout: {percent", "{from:", "stale_after"):
        assert keyword in example, keyword
    checked = check_text(example, "journeys/after_delivery.yaml", REPO / "journeys" / "templates")
    # Only the shop-policy placeholders of the shipped templates may be flagged (a real shop fills them in).
    assert {w.code for w in checked.warnings} <= {"placeholder"}
    # Editors see the same language: the JSON Schema (`posventa schema`) accepts it, and a typo in a new
    # keyword is an error there too.
    validator = jsonschema.Draft202012Validator(json_schema())
    data = load_text(example, "after_delivery.yaml").data
    assert list(validator.iter_errors(data)) == []
    steps = [
        {**s, "holdout": {"percent": 10, "gotto": "tips"}} if s.get("type") == "split" else s
        for s in data["steps"]
    ]
    assert list(validator.iter_errors({**data, "steps": steps}))


def test_a_template_that_needs_an_item_is_checked_where_there_is_none(tmp_path: Path) -> None:
    """``item`` is none outside item journeys: validate renders the sample without one there."""
    for locale in ("es", "en"):
        (tmp_path / locale).mkdir()
        (tmp_path / locale / "refill.j2").write_text(
            "{% block subject %}{{ item.name }}{% endblock %}{% block text %}t{% endblock %}"
            "{% block html %}h{% endblock %}",
            encoding="utf-8",
        )
    step = "  - {id: r, type: send, template: refill, category: transactional}\n"
    check_text(ITEMS + step, "journeys/case.yaml", tmp_path)
    with pytest.raises(JourneyError) as info:
        check_text(WARRANTY + step, "journeys/case.yaml", tmp_path)
    assert {(d.code, d.message.split(":")[0]) for d in info.value.diagnostics} == {
        ("bad-template", "en/refill.j2"),
        ("bad-template", "es/refill.j2"),
    }


def test_a_29_february_birthday_is_celebrated_on_28_february(make: Make) -> None:
    plan = make(
        "name: B\ntrigger: {date: customer.birthday, yearly: true}\nentry: {once_per: occurrence}\n"
        "steps:\n  - {id: x, type: exit}\n"
    )
    leap = {"id": "c1", "birthday": "2000-02-29"}
    [found] = customer_dates(plan, leap, datetime(2027, 2, 28).date())
    assert (found.occurrence, found.due.isoformat()) == ("date:c1:2027-02-28", "2027-02-28")
    assert (
        customer_dates(plan, leap, datetime(2027, 3, 1).date())[0].due.isoformat() == "2027-02-28"
    )  # caught up

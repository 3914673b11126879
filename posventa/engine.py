"""The pure engine: given an enrollment's state, its plan, the time and the facts, decide what happens.

``advance`` performs no I/O and reads no clock: the same inputs always give the same decisions, so a
simulation shows exactly what production does, and a retried advance produces the same effect keys
(``step:occurrence``), which the ledger (``app.advance``) turns into exactly-once effects.

Policy lives here too, because it decides *whether* a step may happen now:

* an address suppressed for everything (bounce, spam report, unsubscribe from all) → sends are recorded as
  skipped with the reason; promotional sends are also skipped when the customer left promotional mail;
* promotional steps wait (status ``held``) while the customer has an open complaint;
* quiet hours and the frequency cap *defer* a send to the next allowed moment, never drop it — unless
  the send has ``expires_after`` and would go out later than that: then it is skipped as ``expired``.

Time. The journey keeps its own clock (``State.since``): the moment the current step became due. The first
step is due when the triggering event happened (not when a worker got to it), a wait ends a fixed time
after the previous step, a ``wait_for`` that receives an event continues from the event's
``occurred_at``, and a message that goes out restarts the clock at the moment it went. Nothing is ever
sent in the past: a step due before ``now`` happens ``now``; a send that is too late for its
``expires_after`` is skipped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, assert_never

from posventa.errors import EngineError, ExpressionError
from posventa.expressions import compile_condition
from posventa.facts import Facts, derive_item, derive_order
from posventa.plan import (
    ActionStep,
    BranchStep,
    DateRef,
    ExitStep,
    GotoStep,
    JourneyPlan,
    RepeatStep,
    SendStep,
    SplitStep,
    Step,
    WaitForStep,
    WaitStep,
)
from posventa.state import (
    ENDED,
    Act,
    Advance,
    Deferral,
    DeferralReason,
    Effect,
    Send,
    Skip,
    State,
    Status,
)
from posventa.timeutil import in_quiet_hours, next_local_time, parse_clock, parse_date, parse_instant, zone

#: How often a held (complaint) or undecidable enrollment is looked at again, besides event wake-ups.
RECHECK = timedelta(hours=6)
MAX_TRANSITIONS = 500
#: What running a step gives: the next step id, None at the end of the journey, False to stay on it.
Next = str | None | Literal[False]


def bucket(*parts: str) -> float:
    """A stable number in [0, 100) from the parts: splits use it instead of ``random``."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") % 10_000 / 100


def _nps_category(score: Any) -> str | None:
    if not isinstance(score, int):
        return None
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


def _json_value(value: Any) -> Any:
    """A value copied into a customer attribute, as JSON (instants as ISO text)."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _event_json(ev: Mapping[str, Any]) -> dict[str, Any]:
    at = ev.get("occurred_at")
    return {
        "id": ev.get("id"),
        "type": ev.get("type"),
        "order_id": ev.get("order_id"),
        "occurred_at": at.isoformat() if isinstance(at, datetime) else at,
        "data": dict(ev.get("data") or {}),
    }


class _Run:
    """One advance: mutable scratch space, discarded after building the immutable result."""

    def __init__(self, state: State, plan: JourneyPlan, now: datetime, facts: Facts) -> None:
        self.plan, self.now, self.facts = plan, now, facts
        self.step = state.step
        self.status: Status = state.status
        self.entered_at = state.entered_at
        self.visits = dict(state.visits)
        self._counts: dict[str, int] | None = None
        self.loops = dict(state.loops)
        self.wait_step, self.wait_since, self.wait_until = state.wait_step, state.wait_since, state.wait_until
        self.consumed = list(state.consumed)
        self.event = state.event
        self.trigger = state.trigger_event
        self.item_sku = state.item
        self.variant = state.variant
        self.reason = state.reason
        fresh = not state.visits and state.wait_step is None and state.step == plan.start
        # The journey's clock (State.since); a state stored before it existed starts it now.
        self.at = min(state.since or (state.entered_at if fresh else now), now)
        self.effects: list[Effect] = []
        self.trace: list[str] = []
        self.deferrals: list[Deferral] = []
        self.due: datetime | None = None
        self.sent_promotional: list[datetime] = []
        self.tz: str = facts.default_timezone
        for candidate in (facts.customer.get("timezone"), plan.policy.default_timezone):
            if candidate:
                try:
                    zone(candidate)
                except ValueError:
                    continue
                self.tz = candidate
                break
        self._order = derive_order(facts.order)
        self._item = derive_item(facts.order, self.item_sku)

    # -- context -------------------------------------------------------------------------------------
    def visit_counts(self) -> dict[str, int]:
        """``journey.visits``: how many times each step of the plan has run (0 for the others)."""
        if self._counts is None:
            self._counts = dict.fromkeys(self.plan.order, 0)
            self._counts.update(self.visits)
        return self._counts

    def context(self, event: Mapping[str, Any] | None = None) -> dict[str, Any]:
        fb = dict(self.facts.feedback) if self.facts.feedback else {}
        if fb:
            fb.setdefault("category", _nps_category(fb.get("score")))
        customer = dict(self.facts.customer)
        customer.setdefault("open_complaint", self.facts.open_complaint)
        ev = event if event is not None else self.event
        return {
            "customer": customer,
            "order": self._order or {},
            "event": dict(ev) if ev else {},
            "trigger_event": dict(self.trigger) if self.trigger else {},
            "item": self._item or {},
            "feedback": fb,
            "journey": {
                "id": self.plan.id,
                "entered_at": self.entered_at.isoformat(),
                "variant": self.variant,
                "days_in_journey": (self.now - self.entered_at).days,
                "visits": self.visit_counts(),
            },
        }

    def holds(self, source: str | None, event: Mapping[str, Any] | None = None) -> bool:
        if not source:
            return True
        try:
            return compile_condition(source)(self.context(event))
        except ExpressionError as exc:
            self.trace.append(f"condition treated as false: {exc}")
            return False

    def copy(self, path: str) -> tuple[bool, Any]:
        """The value at a dotted path of the context (``event.data.rma_id``); (False, None) when missing."""
        value: Any = self.context()
        for part in path.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return False, None
            value = value[part]
        return value is not None, _json_value(value)

    def date_field(self, name: str) -> date | datetime | None:
        root, _, key = name.partition(".")
        if root == "journey":
            return self.entered_at
        src = {"customer": self.facts.customer, "item": self._item or {}}.get(root, self._order or {})
        raw = src.get(key)
        if isinstance(raw, datetime):
            return raw if raw.tzinfo else raw.replace(tzinfo=UTC)
        inst = parse_instant(raw) if isinstance(raw, str) and "T" in raw else None
        return inst or parse_date(raw)

    def resolve_date(self, ref: DateRef) -> datetime | None:
        value = self.date_field(ref.field)
        if value is None:
            return None
        if isinstance(value, datetime):
            base = value
        else:  # a calendar date means its start in the customer's zone
            base = datetime(value.year, value.month, value.day, tzinfo=zone(self.tz)).astimezone(UTC)
        return base + timedelta(seconds=ref.offset_s)

    # -- exits ---------------------------------------------------------------------------------------
    def matches_order(self, ev: Mapping[str, Any]) -> bool:
        order_id = (self.facts.order or {}).get("id")
        return order_id is None or ev.get("order_id") in (None, order_id)

    def check_exits(self) -> bool:
        ex = self.plan.exit
        for ev in self.facts.events:
            if ev["occurred_at"] < self.entered_at:
                continue
            goal = ex.goal
            if goal and ev["type"] == goal.event and self.holds(goal.when, ev):
                self.end("converted", f"goal:{ev['type']}")
                return True
            for rule in ex.on:
                if ev["type"] == rule.event and self.matches_order(ev) and self.holds(rule.when, ev):
                    self.end("exited", f"event:{ev['type']}")
                    return True
        return False

    def end(self, status: Status, reason: str) -> None:
        self.status, self.reason, self.step = status, reason, None
        self.wait_step = self.wait_since = self.wait_until = None
        self.due = None
        self.trace.append(f"{status} ({reason})")

    # -- the loop ------------------------------------------------------------------------------------
    def run(self) -> None:
        if self.status in ENDED:
            return
        if self.check_exits():
            return
        for _ in range(MAX_TRANSITIONS):
            if self.step is None:
                self.end("completed", "end of journey")
                return
            spec = self.plan.steps.get(self.step)
            if spec is None:
                raise EngineError(f"step '{self.step}' is not in plan {self.plan.id}@{self.plan.version}")
            nxt = self.step_once(self.step, spec)
            if nxt is False:  # stays on this step; self.due says when to look again
                return
            if self.status in ENDED:
                return
            self.step = nxt
        raise EngineError(f"journey {self.plan.id}: more than {MAX_TRANSITIONS} steps in one advance")

    def step_once(self, sid: str, spec: Step) -> Next:
        """Run one step: the next step id, None at the end, or False to stay on this step."""
        match spec:
            case SendStep():
                return self._send(sid, spec)
            case WaitStep():
                return self._wait(sid, spec)
            case WaitForStep():
                return self._wait_for(sid, spec)
            case BranchStep():
                return self._branch(sid, spec)
            case SplitStep():
                return self._split(sid, spec)
            case ActionStep():
                return self._action(sid, spec)
            case GotoStep():
                self.done(sid)
                return spec.target
            case ExitStep():
                self.done(sid)
                self.end("exited", spec.reason)
                return None
            case RepeatStep():
                return self._repeat(sid, spec)
            case _:
                assert_never(spec)

    def occurrence(self, sid: str) -> int:
        return self.visits.get(sid, 0)

    def done(self, sid: str) -> None:
        self.visits[sid] = self.visits.get(sid, 0) + 1
        if self._counts is not None:
            self._counts[sid] = self.visits[sid]

    # -- step kinds (each returns the next step id, None at the end, or False to stay) ---------------
    def _send(self, sid: str, spec: SendStep) -> Next:
        occ = self.occurrence(sid)
        promo = spec.promotional
        pol = self.plan.policy
        expires = None if spec.expires_after_s is None else self.at + timedelta(seconds=spec.expires_after_s)
        skip = None
        if expires is not None and self.now >= expires:
            skip = "expired"
        elif not self.facts.customer.get("email"):
            skip = "no-address"
        elif self.facts.suppressed:
            skip = f"suppressed:{self.facts.suppressed}"
        elif promo and (
            self.facts.unsubscribed_promotional or self.facts.customer.get("consent_email") is False
        ):
            skip = "unsubscribed"
        if skip:
            return self._skip(sid, spec, skip)
        if promo and pol.hold_promotions_during_complaint and self.facts.open_complaint:
            due = self.now + RECHECK if expires is None else min(self.now + RECHECK, expires)
            self.status, self.due = "held", due
            self.deferrals.append(Deferral(sid, DeferralReason.COMPLAINT_HOLD, due, occ))
            self.trace.append(f"{sid}: held (open complaint)")
            return False
        until, reason = self._deferred_until(spec)
        if until is not None and reason is not None:
            if expires is not None and until >= expires:  # it could only go out too late
                return self._skip(sid, spec, "expired")
            self.status, self.due = "waiting", until
            self.deferrals.append(Deferral(sid, reason, until, occ))
            self.trace.append(f"{sid}: deferred to {until.isoformat()} ({reason.value.replace('_', ' ')})")
            return False
        locale = self.facts.customer.get("locale")
        locale = locale if locale in pol.locales else pol.default_locale
        context = {  # the state's events are JSON already (instants as ISO text)
            "event": self.event,
            "trigger_event": self.trigger,
            "variant": self.variant,
            "visit": occ + 1,
            "visits": {**self.visit_counts(), sid: occ + 1},
            "item": self._item,
        }
        self.effects.append(
            Send(
                sid,
                occ,
                spec.template,
                spec.channel,
                spec.category,
                str(locale),
                spec.sendgrid_template_id,
                context,
            )
        )
        if promo:
            self.sent_promotional.append(self.now)
        self.trace.append(f"{sid}: send {spec.template} [{locale}]")
        self.status = "active"
        self.at = self.now  # the next wait counts from the moment this message went out
        self.done(sid)
        return spec.next

    def _skip(self, sid: str, spec: SendStep, reason: str) -> Next:
        self.effects.append(Skip(sid, self.occurrence(sid), reason, spec.category, spec.template))
        self.trace.append(f"{sid}: skipped ({reason})")
        self.status = "active"
        self.done(sid)
        return spec.next

    def _deferred_until(self, spec: SendStep) -> tuple[datetime | None, DeferralReason | None]:
        """When quiet hours or the frequency cap let this send go out, if not now."""
        pol = self.plan.policy
        quiet = pol.quiet_hours
        if quiet and (spec.promotional or quiet.applies_to == "all"):
            until = in_quiet_hours(self.now, parse_clock(quiet.start), parse_clock(quiet.end), self.tz)
            if until is not None:
                return until, DeferralReason.QUIET_HOURS
        cap = pol.frequency_cap
        if cap and spec.promotional:
            window = timedelta(seconds=cap.per_s)
            recent = sorted(
                t for t in [*self.facts.recent_promotional, *self.sent_promotional] if t > self.now - window
            )
            if len(recent) >= cap.max:
                return recent[len(recent) - cap.max] + window, DeferralReason.FREQUENCY_CAP
        return None, None

    def _arrive(self, sid: str) -> bool:
        """Record arrival at a waiting step; True on first arrival."""
        if self.wait_step == sid:
            return False
        self.wait_step, self.wait_since, self.wait_until = sid, self.at, None
        return True

    def _leave(self, sid: str, at: datetime) -> None:
        """Leave a waiting step; the journey's clock moves to ``at`` (never past now)."""
        self.wait_step = self.wait_since = self.wait_until = None
        self.status = "active"
        self.at = min(max(at, self.at), self.now)
        self.done(sid)

    def _wait(self, sid: str, spec: WaitStep) -> Next:
        if self._arrive(sid):
            target: datetime | None = self.at
            if spec.duration_s:
                target = self.at + timedelta(seconds=spec.duration_s)
            elif spec.until_date:
                target = self.resolve_date(spec.until_date)
                if target is None:
                    self.end("exited", f"missing-date:{spec.until_date.field}")
                    return None
            if spec.at or spec.weekdays:
                at = parse_clock(spec.at) if spec.at else None
                days = frozenset(spec.weekdays) if spec.weekdays else None
                target = next_local_time(max(target or self.at, self.at), at, days, self.tz)
            self.wait_until = target
        assert self.wait_until is not None
        if self.now >= self.wait_until:
            self.trace.append(f"{sid}: waited until {self.wait_until.isoformat()}")
            self._leave(sid, self.wait_until)
            return spec.next
        self.status, self.due = "waiting", self.wait_until
        return False

    def _wait_for(self, sid: str, spec: WaitForStep) -> Next:
        if self._arrive(sid):
            # A deadline wins when its date is known; the timeout covers an unknown date. A date that is
            # needed and unknown ends the journey (as in `wait`) rather than firing the timeout path at once.
            until = self.resolve_date(spec.deadline) if spec.deadline else None
            if until is None and spec.timeout_s:
                until = self.at + timedelta(seconds=spec.timeout_s)
            if until is None:
                assert spec.deadline is not None  # the language requires a timeout or a deadline
                self.end("exited", f"missing-date:{spec.deadline.field}")
                return None
            self.wait_until = until
        assert self.wait_until is not None
        for ev in self.facts.events:
            if (
                ev["type"] != spec.event
                or ev["id"] in self.consumed
                or ev["occurred_at"] < self.entered_at
                or ev["occurred_at"] > self.wait_until
                or ev["occurred_at"] > self.now
                or not self.matches_order(ev)
            ):
                continue
            if spec.match and not self.holds(spec.match, ev):
                continue
            self.consumed.append(ev["id"])
            self.event = _event_json(ev)
            self.trace.append(f"{sid}: got {ev['type']}")
            self._leave(sid, ev["occurred_at"])
            return spec.next
        if self.now >= self.wait_until:
            self.trace.append(f"{sid}: timed out")
            self._leave(sid, self.wait_until)
            return spec.on_timeout
        self.status, self.due = "waiting", self.wait_until
        return False

    def _branch(self, sid: str, spec: BranchStep) -> Next:
        self.done(sid)
        for case in spec.cases:
            if self.holds(case.when):
                self.trace.append(f"{sid}: {case.when} → {case.goto}")
                return case.goto
        self.trace.append(f"{sid}: otherwise → {spec.otherwise}")
        return spec.otherwise

    def _split(self, sid: str, spec: SplitStep) -> Next:
        self.done(sid)
        point = bucket(self.plan.id, str(self.facts.customer.get("id")), sid)
        if point < spec.holdout:
            self.variant = "holdout"
            if spec.holdout_goto is None:
                self.end("exited", "holdout")
                return None
            self.trace.append(f"{sid}: holdout → {spec.holdout_goto}")
            return spec.holdout_goto
        total = sum(v.weight for v in spec.variants)
        scaled = (point - spec.holdout) / (100 - spec.holdout) * total
        acc = 0.0
        chosen = spec.variants[-1]
        for v in spec.variants:
            acc += v.weight
            if scaled < acc:
                chosen = v
                break
        self.variant = chosen.name
        self.trace.append(f"{sid}: variant {chosen.name}")
        return chosen.goto

    def _action(self, sid: str, spec: ActionStep) -> Next:
        params: Mapping[str, Any] = spec.params
        if spec.action == "set_attribute":
            values = {}
            for name, value in spec.params.items():
                if isinstance(value, Mapping) and "from" in value:
                    path = value["from"]
                    found, value = self.copy(path)
                    if not found:
                        self.trace.append(f"{sid}: {name} unchanged ({path} has no value)")
                        continue
                values[name] = value
            params = values
        self.effects.append(Act(sid, self.occurrence(sid), spec.action, params))
        self.trace.append(f"{sid}: {spec.action}")
        self.done(sid)
        return spec.next

    def _repeat(self, sid: str, spec: RepeatStep) -> Next:
        self.done(sid)
        count = self.loops.get(sid, 1)
        if count < spec.times:
            self.loops[sid] = count + 1
            self.trace.append(f"{sid}: round {count + 1} of {spec.times}")
            return spec.from_
        self.loops[sid] = 1
        return spec.next

    def result(self) -> Advance:
        ended = self.status in ENDED
        state = State(
            step=self.step,
            status=self.status,
            entered_at=self.entered_at,
            visits=self.visits,
            loops=self.loops,
            wait_step=self.wait_step,
            wait_since=self.wait_since,
            wait_until=self.wait_until,
            consumed=tuple(self.consumed),
            event=self.event,
            variant=self.variant,
            reason=self.reason,
            since=None if ended else self.at,
            trigger=self.trigger,
            item=self.item_sku,
        )
        return Advance(
            state, tuple(self.effects), None if ended else self.due, tuple(self.trace), tuple(self.deferrals)
        )


def advance(state: State, plan: JourneyPlan, now: datetime, facts: Facts) -> Advance:
    """Move one enrollment as far as it can go at ``now``. Pure and deterministic."""
    if now.tzinfo is None:
        raise EngineError("advance() needs an aware 'now'")
    run = _Run(state, plan, now, facts)
    run.run()
    return run.result()


__all__ = [
    "RECHECK",
    "Act",
    "Advance",
    "Deferral",
    "DeferralReason",
    "Facts",
    "Send",
    "Skip",
    "State",
    "advance",
    "bucket",
    "derive_order",
]

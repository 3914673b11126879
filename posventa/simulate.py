"""Try a journey on synthetic customers (or a scripted timeline) before anyone is messaged.

A virtual clock drives the same rules production uses, so the two never disagree:

* who enters — :mod:`posventa.entry` (event triggers as their events happen, date and segment triggers
  in a nightly run at 02:00 UTC, the entry rule as a key: re-entries, one enrollment per order or item);
* what happens — the pure engine, :func:`posventa.engine.advance`, at each enrollment's ``next_due_at``
  and whenever one of the customer's events arrives;
* what the engine knows — the facts the runtime's ingest would have recorded by then, folded from the
  events: the customer and orders as the shop described them, order status and dates, open complaint
  tickets (``ticket.opened`` / ``ticket.resolved``), survey answers, unsubscribes, promotional sends.

Each synthetic customer has a small world: an order whose delivery may be late or never come, a chance
to cancel or return, to answer the NPS survey, to buy again; tickets the journey opens get resolved after
a few days. A scripted customer has only what the script says (see :func:`load_script`): its events are
checked like the API's, and nothing is invented but an email address (``<customer>@example.com``).

Deterministic: the same ``seed`` gives the same population and the same timeline.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from posventa import entry, i18n
from posventa.engine import Act, Send, Skip, State, advance
from posventa.errors import EventError, PosventaError
from posventa.events import ORDER_EVENTS, parse_event
from posventa.plan import JourneyPlan, WaitForStep
from posventa.state import ENDED
from posventa.timeutil import parse_duration, parse_instant
from posventa.world import EPOCH, World, scripted_world

#: The simulated nightly run (date and segment triggers): 02:00 UTC, as in the demo.
NIGHTLY_HOUR = 2
_World = World  # the name the demo imports


@dataclass
class Timeline:
    """What happened to one customer, in order: ``(when, kind, detail)`` with kind one of ``send``,
    ``skip``, ``action``, ``answered``, ``end``, ``note``."""

    customer: dict[str, Any]
    entries: list[tuple[datetime, str, str]] = field(default_factory=list)


@dataclass
class Result:
    plan: JourneyPlan
    customers: int
    days: int
    enrolled: int = 0  # enrollments (a customer may enter more than once)
    sends: Counter[str] = field(default_factory=Counter)  # step → messages
    skips: Counter[tuple[str, str]] = field(default_factory=Counter)  # (step, reason)
    actions: Counter[str] = field(default_factory=Counter)
    visits: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)  # "status: reason"
    variants: Counter[str] = field(default_factory=Counter)
    nps: Counter[str] = field(default_factory=Counter)  # promoter/passive/detractor of answers
    promo_to_detractors: int = 0
    promoters_asked: int = 0
    timelines: list[Timeline] = field(default_factory=list)
    advances: int = 0
    #: Every message sent: (customer id, step id, when).
    sent: list[tuple[str, str, datetime]] = field(default_factory=list)


def _nps_bucket(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


# --------------------------------------------------------------------------------------------- the run
@dataclass
class _Enrollment:
    index: int
    order_id: str | None
    state: State
    due: datetime | None
    detractor: bool = False


class _Customer:
    """One customer's enrollments in the journey, advanced as the runtime would."""

    def __init__(self, plan: JourneyPlan, world: World, result: Result, timeline: Timeline, tz: str) -> None:
        self.plan, self.world, self.result, self.timeline, self.tz = plan, world, result, timeline, tz
        self.enrollments: list[_Enrollment] = []
        self.keys: set[str] = set()
        self.promo: list[datetime] = []
        self.detractor = False

    def live(self) -> list[_Enrollment]:
        return [e for e in self.enrollments if e.state.status not in ENDED]

    def enroll(self, key: str | None, state: State, order_id: str | None, now: datetime) -> None:
        if key is None or key in self.keys:
            return
        self.keys.add(key)
        self.enrollments.append(_Enrollment(len(self.enrollments), order_id, state, now))
        self.result.enrolled += 1

    def history(self) -> entry.History:
        return lambda: (
            max((e.state.entered_at for e in self.enrollments), default=None),
            len(self.enrollments),
        )

    def on_event(self, ev: Mapping[str, Any], now: datetime) -> None:
        """An event arrives: it may enroll the customer; it wakes every live enrollment."""
        plan = self.plan
        if plan.trigger.event == ev["type"]:
            fact = {k: ev[k] for k in ("id", "type", "order_id", "data")} | {
                "occurred_at": ev["occurred_at"].isoformat()
            }
            if self._admits(plan.trigger.when, ev.get("order_id"), now, fact):
                cid = self.world.customer["id"]
                key = entry.entry_key(
                    plan, ev["id"], cid, ev.get("order_id"), None, self.history(), ev["occurred_at"]
                )
                self.enroll(key, State.start(plan, ev["occurred_at"], trigger=fact), ev.get("order_id"), now)
        for e in self.live():
            e.due = now

    def _admits(
        self, condition: str | None, order_id: str | None, now: datetime, event: Mapping[str, Any]
    ) -> bool:
        if not condition:
            return True
        facts = self.world.facts(order_id, now, self.promo, self.tz)
        customer = {**facts.customer, "open_complaint": facts.open_complaint}
        return entry.admits(condition, entry.trigger_context(self.plan, customer, facts.order, event))

    def nightly(self, now: datetime) -> None:
        """Date and segment triggers, as the nightly run finds them."""
        plan, trig, today = self.plan, self.plan.trigger, now.date()
        facts = self.world.facts(None, now, self.promo, self.tz)
        customer = {**facts.customer, "open_complaint": facts.open_complaint}
        found: list[entry.DateEntry] = []
        if trig.segment:
            found = [entry.DateEntry(f"segment:{customer['id']}", today)]
        elif trig.date and trig.date.startswith("customer."):
            found = entry.customer_dates(plan, customer, today)
        elif trig.date:
            orders = self.world.orders_at(self.world.seen(now)).values()
            live = [o for o in orders if o.get("status") not in ("canceled", "returned")]
            found = [
                f for o in sorted(live, key=lambda o: o["id"]) for f in entry.order_dates(plan, o, today)
            ]
        for f in found:
            context = entry.trigger_context(plan, customer, f.order, None, f.item)
            if not entry.admits(trig.segment or trig.when, context):
                continue
            order_id = f.order["id"] if f.order else None
            sku = f.item["sku"] if f.item else None
            key = entry.entry_key(plan, f.occurrence, customer["id"], order_id, sku, self.history(), now)
            start = now if trig.segment else entry.starts_at(f, now)
            self.enroll(key, State.start(plan, start, item=sku), order_id, now)

    def advance(self, e: _Enrollment, now: datetime) -> None:
        plan, world, result = self.plan, self.world, self.result
        result.advances += 1
        before = e.state
        adv = advance(before, plan, now, world.facts(e.order_id, now, self.promo, self.tz))
        entries = self.timeline.entries
        got = adv.state.event
        if got and got is not before.event and got.get("type") == "feedback.submitted":
            score = got["data"].get("score")
            if isinstance(score, int):
                bucket = _nps_bucket(score)
                result.nps[bucket] += 1
                self.detractor = self.detractor or bucket == "detractor"
                entries.append((now, "answered", f"NPS {score} ({bucket})"))
        for eff in adv.effects:
            if isinstance(eff, Send):
                result.sends[eff.step] += 1
                result.sent.append((world.customer["id"], eff.step, now))
                if eff.category == "promotional":
                    self.promo.append(now)
                    result.promo_to_detractors += self.detractor
                entries.append((now, "send", f"{eff.template} ({eff.category}, {eff.locale})"))
            elif isinstance(eff, Skip):
                result.skips[(eff.step, eff.reason)] += 1
                entries.append((now, "skip", f"{eff.step}: {eff.reason}"))
            elif isinstance(eff, Act):
                result.actions[eff.step] += 1
                entries.append((now, "action", f"{eff.action} ({eff.step})"))
                if eff.action == "open_ticket":
                    category = str(eff.params.get("category") or "complaint")
                    world.ticket_opened(f"pv-{e.index}-{eff.step}-{eff.occurrence}", category, now)
                elif eff.action == "set_attribute":
                    world.attribute_updates.append((now, dict(eff.params)))
        entries += [(now, "note", line) for line in adv.trace if "condition treated as false" in line]
        e.state, e.due = adv.state, adv.next_due_at
        waiting = plan.steps[e.state.wait_step] if e.state.wait_step else None
        if isinstance(waiting, WaitForStep):
            world.react(waiting.event, now)
        if adv.status in ENDED:
            result.outcomes[f"{adv.status}: {e.state.reason}"] += 1
            entries.append((now, "end", f"{adv.status} ({e.state.reason})"))

    def finish(self) -> None:
        for e in self.enrollments:
            if e.state.status not in ENDED:
                self.result.outcomes[f"{e.state.status}: {e.state.step}"] += 1
            for sid, n in e.state.visits.items():
                self.result.visits[sid] += n
            if e.state.variant:
                self.result.variants[e.state.variant] += 1


def _nights(start: datetime, end: datetime) -> Iterable[datetime]:
    night = start.replace(hour=NIGHTLY_HOUR, minute=0, second=0, microsecond=0)
    night += timedelta(days=1) if night < start else timedelta(0)
    while night <= end:
        yield night
        night += timedelta(days=1)


def _simulate_one(
    plan: JourneyPlan, world: World, start: datetime, result: Result, keep: bool, tz: str
) -> None:
    timeline = Timeline(dict(world.customer))
    who = _Customer(plan, world, result, timeline, tz)
    scheduled = bool(plan.trigger.date or plan.trigger.segment)
    nights = iter(_nights(start, world.end) if scheduled else ())
    night = next(nights, None)
    done: set[str] = set()
    for _ in range(100_000):
        upcoming = [
            e["occurred_at"] for e in world.events if e["id"] not in done and e["occurred_at"] >= start
        ]
        dues = [e.due for e in who.live() if e.due is not None]
        now = min([*upcoming, *dues, *([night] if night else [])], default=None)
        if now is None or now > world.end:
            break
        for ev in [e for e in world.events if e["id"] not in done and e["occurred_at"] <= now]:
            done.add(ev["id"])
            if ev["occurred_at"] >= start:
                who.on_event(ev, now)
        if night is not None and night <= now:
            who.nightly(now)
            night = next(nights, None)
        for _round in range(50):  # the sweep: every enrollment due now, oldest due first
            due = sorted(
                (e for e in who.live() if e.due is not None and e.due <= now), key=lambda e: (e.due, e.index)
            )
            if not due:
                break
            for e in due:
                who.advance(e, now)
    who.finish()
    known = world.customer_at(world.seen(world.end), world.end, 0)  # a script's profile comes with events
    timeline.customer.update({k: known[k] for k in ("locale", "timezone") if known.get(k)})
    result.promoters_asked += sum(
        1 for _, kind, what in timeline.entries if kind == "send" and what.startswith("referral")
    )
    if keep and who.enrollments:
        result.timelines.append(timeline)


def _scripted_worlds(script: Sequence[Mapping[str, Any]], start: datetime, days: int) -> list[World]:
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for raw in script_events(script):
        by_customer[raw["customer_id"]].append(raw)
    return [scripted_world(cid, events, start, days) for cid, events in sorted(by_customer.items())]


def simulate(
    plan: JourneyPlan,
    customers: int = 100,
    days: int = 120,
    seed: int = 1,
    script: Sequence[Mapping[str, Any]] | None = None,
    keep_timelines: int = 20,
    default_timezone: str = "Europe/Madrid",
) -> Result:
    """Run ``customers`` synthetic customers for ``days`` virtual days (or a scripted timeline)."""
    if customers < 1 or days < 1:
        raise PosventaError("--customers and --days must be at least 1")
    result = Result(plan, customers, days)
    start = EPOCH
    worlds: Iterable[World]
    if script is not None:
        scripted = _scripted_worlds(script, start, days)
        result.customers = len(scripted)
        worlds = scripted
    else:
        worlds = (World(i, seed, start, days) for i in range(customers))
    for i, world in enumerate(worlds):
        _simulate_one(plan, world, start, result, i < keep_timelines, default_timezone)
    return result


# ------------------------------------------------------------------------------------------ scripts
def load_script(path: Path) -> list[dict[str, Any]]:
    """A scripted timeline, one JSON object per line (``#`` comments and blank lines are ignored)::

    {"customer": "c1", "at": "2d" | ISO time, "type": "order.delivered", "data": {…},
     "order_id": "A-1",                                              # optional (order events need one)
     "profile": {"locale": "en", "timezone": "America/Bogota"},     # optional: customer fields
     "order": {"promised_delivery_date": "2026-01-09", "items": […]}} # optional: order fields

    ``at`` is a duration after the simulation's start or an ISO time (any offset). Each line becomes the
    event a shop would post (:func:`script_events`) and is checked like one.
    """
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PosventaError(f"cannot read {path}: {exc.strerror}") from exc
    for n, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            item = json.loads(line)
            if not isinstance(item, dict) or "type" not in item or "customer" not in item:
                raise ValueError("each line needs 'customer' and 'type'")
            for key in ("data", "profile", "order"):
                if not isinstance(item.get(key, {}), dict):
                    raise ValueError(f"'{key}' must be an object")
            at = item.get("at", "0d")
            when = parse_instant(at) if "T" in str(at) else EPOCH + parse_duration(str(at))
            if when is None:
                raise ValueError(f"'at' is neither a duration nor an ISO time: {at!r}")
            item["_at"] = when.astimezone(UTC)
        except (ValueError, json.JSONDecodeError) as exc:
            raise PosventaError(f"{path}:{n}: {exc}") from exc
        item["_where"] = f"{path}:{n}"
        out.append(item)
    return out


def script_events(script: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The script as the events a shop would post to the API, in time order: the same input for the
    simulator and for the runtime. A customer's first line describes them (its ``profile`` and an address
    ``<customer>@example.com`` unless the profile says otherwise); an order event without ``order_id``
    is about the customer's latest order. Raises :class:`PosventaError` naming the line of a bad event."""
    out: list[dict[str, Any]] = []
    described: set[str] = set()
    latest: dict[str, str] = {}
    for n, item in enumerate(sorted(script, key=lambda x: x["_at"])):
        cid = str(item["customer"])
        ev: dict[str, Any] = {
            "id": str(item.get("id") or f"{cid}-{n + 1}"),
            "type": str(item["type"]),
            "occurred_at": item["_at"].isoformat(),
            "customer_id": cid,
            "data": dict(item.get("data") or {}),
        }
        if cid not in described or item.get("profile"):
            ev["customer"] = {"id": cid, **({} if cid in described else {"email": f"{cid}@example.com"})}
            ev["customer"].update(item.get("profile") or {})
            described.add(cid)
        order_id = item.get("order_id") or (latest.get(cid) if ev["type"] in ORDER_EVENTS else None)
        if ev["type"] in ORDER_EVENTS and order_id is None:
            order_id = f"{cid}-order"
        if order_id:
            latest[cid] = ev["order_id"] = str(order_id)
        if item.get("order"):
            ev["order"] = {"id": str(order_id), **item["order"]}
        try:
            parse_event(ev)
        except EventError as exc:
            raise PosventaError(f"{item.get('_where', 'script')}: {'; '.join(exc.problems)}") from exc
        out.append(ev)
    return out


# ------------------------------------------------------------------------------------------- report
def report(result: Result, show_customer: int = 0) -> str:
    t = i18n.t
    plan = result.plan
    lines = [
        t("sim_title", id=plan.id, name=plan.name, version=plan.version),
        t(
            "sim_population",
            customers=t("sim_customers", n=result.customers),
            days=t("sim_days", n=result.days),
            enrolled=t("sim_enrolled", n=result.enrolled),
            advances=t("sim_advances", n=result.advances),
        ),
        "",
    ]
    if result.timelines:
        tl = result.timelines[min(show_customer, len(result.timelines) - 1)]
        c = tl.customer
        known = [str(c[k]) for k in ("locale", "timezone") if c.get(k)]  # a scripted one may have neither
        lines.append(t("sim_timeline", id=c["id"], details=f" ({', '.join(known)})" if known else ""))
        for at, kind, what in tl.entries:
            lines.append(f"  {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC  {t('sim_' + kind)} {what}")
        lines.append("")
    head = [t(f"sim_col_{k}") for k in ("step", "type", "visits", "sent", "skipped", "actions")]
    lines.append(f"{head[0]:<28}{head[1]:<10}{head[2]:>8}{head[3]:>8}{head[4]:>9}{head[5]:>9}")
    for sid in plan.order:
        skipped = sum(n for (s, _), n in result.skips.items() if s == sid)
        lines.append(
            f"{sid:<28}{plan.steps[sid].TYPE:<10}{result.visits[sid]:>8}{result.sends[sid]:>8}"
            f"{skipped:>9}{result.actions[sid]:>9}"
        )
    if result.skips:
        lines += ["", t("sim_skipped_by_reason")]
        lines += [f"  {sid}: {reason} × {n}" for (sid, reason), n in sorted(result.skips.items())]
    lines += ["", t("sim_outcomes")]
    lines += [f"  {outcome:<40}{n:>7}" for outcome, n in result.outcomes.most_common()]
    if result.nps:
        answers = ", ".join(f"{k} {v}" for k, v in sorted(result.nps.items()))
        lines += ["", t("sim_nps", answers=answers), t("sim_referrals", n=result.promoters_asked)]
        lines.append(t("sim_promo_detractors", n=result.promo_to_detractors))
    if result.variants:
        lines.append(
            t("sim_variants", variants=", ".join(f"{k} {v}" for k, v in sorted(result.variants.items())))
        )
    return "\n".join(lines)

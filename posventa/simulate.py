"""Try a journey on synthetic customers before anyone is messaged.

A virtual clock drives the *same* pure engine production uses (:func:`posventa.engine.advance`). Each
synthetic customer has a small world: an order whose delivery may be late or never come, a chance to
cancel or return, to answer the NPS survey (scores across the range), to buy again; support tickets the
journey opens get resolved after a few days. The engine is advanced exactly when production would
advance it: at its ``next_due_at`` and whenever one of the customer's events arrives.

Deterministic: the same ``seed`` gives the same population and the same timeline.
"""

from __future__ import annotations

import json
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from posventa.engine import Act, Facts, Send, Skip, State, advance, derive_order
from posventa.errors import PosventaError
from posventa.plan import JourneyPlan, WaitForStep
from posventa.timeutil import parse_duration, parse_instant

EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ZONES = ("Europe/Madrid", "America/Mexico_City", "America/Bogota", "Europe/London", "America/New_York")
PRODUCTS: tuple[dict[str, Any], ...] = (
    {
        "sku": "CEP-01",
        "name": "Cepillo de dientes eléctrico",
        "price": 49.9,
        "consumable": True,
        "runs_out_in_days": 90,
        "warranty_months": 24,
    },
    {
        "sku": "MER-02",
        "name": "Mermelada artesanal de fresa",
        "price": 6.5,
        "consumable": True,
        "runs_out_in_days": 30,
    },
    {"sku": "AUR-03", "name": "Auriculares inalámbricos", "price": 89.0, "warranty_months": 24},
    {"sku": "CAF-04", "name": "Cafetera espresso", "price": 149.0, "warranty_months": 36},
    {"sku": "CAM-05", "name": "Camiseta de algodón", "price": 19.9},
)
#: Events the world produces in answer to a journey waiting for them: (probability, min days, max days).
REACTIONS = {
    "feedback.submitted": (0.6, 0.05, 3.0),
    "return.received": (0.85, 3.0, 12.0),
    "purchase": (0.15, 5.0, 40.0),
}


@dataclass
class Timeline:
    """What happened to one customer, in order."""

    customer: dict[str, Any]
    entries: list[tuple[datetime, str]] = field(default_factory=list)


@dataclass
class Result:
    plan: JourneyPlan
    customers: int
    days: int
    enrolled: int = 0
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


def _nps_bucket(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


class _World:
    """One synthetic customer and the events their life produces."""

    def __init__(self, index: int, seed: int, start: datetime, days: int) -> None:
        rng = self.rng = random.Random(f"{seed}:{index}")
        self.end = start + timedelta(days=days)
        locale = rng.choice(("es", "en"))
        first = rng.choice(
            ("Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Sofía", "Diego")
            if locale == "es"
            else ("Emma", "Oliver", "Ava", "Noah", "Mia", "Liam", "Grace", "Henry")
        )
        self.customer: dict[str, Any] = {
            "id": f"c{index:06d}",
            "name": f"{first} {rng.choice(('García', 'López', 'Smith', 'Brown'))}",
            "email": f"cliente{index}@example.com",
            "locale": locale,
            "timezone": rng.choice(ZONES),
            "birthday": date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "consent_email": True,
            "attributes": {},
        }
        placed = start + timedelta(days=rng.uniform(0, max(1.0, min(days / 4, 30))), hours=rng.uniform(0, 12))
        promised = (placed + timedelta(days=rng.randint(3, 5))).date()
        items = [dict(p, quantity=1) for p in rng.sample(PRODUCTS, rng.randint(1, 2))]
        oid = f"o{index:06d}"
        self.order: dict[str, Any] = {
            "id": oid,
            "status": "placed",
            "placed_at": placed.isoformat(),
            "total": round(sum(i["price"] for i in items), 2),
            "currency": "EUR",
            "channel": rng.choice(("web", "app", "store")),
            "promised_delivery_date": promised.isoformat(),
            "items": items,
        }
        self.events: list[dict[str, Any]] = []
        self._n = 0
        self.add("order.placed", placed, order_id=oid)
        fate = rng.random()
        if fate < 0.05:
            self.add(
                "order.canceled",
                placed + timedelta(hours=rng.uniform(1, 30)),
                order_id=oid,
                data={"reason": "changed_mind"},
            )
        elif fate < 0.08:
            pass  # lost in transit: never delivered
        else:
            late = fate > 0.83
            promised_at = datetime(promised.year, promised.month, promised.day, 15, tzinfo=UTC)
            delivered = promised_at + (
                timedelta(days=rng.randint(2, 6))
                if late
                else -timedelta(days=rng.uniform(0, 2), hours=rng.uniform(0, 6))
            )
            delivered = max(delivered, placed + timedelta(days=1))
            self.add("order.shipped", placed + timedelta(hours=rng.uniform(6, 24)), order_id=oid)
            self.add("order.delivered", delivered, order_id=oid, data={"delivered_at": delivered.isoformat()})
            self.delivered_at = delivered
            if rng.random() < 0.04:
                self.add("order.returned", delivered + timedelta(days=rng.uniform(1, 10)), order_id=oid)
            if rng.random() < 0.3:  # the returns journey's population: a return request after delivery
                self.add(
                    "return.requested",
                    delivered + timedelta(days=rng.uniform(1, 14)),
                    order_id=oid,
                    data={"rma_id": f"RMA-{index}", "reason": rng.choice(("size", "defect", "other"))},
                )
        if rng.random() < 0.12:
            again = placed + timedelta(days=rng.uniform(20, 90))
            self.add("order.placed", again, order_id=f"{oid}-2")
            self.add("purchase", again, order_id=f"{oid}-2")
        self.tickets_open = 0
        self.reacted: set[str] = set()

    def add(
        self, kind: str, at: datetime, order_id: str | None = None, data: Mapping[str, Any] | None = None
    ) -> None:
        self._n += 1
        self.events.append(
            {
                "id": f"{self.customer['id']}-e{self._n}",
                "type": kind,
                "occurred_at": at,
                "order_id": order_id,
                "data": dict(data or {}),
            }
        )
        self.events.sort(key=lambda e: e["occurred_at"])

    def order_at(self, now: datetime) -> dict[str, Any]:
        o = dict(self.order)
        for ev in self.events:
            if ev["occurred_at"] > now or ev.get("order_id") != o["id"]:
                continue
            if ev["type"] == "order.delivered":
                o["status"], o["delivered_at"] = "delivered", ev["occurred_at"].isoformat()
            elif ev["type"] in ("order.canceled", "order.returned", "order.shipped"):
                o["status"] = ev["type"].split(".")[1]
        return o

    def react(self, event_type: str, now: datetime) -> None:
        """The journey waits for ``event_type``: maybe the customer (or the world) produces it."""
        key = f"{event_type}@{now.isoformat()}"
        if key in self.reacted or event_type not in REACTIONS:
            return
        self.reacted.add(key)
        prob, lo, hi = REACTIONS[event_type]
        if self.rng.random() >= prob:
            return
        at = now + timedelta(days=self.rng.uniform(lo, hi))
        data: dict[str, Any] = {}
        if event_type == "feedback.submitted":
            r = self.rng.random()
            score = (
                self.rng.randint(9, 10)
                if r < 0.45
                else self.rng.randint(7, 8)
                if r < 0.75
                else self.rng.randint(0, 6)
            )
            data = {"score": score, "survey": "nps"}
        elif event_type == "return.received":
            data = {"rma_id": f"RMA-{self.customer['id']}"}
        self.add(event_type, at, order_id=self.order["id"], data=data)


def _trigger_time(
    plan: JourneyPlan, world: _World, start: datetime
) -> tuple[datetime, dict[str, Any] | None] | None:
    trig = plan.trigger
    if trig.event:
        for ev in world.events:
            if ev["type"] == trig.event and ev.get("order_id") == world.order["id"]:
                return ev["occurred_at"], ev
        return None
    if trig.date:
        root, _, key = trig.date.partition(".")
        src = world.customer if root == "customer" else (derive_order(world.order_at(world.end)) or {})
        raw = src.get(key)
        if not raw:
            return None
        d = date.fromisoformat(str(raw)[:10])
        if trig.yearly:
            d = d.replace(year=start.year)
            if datetime(d.year, d.month, d.day, tzinfo=UTC) < start:
                d = d.replace(year=start.year + 1)
        at = datetime(d.year, d.month, d.day, 2, tzinfo=UTC) + timedelta(seconds=trig.offset_s)
        return max(at, start), None
    return start, None  # segment: everyone in the synthetic population matches


def _simulate_one(plan: JourneyPlan, world: _World, start: datetime, result: Result, keep: bool) -> None:
    timeline = Timeline(dict(world.customer))
    entered = _trigger_time(plan, world, start)
    if entered is None or entered[0] > world.end:
        return
    now, trigger_event = entered
    result.enrolled += 1
    state = State.start(plan, now)
    if trigger_event is not None:
        state = State(
            **{**state.__dict__, "event": {"type": trigger_event["type"], "data": trigger_event["data"]}}
        )
    wakers = {s.event for s in plan.steps.values() if isinstance(s, WaitForStep)}
    wakers |= {r.event for r in plan.exit.on} | {"ticket.resolved"}
    if plan.exit.goal:
        wakers.add(plan.exit.goal.event)
    promo_times: list[datetime] = []
    tickets: list[datetime] = []  # resolution times of open tickets
    detractor = False
    feedback: dict[str, Any] | None = None
    for _ in range(1000):
        result.advances += 1
        seen = [e for e in world.events if e["occurred_at"] <= now]
        for e in seen:
            if e["type"] == "feedback.submitted":
                feedback = dict(e["data"])
        facts = Facts(
            customer=world.customer,
            order=world.order_at(now),
            events=seen,
            feedback=feedback,
            open_complaint=any(t > now for t in tickets),
            recent_promotional=promo_times,
        )
        adv = advance(state, plan, now, facts)
        if (
            adv.state.event
            and adv.state.event is not state.event
            and adv.state.event.get("type") == "feedback.submitted"
        ):
            score = adv.state.event["data"].get("score")
            if isinstance(score, int):
                bucket = _nps_bucket(score)
                result.nps[bucket] += 1
                detractor = detractor or bucket == "detractor"
                timeline.entries.append((now, f"answered NPS {score} ({bucket})"))
        for eff in adv.effects:
            if isinstance(eff, Send):
                result.sends[eff.step] += 1
                if eff.category == "promotional":
                    promo_times.append(now)
                    if detractor:
                        result.promo_to_detractors += 1
                timeline.entries.append((now, f"send {eff.template} ({eff.category}, {eff.locale})"))
            elif isinstance(eff, Skip):
                result.skips[(eff.step, eff.reason)] += 1
                timeline.entries.append((now, f"skip {eff.step}: {eff.reason}"))
            elif isinstance(eff, Act):
                result.actions[eff.step] += 1
                timeline.entries.append((now, f"action {eff.action} ({eff.step})"))
                if eff.action == "open_ticket":
                    resolved = now + timedelta(days=world.rng.uniform(2, 6))
                    tickets.append(resolved)
                    world.add(
                        "ticket.resolved", resolved, data={"ticket_id": f"{eff.step}-{world.customer['id']}"}
                    )
                elif eff.action == "set_attribute":
                    world.customer["attributes"].update(eff.params)
        for line in adv.trace:
            if "condition treated as false" in line:
                timeline.entries.append((now, line))
        state = adv.state
        waiting = plan.steps[state.wait_step] if state.wait_step else None
        if isinstance(waiting, WaitForStep):
            world.react(waiting.event, now)
        if adv.status in ("completed", "exited", "converted"):
            result.outcomes[f"{adv.status}: {state.reason}"] += 1
            timeline.entries.append((now, f"{adv.status} ({state.reason})"))
            break
        upcoming = [e["occurred_at"] for e in world.events if e["occurred_at"] > now and e["type"] in wakers]
        candidates = [t for t in (adv.next_due_at, min(upcoming, default=None)) if t is not None]
        if not candidates or min(candidates) > world.end:
            result.outcomes[f"in progress: {state.step}"] += 1
            break
        now = max(min(candidates), now)
    for sid, n in state.visits.items():
        result.visits[sid] += n
    if state.variant:
        result.variants[state.variant] += 1
    result.promoters_asked += sum(1 for _, what in timeline.entries if what.startswith("send referral"))
    if keep:
        result.timelines.append(timeline)


def simulate(
    plan: JourneyPlan,
    customers: int = 100,
    days: int = 120,
    seed: int = 1,
    script: Sequence[Mapping[str, Any]] | None = None,
    keep_timelines: int = 20,
) -> Result:
    """Run ``customers`` synthetic customers for ``days`` virtual days (or a scripted timeline)."""
    if customers < 1 or days < 1:
        raise PosventaError("--customers and --days must be at least 1")
    result = Result(plan, customers, days)
    start = EPOCH
    worlds: Iterable[_World]
    if script is not None:
        scripted = _scripted_worlds(script, start, days)
        result.customers = len(scripted)
        worlds = scripted
    else:
        worlds = (_World(i, seed, start, days) for i in range(customers))
    for i, world in enumerate(worlds):
        _simulate_one(plan, world, start, result, keep=i < keep_timelines)
    return result


def load_script(path: Path) -> list[dict[str, Any]]:
    """A scripted timeline, one JSON object per line::

    {"customer": "c1", "at": "2d" | ISO time, "type": "order.delivered", "data": {…},
     "profile": {"locale": "en", "timezone": "America/Bogota"},     # optional, customer fields
     "order": {"promised_delivery_date": "2026-01-09", "items": […]}} # optional, order fields
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
            item["_at"] = parse_instant(at) if "T" in str(at) else EPOCH + parse_duration(str(at))
            if item["_at"] is None:
                raise ValueError(f"'at' is neither a duration nor an ISO time: {at!r}")
        except (ValueError, json.JSONDecodeError) as exc:
            raise PosventaError(f"{path}:{n}: {exc}") from exc
        out.append(item)
    return out


def _scripted_worlds(script: Sequence[Mapping[str, Any]], start: datetime, days: int) -> list[_World]:
    by_customer: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in script:
        by_customer[str(item["customer"])].append(item)
    worlds = []
    for i, (cid, items) in enumerate(sorted(by_customer.items())):
        w = _World(i, 0, start, days)
        w.customer.update({"id": cid, **{k: v for k, v in (items[0].get("profile") or {}).items()}})
        w.events = []
        w._n = 0
        w.rng = random.Random(cid)
        order_id = next((str(x["order_id"]) for x in items if x.get("order_id")), w.order["id"])
        w.order["id"] = order_id
        for x in items:  # the script's own order facts replace the generated ones
            w.order.update(x.get("order") or {})
            if x["type"] == "order.placed":
                w.order["placed_at"] = x["_at"].isoformat()
        for x in items:
            w.add(str(x["type"]), x["_at"], order_id=str(x.get("order_id") or order_id), data=x.get("data"))
        w.react = lambda *_a, **_k: None  # type: ignore[method-assign]  # scripted: no invented behaviour
        worlds.append(w)
    return worlds


def report(result: Result, show_customer: int = 0) -> str:
    plan = result.plan
    lines = [
        f"Journey {plan.id} ({plan.name}) — plan {plan.version}",
        f"{result.customers} customers × {result.days} days: {result.enrolled} enrolled, "
        f"{result.advances} engine advances",
        "",
    ]
    if result.timelines:
        idx = min(show_customer, len(result.timelines) - 1)
        tl = result.timelines[idx]
        c = tl.customer
        lines.append(f"Timeline of customer {c['id']} ({c['locale']}, {c['timezone']}):")
        for at, what in tl.entries:
            lines.append(f"  {at:%Y-%m-%d %H:%M} UTC  {what}")
        lines.append("")
    lines.append(f"{'step':<28}{'type':<10}{'visits':>8}{'sent':>8}{'skipped':>9}{'actions':>9}")
    for sid in plan.order:
        spec = plan.steps[sid]
        skipped = sum(n for (s, _), n in result.skips.items() if s == sid)
        lines.append(
            f"{sid:<28}{spec.TYPE:<10}{result.visits[sid]:>8}{result.sends[sid]:>8}"
            f"{skipped:>9}{result.actions[sid]:>9}"
        )
    if result.skips:
        lines.append("")
        lines.append("Skipped, by reason:")
        for (sid, reason), n in sorted(result.skips.items()):
            lines.append(f"  {sid}: {reason} × {n}")
    lines.append("")
    lines.append("Outcomes:")
    for outcome, n in result.outcomes.most_common():
        lines.append(f"  {outcome:<40}{n:>7}")
    if result.nps:
        lines.append("")
        lines.append("NPS answers: " + ", ".join(f"{k} {v}" for k, v in sorted(result.nps.items())))
        lines.append(f"Referral asks sent: {result.promoters_asked}")
        lines.append(f"Promotional messages to detractors: {result.promo_to_detractors}")
    if result.variants:
        lines.append("Split variants: " + ", ".join(f"{k} {v}" for k, v in sorted(result.variants.items())))
    return "\n".join(lines)

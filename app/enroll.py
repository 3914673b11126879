"""Enrollment: who enters which journey, by event triggers (as events arrive) and by date or segment
triggers (the nightly run). The journey's entry rule becomes an *entry key*, and the store's unique
``(journey_id, entry_key)`` is the guard: running the nightly twice, or replaying an event, enrolls nobody
twice."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, timedelta
from typing import Any

from app.plans import PlanBook
from app.ports import Store, Tx
from app.records import Fact
from app.stats import Stats
from posventa.engine import State
from posventa.errors import PosventaError
from posventa.events import Event
from posventa.expressions import compile_condition
from posventa.facts import derive_order
from posventa.plan import JourneyPlan

#: Date triggers look back this far, so a missed nightly run (or two) still enrolls its customers.
CATCH_UP = timedelta(days=3)


def _in_year(d: date, year: int) -> date:
    """The anniversary of ``d`` in ``year`` (29 February → 28 February in common years)."""
    try:
        return d.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def _holds(condition: str | None, ctx: Mapping[str, Any]) -> bool:
    """A trigger condition; one that cannot be evaluated for this customer does not admit them."""
    if not condition:
        return True
    try:
        return bool(compile_condition(condition)(ctx))
    except PosventaError:
        return False


def _context(plan: JourneyPlan, customer: Fact, order: Fact | None, event: Fact) -> dict[str, Any]:
    return {
        "customer": customer,
        "order": derive_order(order) or {},
        "event": event,
        "feedback": {},
        "journey": {"id": plan.id},
    }


class Enroller:
    def __init__(self, store: Store, plans: PlanBook) -> None:
        self.store = store
        self.plans = plans

    # ---------------------------------------------------------------------------------------- events
    def for_event(self, tx: Tx, ev: Event, customer: Fact, order: Fact | None, now: datetime) -> None:
        """Enroll the event's customer in every journey the event triggers (inside the caller's
        transaction: the event and its enrollments are recorded together)."""
        event = {"id": ev.id, "type": ev.type, "order_id": ev.order_id, "data": ev.data}
        for plan in self.plans.values():
            trig = plan.trigger
            if trig.event != ev.type:
                continue
            if trig.when and not _holds(trig.when, _context(plan, customer, order, event)):
                continue
            key = self._entry_key(tx, plan, ev.id, ev.customer_id, ev.order_id, ev.occurred_at)
            if key is not None:
                self._create(tx, plan, ev.customer_id, ev.order_id, key, ev.occurred_at, now, event)

    def _entry_key(
        self,
        tx: Tx,
        plan: JourneyPlan,
        occurrence: str,
        customer_id: str,
        order_id: str | None,
        now: datetime,
    ) -> str | None:
        """The entry rule as a key: once per order, per occurrence, per customer (with a cooldown, a
        numbered key per re-entry). None: not now."""
        rule = plan.entry
        if rule.once_per == "order":
            return f"order:{order_id}" if order_id else None
        if rule.once_per == "occurrence":
            return f"occurrence:{occurrence}"
        if rule.cooldown_s:
            last = tx.enrollments.last_entered(plan.id, customer_id)
            if last is not None and now - last < timedelta(seconds=rule.cooldown_s):
                return None
            return f"customer:{customer_id}:{tx.enrollments.count(plan.id, customer_id)}"
        return f"customer:{customer_id}"

    def _create(
        self,
        tx: Tx,
        plan: JourneyPlan,
        customer_id: str,
        order_id: str | None,
        key: str,
        entered_at: datetime,
        now: datetime,
        event: Mapping[str, Any] | None,
    ) -> int | None:
        state = State.start(plan, entered_at)
        if event is not None:
            state = State(**{**state.__dict__, "event": dict(event)})
        return tx.enrollments.create(
            plan.id, plan.version, customer_id, order_id, key, state.to_json(), now, entered_at
        )

    # ------------------------------------------------------------------------------- dates, segments
    def scheduled(self, now: datetime) -> Stats:
        """Nightly: enroll customers whose date trigger falls due today, and segment entries."""
        stats = Stats()
        for plan in self.plans.values():
            trig = plan.trigger
            if not (trig.date or trig.segment):
                continue
            with self.store.begin() as tx:
                n = self._enroll_plan(tx, plan, now)
            stats.add(plan.id, "(entry)", "enrolled", n)
        return stats

    def _enroll_plan(self, tx: Tx, plan: JourneyPlan, now: datetime) -> int:
        """Enroll everyone whose date (± offset) falls in the last few days (``CATCH_UP``), or who is in
        the segment."""
        trig = plan.trigger
        offset = timedelta(seconds=trig.offset_s)
        today = now.date()
        count = 0

        def admit(c: Fact, o: Fact | None, occurrence: str) -> None:
            nonlocal count
            condition = trig.segment or trig.when
            if condition and not _holds(condition, _context(plan, c, o, {})):
                return
            order_id = o["id"] if o else None
            key = self._entry_key(tx, plan, occurrence, c["id"], order_id, now)
            if key and self._create(tx, plan, c["id"], order_id, key, now, now, None):
                count += 1

        def in_window(due: date) -> bool:
            return today - CATCH_UP < due <= today

        if trig.segment:
            for c in list(tx.customers.all_facts()):
                admit(c, None, f"segment:{c['id']}")
            return count
        assert trig.date is not None
        root, _, fname = trig.date.partition(".")
        if root == "customer":
            for c in list(tx.customers.with_birthday()):
                birthday = date.fromisoformat(c["birthday"])
                years = (today.year - 1, today.year, today.year + 1) if trig.yearly else (None,)
                for year in years:
                    d = birthday if year is None else _in_year(birthday, year)
                    if in_window(d + offset):
                        admit(c, None, f"date:{c['id']}:{(d + offset).isoformat()}")
            return count
        # Order dates (warranty expiry, run-out date) derive from the items; warranties run for years,
        # so every live order is a candidate.
        customers: dict[str, Fact | None] = {}
        for customer_id, o in list(tx.orders.live_facts()):
            raw = (derive_order(o) or {}).get(fname)
            if not raw:
                continue
            due = date.fromisoformat(str(raw)[:10]) + offset
            if in_window(due):
                if customer_id not in customers:
                    customers[customer_id] = tx.customers.fact(customer_id)
                found = customers[customer_id]
                if found is not None:
                    admit(found, o, f"date:{o['id']}:{due.isoformat()}")
        return count

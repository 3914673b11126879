"""Enrollment: who enters which journey, by event triggers (as events arrive) and by date or segment
triggers (the nightly run). The rules themselves — stale events, trigger conditions, the entry rule as a
key, which dates fall due — are the core's (``posventa.entry``), shared with the simulator; this module
reads the store for them. The store's unique ``(journey_id, entry_key)`` is the guard: running the nightly
twice, or replaying an event, enrolls nobody twice."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from app.plans import PlanBook
from app.ports import Store, Tx
from app.records import Fact, NewEnrollment
from app.stats import Stats
from posventa.engine import State
from posventa.entry import (
    DateEntry,
    History,
    admits,
    customer_dates,
    entry_key,
    is_stale,
    needs_history,
    order_dates,
    starts_at,
    trigger_context,
)
from posventa.events import Event
from posventa.plan import JourneyPlan

log = logging.getLogger("posventa.enroll")


def _known(history: tuple[datetime | None, int]) -> History:
    return lambda: history


class Enroller:
    def __init__(self, store: Store, plans: PlanBook) -> None:
        self.store = store
        self.plans = plans

    # ---------------------------------------------------------------------------------------- events
    def for_event(self, tx: Tx, ev: Event, customer: Fact, order: Fact | None, now: datetime) -> None:
        """Enroll the event's customer in every journey the event triggers (inside the caller's
        transaction: the event and its enrollments are recorded together). The enrollment starts when
        the event happened; an event older than the journey's ``stale_after`` enrolls nobody."""
        self.for_events(tx, [(ev, customer, order)], now)

    def for_events(self, tx: Tx, triggered: Sequence[tuple[Event, Fact, Fact | None]], now: datetime) -> None:
        """:meth:`for_event` of events about distinct customers, with a few statements for all of them:
        order counts and open complaints (for ``trigger.when``) and entry histories (for a cooldown) read
        at once, the enrollments inserted at once — in the order :meth:`for_event` one by one would have
        created them."""
        admitting = self.plans.admitting(tx)  # the published versions of running journeys
        wanted: list[tuple[Event, Fact, Fact | None, JourneyPlan, Fact]] = []
        for ev, customer, order in triggered:
            event: Fact | None = None
            for plan in admitting:
                if plan.trigger.event != ev.type:
                    continue
                if is_stale(plan, ev.occurred_at, now):
                    log.info("event %s is too old for journey %s: not enrolled", ev.id, plan.id)
                    continue
                event = event or ev.fact()
                wanted.append((ev, customer, order, plan, event))
        if not wanted:
            return
        conditional = {c["id"]: c for _, c, _, plan, _ in wanted if plan.trigger.when}
        known = self._with_counts(tx, list(conditional.values())) if conditional else {}
        wanted = [
            w
            for w in wanted
            if not w[3].trigger.when
            or admits(w[3].trigger.when, trigger_context(w[3], known[w[1]["id"]], w[2], w[4]))
        ]
        pairs = [(plan.id, ev.customer_id) for ev, _, _, plan, _ in wanted if needs_history(plan)]
        histories = tx.enrollments.histories(pairs) if pairs else {}
        rows: list[NewEnrollment] = []
        for ev, _, _, plan, event in wanted:
            seen = _known(histories.get((plan.id, ev.customer_id), (None, 0)))
            key = entry_key(plan, ev.id, ev.customer_id, ev.order_id, None, seen, ev.occurred_at)
            if key is not None:
                state = State.start(plan, min(ev.occurred_at, now), trigger=event)
                rows.append(self._row(plan, ev.customer_id, ev.order_id, key, state, now))
        tx.enrollments.create_many(rows)

    def _history(self, tx: Tx, plan: JourneyPlan, customer_id: str) -> History:
        def history() -> tuple[datetime | None, int]:
            return tx.enrollments.last_entered(plan.id, customer_id), tx.enrollments.count(
                plan.id, customer_id
            )

        return history

    def _with_counts(self, tx: Tx, customers: list[Fact]) -> dict[str, Fact]:
        """The customers as conditions read them: ``orders_count`` and ``open_complaint`` filled in."""
        ids = [c["id"] for c in customers]
        counts = tx.orders.count_by_customer(ids)
        complaints = tx.tickets.open_complaints(ids)
        return {
            c["id"]: {**c, "orders_count": counts.get(c["id"], 0), "open_complaint": c["id"] in complaints}
            for c in customers
        }

    def _create(
        self,
        tx: Tx,
        plan: JourneyPlan,
        customer_id: str,
        order_id: str | None,
        key: str,
        state: State,
        now: datetime,
    ) -> int | None:
        return tx.enrollments.create(*self._row(plan, customer_id, order_id, key, state, now))

    @staticmethod
    def _row(
        plan: JourneyPlan, customer_id: str, order_id: str | None, key: str, state: State, now: datetime
    ) -> NewEnrollment:
        return NewEnrollment(
            plan.id, plan.version, customer_id, order_id, key, state.to_json(), now, state.entered_at
        )

    # ------------------------------------------------------------------------------- dates, segments
    def scheduled(self, now: datetime) -> Stats:
        """Nightly: enroll customers whose date trigger falls due today, and segment entries."""
        stats = Stats()
        with self.store.read() as tx:
            admitting = self.plans.admitting(tx)  # the published versions of running journeys
        for plan in admitting:
            trig = plan.trigger
            if not (trig.date or trig.segment):
                continue
            with self.store.begin() as tx:
                n = self._enroll_plan(tx, plan, now)
            stats.add(plan.id, "(entry)", "enrolled", n)
        return stats

    def _enroll_plan(self, tx: Tx, plan: JourneyPlan, now: datetime) -> int:
        """Enroll everyone whose date (± offset) falls in the last few days (``posventa.entry.CATCH_UP``),
        or who is in the segment. A date entry starts on the day it fell due, a segment entry now."""
        trig = plan.trigger
        condition = trig.segment or trig.when
        today = now.date()
        count = 0

        def admit(c: Fact, found: DateEntry) -> None:
            nonlocal count
            if condition and not admits(condition, trigger_context(plan, c, found.order, None, found.item)):
                return
            order_id = found.order["id"] if found.order else None
            sku = found.item["sku"] if found.item else None
            key = entry_key(
                plan, found.occurrence, c["id"], order_id, sku, self._history(tx, plan, c["id"]), now
            )
            start = now if trig.segment else starts_at(found, now)
            if key and self._create(
                tx, plan, c["id"], order_id, key, State.start(plan, start, item=sku), now
            ):
                count += 1

        if trig.segment:
            customers = list(tx.customers.all_facts())
            for c in self._with_counts(tx, customers).values() if customers else ():
                admit(c, DateEntry(f"segment:{c['id']}", today))
            return count
        assert trig.date is not None
        if trig.date.startswith("customer."):
            due = [
                (c, found) for c in tx.customers.with_birthday() for found in customer_dates(plan, c, today)
            ]
        else:
            # Order and item dates (warranty expiry, run-out date) derive from the items; warranties run for
            # years, so every live order is a candidate.
            orders = [
                (cid, found) for cid, o in tx.orders.live_facts() for found in order_dates(plan, o, today)
            ]
            facts = tx.customers.facts(sorted({cid for cid, _ in orders}))
            due = [(facts[cid], found) for cid, found in orders if cid in facts]
        if condition and due:
            counted = self._with_counts(tx, list({c["id"]: c for c, _ in due}.values()))
            due = [(counted[c["id"]], found) for c, found in due]
        for c, found in due:
            admit(c, found)
        return count

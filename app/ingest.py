"""Events in: recorded once by id, applied to customers, orders, tickets, feedback and suppressions,
enrolling customers per the journeys' triggers and waking their live enrollments — all in the
transaction that records the event. An event seen twice changes nothing twice."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from app.enroll import Enroller
from app.ports import Clock, Store, Tx
from app.records import Fact
from app.stats import IngestReport
from posventa.errors import EventError, PosventaError
from posventa.events import Event, parse_event
from posventa.timeutil import parse_instant

log = logging.getLogger("posventa.ingest")


#: Event types applied one by one even inside a batch: their effects are keyed by something other than
#: the customer and the order (a ticket id, an address), so they keep their place in the batch's order.
ONE_BY_ONE = frozenset({"ticket.opened", "ticket.resolved", "feedback.submitted", "customer.unsubscribed"})

#: A run of a batch: applied set-based (True), or a single item applied alone with a savepoint (False).
Run = tuple[bool, list[tuple[int, Event]]]


def runs(parsed: Sequence[tuple[int, Event]]) -> list[Run]:
    """Cut a batch into runs, in order: set-based runs of events with distinct event ids, customers and
    orders (so applying them together writes what applying them one by one would), and single items for
    :data:`ONE_BY_ONE` types. A second event about a customer or an order already in the run, or with an
    event id already in it, starts a new run: it sees the first one's effects, as one by one."""
    out: list[Run] = []
    current: list[tuple[int, Event]] = []
    keys: set[tuple[str, str]] = set()
    for n, ev in parsed:
        if ev.type in ONE_BY_ONE:
            if current:
                out.append((True, current))
                current, keys = [], set()
            out.append((False, [(n, ev)]))
            continue
        mine = {("event", ev.id), ("customer", ev.customer_id)}
        if ev.order_id:
            mine.add(("order", ev.order_id))
        if keys & mine:
            out.append((True, current))
            current, keys = [], set()
        current.append((n, ev))
        keys |= mine
    if current:
        out.append((True, current))
    return out


class Ingest:
    def __init__(self, store: Store, enroller: Enroller, clock: Clock) -> None:
        self.store = store
        self.enroller = enroller
        self.clock = clock

    def apply(
        self, raw: Iterable[Mapping[str, Any]], source: str, now: datetime | None = None, first_line: int = 1
    ) -> IngestReport:
        """Validate and apply events; a bad item is reported with its position and skipped.

        One transaction for the call. The batch is applied set-based (:func:`runs`: a few multi-row
        statements per run of events about distinct customers and orders), with exactly the effects of
        :meth:`apply_each`. If the database refuses a set-based statement (or the engine refuses an event),
        the transaction is rolled back and the batch is applied again by :meth:`apply_each`, where the bad
        item rolls back alone. (A database error that breaks the connection fails the whole call; events
        are idempotent, so the client simply retries.)"""
        at = now or self.clock()
        if isinstance(raw, Sequence) and len(raw) == 1:
            return self._apply_alone(raw[0], source, at, first_line)
        report, parsed = self._parse(raw, first_line)
        cut = runs(parsed)
        if any(bulk and len(items) > 1 for bulk, items in cut):
            refused: tuple[type[Exception], ...] = (PosventaError, *self.store.value_errors)
            tried = IngestReport(rejected=list(report.rejected))
            try:
                with self.store.begin() as tx:
                    for bulk, items in cut:
                        if bulk:
                            self._apply_run(tx, [ev for _, ev in items], source, at, tried)
                        else:
                            self._apply_item(tx, *items[0], source, at, tried)
            except refused as exc:
                log.info("set-based ingest refused (%s): applying the batch item by item", type(exc).__name__)
            except Exception as exc:
                # A run's upserts lock rows by shape, not in one order: a concurrent batch about the same
                # customers may deadlock with it. The database rolled this one back; item by item, in the
                # batch's own order, is what a per-item ingest would have done anyway.
                if not self.store.lost_race(exc):
                    raise
                log.info(
                    "set-based ingest lost a race with another transaction: applying the batch item by item"
                )
            else:
                tried.rejected.sort(key=lambda r: r[0])
                return tried
        return self._each(parsed, source, at, report)

    def apply_each(
        self, raw: Iterable[Mapping[str, Any]], source: str, now: datetime | None = None, first_line: int = 1
    ) -> IngestReport:
        """:meth:`apply` item by item, a savepoint each: the reference the set-based path must equal, and
        its fallback."""
        report, parsed = self._parse(raw, first_line)
        return self._each(parsed, source, now or self.clock(), report)

    def _each(
        self, parsed: Sequence[tuple[int, Event]], source: str, now: datetime, report: IngestReport
    ) -> IngestReport:
        with self.store.begin() as tx:
            for n, ev in parsed:
                self._apply_item(tx, n, ev, source, now, report)
        report.rejected.sort(key=lambda r: r[0])  # parse rejections came first
        return report

    @staticmethod
    def _parse(
        raw: Iterable[Mapping[str, Any]], first_line: int
    ) -> tuple[IngestReport, list[tuple[int, Event]]]:
        report = IngestReport()
        parsed: list[tuple[int, Event]] = []
        for n, item in enumerate(raw, first_line):
            try:
                parsed.append((n, parse_event(item)))
            except EventError as exc:
                report.rejected.append((n, "; ".join(exc.problems)))
        return report, parsed

    def _apply_item(
        self, tx: Tx | None, n: int, ev: Event, source: str, now: datetime, report: IngestReport
    ) -> None:
        """One item in the caller's transaction under a savepoint, or (``tx`` None) in a transaction of its
        own, which needs no savepoint: either way a refusal rolls back this item alone."""
        try:
            if tx is None:
                with self.store.begin() as own:
                    new = self.apply_one(own, ev, source, now)
            else:
                with tx.savepoint():
                    new = self.apply_one(tx, ev, source, now)
        except PosventaError as exc:
            report.rejected.append((n, str(exc)))
        except self.store.value_errors as exc:  # the database refused it: nothing of it was stored
            report.rejected.append((n, self.store.refusal(exc)))
        else:
            if new:
                report.accepted += 1
            else:
                report.duplicates += 1

    def _apply_run(
        self, tx: Tx, events: Sequence[Event], source: str, now: datetime, report: IngestReport
    ) -> None:
        """:meth:`apply_one` of a run of events with distinct ids, customers and orders (:func:`runs`),
        set-based: each step of :meth:`apply_one` as one statement for the whole run."""
        recorded = tx.events.record_many(events, source)
        new = [ev for ev in events if ev.id in recorded]
        report.accepted += len(new)
        report.duplicates += len(events) - len(new)
        if not new:
            return
        customers = tx.customers.upsert_many([ev.customer for ev in new if ev.customer])
        bare = [ev.customer_id for ev in new if not ev.customer]
        if bare:
            customers.update(tx.customers.facts(bare))
            unknown = [cid for cid in bare if cid not in customers]  # named, never described
            if unknown:
                tx.customers.ensure_many(unknown)
                customers.update(tx.customers.facts(unknown))
        # The customer rows exist by now (upserted or ensured above).
        orders = tx.orders.upsert_many([(ev.customer_id, ev.order, ev.occurred_at) for ev in new if ev.order])
        named = [ev for ev in new if ev.order is None and ev.order_id]
        if named:
            orders.update(tx.orders.facts([ev.order_id for ev in named if ev.order_id]))
            unknown_orders = [
                (ev.order_id, ev.customer_id, ev.occurred_at)
                for ev in named
                if ev.order_id and ev.order_id not in orders and ev.type.startswith("order.")
            ]
            if unknown_orders:
                tx.orders.ensure_many(unknown_orders)
                orders.update(tx.orders.facts([order_id for order_id, _, _ in unknown_orders]))
        triggered: list[tuple[Event, Fact, Fact | None]] = []
        for ev in new:
            customer = customers[ev.customer_id]
            order = orders.get(ev.order_id) if ev.order_id else None
            triggered.append((ev, customer, self._side_effects(tx, ev, customer, order)))
        self.enroller.for_events(tx, triggered, now)
        # An event may resolve a wait_for, trigger an exit or release a hold: look at the customers now.
        tx.enrollments.wake_many([ev.customer_id for ev in new], now)

    def _apply_alone(self, item: Mapping[str, Any], source: str, now: datetime, line: int) -> IngestReport:
        """:meth:`apply` of a single item: its transaction is the item's, so it needs no savepoint (two
        round trips fewer) — a failure rolls the whole transaction back, which holds nothing else."""
        report, parsed = self._parse([item], line)
        for n, ev in parsed:
            self._apply_item(None, n, ev, source, now, report)
        return report

    def apply_one(self, tx: Tx, ev: Event, source: str, now: datetime) -> bool:
        """Apply one validated event inside the caller's transaction. Returns False for a duplicate."""
        if not tx.events.record(ev, source):
            return False
        customer = tx.customers.upsert(ev.customer) if ev.customer else tx.customers.fact(ev.customer_id)
        if customer is None:  # an event may name a customer the shop never described
            tx.customers.ensure(ev.customer_id)
            customer = tx.customers.fact(ev.customer_id)
            assert customer is not None
        order: Fact | None = None
        if ev.order is not None:
            # The customer row exists by now (upserted or ensured above).
            order = tx.orders.upsert(ev.customer_id, ev.order, ev.occurred_at, customer_exists=True)
        elif ev.order_id:
            order = tx.orders.fact(ev.order_id)
            if order is None and ev.type.startswith("order."):
                tx.orders.ensure(ev.order_id, ev.customer_id, ev.occurred_at)
                order = tx.orders.fact(ev.order_id)
        order = self._side_effects(tx, ev, customer, order)
        self.enroller.for_event(tx, ev, customer, order, now)
        # An event may resolve a wait_for, trigger an exit or release a hold: look at the customer now.
        tx.enrollments.wake(ev.customer_id, now)
        return True

    def _side_effects(self, tx: Tx, ev: Event, customer: Fact, order: Fact | None) -> Fact | None:
        """What the event says about the world; returns the order as it is afterwards."""
        t, d = ev.type, ev.data
        if order is not None and t.startswith("order.") and t != "order.placed":
            # Guarded: out-of-order events never move an order backwards.
            at = parse_instant(d.get("delivered_at")) if t == "order.delivered" else None
            tx.orders.set_status(order["id"], t.split(".", 1)[1], at or ev.occurred_at)
            if t == "order.shipped" and d.get("tracking_url"):
                tx.orders.set_tracking_url(order["id"], d["tracking_url"])
            order = tx.orders.fact(order["id"])
        elif t == "ticket.opened":
            tx.tickets.open(
                d["ticket_id"],
                ev.customer_id,
                ev.order_id,
                d.get("subject"),
                d.get("category", "complaint"),
                "external",
            )
        elif t == "ticket.resolved":
            tx.tickets.resolve(d["ticket_id"], ev.occurred_at)
        elif t == "feedback.submitted":
            tx.feedback.save(
                ev.customer_id, ev.order_id, d.get("survey", "nps"), d["score"], d.get("comment")
            )
        elif t == "customer.unsubscribed" and customer.get("email"):
            tx.suppressions.suppress(
                customer["email"],
                "unsubscribed",
                scope="promotional" if d.get("scope") == "promotional" else "all",
                customer_id=ev.customer_id,
                source=d.get("source") or "event",
            )
        if t in ("order.placed", "purchase") and order is not None and order.get("referral_code"):
            tx.referrals.attribute(order["referral_code"], order["id"], ev.customer_id)
        return order

"""Events in: recorded once by id, applied to customers, orders, tickets, feedback and suppressions,
enrolling customers per the journeys' triggers and waking their live enrollments — all in the
transaction that records the event. An event seen twice changes nothing twice."""

from __future__ import annotations

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


class Ingest:
    def __init__(self, store: Store, enroller: Enroller, clock: Clock) -> None:
        self.store = store
        self.enroller = enroller
        self.clock = clock

    def apply(
        self, raw: Iterable[Mapping[str, Any]], source: str, now: datetime | None = None, first_line: int = 1
    ) -> IngestReport:
        """Validate and apply events; a bad item is reported with its position and skipped.

        One transaction for the call, a savepoint per item: a batch costs one commit, and an item that
        fails rolls back alone. (A database error that breaks the connection fails the whole call; events
        are idempotent, so the client simply retries.)"""
        report = IngestReport()
        at = now or self.clock()
        if isinstance(raw, Sequence) and len(raw) == 1:
            return self._apply_alone(raw[0], source, at, first_line)
        with self.store.begin() as tx:
            for n, item in enumerate(raw, first_line):
                try:
                    ev = parse_event(item)
                except EventError as exc:
                    report.rejected.append((n, "; ".join(exc.problems)))
                    continue
                try:
                    with tx.savepoint():
                        new = self.apply_one(tx, ev, source, at)
                except PosventaError as exc:
                    report.rejected.append((n, str(exc)))
                    continue
                except self.store.value_errors as exc:  # the database refused it: rolled back alone
                    report.rejected.append((n, self.store.refusal(exc)))
                    continue
                if new:
                    report.accepted += 1
                else:
                    report.duplicates += 1
        return report

    def _apply_alone(self, item: Mapping[str, Any], source: str, now: datetime, line: int) -> IngestReport:
        """:meth:`apply` of a single item: its transaction is the item's, so it needs no savepoint (two
        round trips fewer) — a failure rolls the whole transaction back, which holds nothing else."""
        report = IngestReport()
        try:
            ev = parse_event(item)
        except EventError as exc:
            report.rejected.append((line, "; ".join(exc.problems)))
            return report
        try:
            with self.store.begin() as tx:
                new = self.apply_one(tx, ev, source, now)
        except PosventaError as exc:
            report.rejected.append((line, str(exc)))
        except self.store.value_errors as exc:  # the database refused it: nothing of it was stored
            report.rejected.append((line, self.store.refusal(exc)))
        else:
            if new:
                report.accepted += 1
            else:
                report.duplicates += 1
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

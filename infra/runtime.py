"""The runtime: events in, the pure engine in the middle, effects out — exactly once.

One way for data to flow (ARCHITECTURE.md):

1. **Events** (:meth:`Runtime.apply_events`) are recorded idempotently by id, update customers, orders,
   tickets, feedback and suppressions, enroll customers per the journeys' triggers and entry rules (the
   database's unique ``(journey_id, entry_key)`` is the entry rule's guard) and wake the customer's live
   enrollments. An event seen twice changes nothing twice.
2. **Advancing** (:meth:`Runtime.advance_due`) claims due enrollments with ``FOR UPDATE SKIP LOCKED``,
   loads the facts of the whole batch in a handful of queries, runs :func:`posventa.engine.advance` per
   enrollment, and — in the *same transaction* — writes the new state and one ledger row per effect under
   a derived key ``enrollment:step:occurrence`` (``INSERT … ON CONFLICT DO NOTHING``). Local actions
   (set an attribute, open a ticket) are performed inside that transaction, so they are atomic with the
   state change. A worker that dies before commit leaves nothing; the next claim recomputes the same keys.
3. **Delivering** (:meth:`Runtime.deliver`) claims ``pending`` ledger rows, marks them ``sending`` and
   commits *before* calling the provider, then records ``sent`` / ``failed`` / ``unknown`` / back to
   ``pending`` (nothing was sent: retry later). A row left in ``sending`` by a dead worker, or an
   ambiguous provider answer, becomes ``unknown``: reconciled (webhook evidence or a configured window),
   never resent blindly (:meth:`Runtime.reconcile`).
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from infra.db import models as m
from infra.db import store
from infra.db.session import make_engine, session_factory
from infra.email import make_sender
from infra.email.message import Outcome, OutgoingEmail, Sender
from infra.settings import Settings, get_settings
from posventa import tokens
from posventa.engine import Act, Facts, Send, Skip, State, advance, derive_order
from posventa.errors import EventError, PosventaError
from posventa.events import Event, parse_event
from posventa.expressions import compile_condition
from posventa.plan import JourneyPlan, load_plans
from posventa.templates import Templates, message_context

log = logging.getLogger("posventa.runtime")
LIVE = m.LIVE_ENROLLMENT_STATUSES
#: An enrollment that fails this many times in a row is parked as ``failed`` for a human to look at.
MAX_ATTEMPTS = 5
#: How far back the frequency cap looks (the longest ``per`` a journey may reasonably set).
CAP_LOOKBACK = timedelta(days=60)
SURVEY_TTL = timedelta(days=30)
UNSUBSCRIBE_TTL = timedelta(days=400)
#: Date triggers look back this far, so a missed nightly run (or two) still enrolls its customers.
CATCH_UP = timedelta(days=3)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in_year(d: date, year: int) -> date:
    """The anniversary of ``d`` in ``year`` (29 February → 28 February in common years)."""
    try:
        return d.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


@dataclass
class Stats:
    """What a run did, per journey step: the rows of the run's Prefect table artifact."""

    rows: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (journey, step, outcome)
    enrollments: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, journey: str, step: str, outcome: str, n: int = 1) -> None:
        self.rows[(journey, step, outcome)] += n

    def merge(self, other: Stats) -> Stats:
        self.rows.update(other.rows)
        self.enrollments += other.enrollments
        self.failures += other.failures
        return self

    def total(self, outcome_prefix: str) -> int:
        return sum(n for (_, _, o), n in self.rows.items() if o.startswith(outcome_prefix))

    def table(self) -> list[dict[str, Any]]:
        by_step: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for (j, s, o), n in self.rows.items():
            by_step[(j, s)][o] += n
        out = []
        for (j, s), c in sorted(by_step.items()):
            skipped = {k: v for k, v in c.items() if k.startswith("skipped")}
            out.append(
                {
                    "journey": j,
                    "step": s,
                    "due": c["due"],
                    "sent": c["sent"],
                    "skipped": sum(skipped.values()),
                    "skip reasons": ", ".join(
                        f"{k.split(':', 1)[-1]}×{v}" for k, v in sorted(skipped.items())
                    ),
                    "deferred": c["deferred"] + c["held"],
                    "failed": c["failed"],
                    "unknown": c["unknown"],
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": [[j, s, o, n] for (j, s, o), n in sorted(self.rows.items())],
            "enrollments": self.enrollments,
            "failures": self.failures[:50],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Stats:
        st = cls(enrollments=d.get("enrollments", 0), failures=list(d.get("failures", [])))
        for j, s, o, n in d.get("rows", []):
            st.rows[(j, s, o)] += n
        return st


@dataclass
class IngestReport:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line or index, reason)


def customer_fact(c: m.Customer) -> dict[str, Any]:
    return {
        "id": c.id,
        "email": c.email,
        "name": c.name,
        "locale": c.locale,
        "timezone": c.timezone,
        "birthday": c.birthday.isoformat() if c.birthday else None,
        "consent_email": c.consent_email,
        "attributes": dict(c.attributes or {}),
    }


def order_fact(o: m.Order | None) -> dict[str, Any] | None:
    if o is None:
        return None

    def iso(v: date | datetime | None) -> str | None:
        return v.isoformat() if v else None

    return {
        "id": o.id,
        "status": o.status,
        "total": float(o.total) if o.total is not None else None,
        "currency": o.currency,
        "channel": o.channel,
        "placed_at": iso(o.placed_at),
        "promised_delivery_date": iso(o.promised_delivery_date),
        "shipped_at": iso(o.shipped_at),
        "delivered_at": iso(o.delivered_at),
        "items": list(o.items or []),
        "referral_code": o.referral_code,
        "tracking_url": o.tracking_url,
        "attributes": dict(o.attributes or {}),
    }


def event_fact(e: m.StoredEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "type": e.type,
        "occurred_at": e.occurred_at,
        "order_id": e.order_id,
        "data": dict(e.data or {}),
    }


class Runtime:
    """Everything a worker, the web app or the demo needs, built from settings."""

    def __init__(
        self,
        settings: Settings,
        factory: sessionmaker[Session],
        plans: Mapping[str, JourneyPlan],
        sender: Sender,
        templates: Templates,
        worker: str | None = None,
    ) -> None:
        self.settings = settings
        self.factory = factory
        self.plans = dict(plans)
        self.sender = sender
        self.templates = templates
        self.worker = worker or f"{socket.gethostname()}:{os.getpid()}"
        self._pinned: dict[tuple[str, str], JourneyPlan] = {(p.id, p.version): p for p in plans.values()}

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        sender: Sender | None = None,
        plans: Mapping[str, JourneyPlan] | None = None,
    ) -> Runtime:
        s = settings or get_settings()
        factory = session_factory(make_engine(s.database_url))
        journeys = Path(s.journeys_dir)
        if sender is None:
            key = s.sendgrid_api_key.get_secret_value() if s.sendgrid_api_key else None
            sender = make_sender(
                key,
                s.sendgrid_host,
                s.email_from,
                Path(s.outbox_dir),
                timeout=s.sendgrid_timeout,
                concurrency=s.sendgrid_concurrency,
                passthrough_template_id=s.sendgrid_passthrough_template_id,
            )
        rt = cls(
            s,
            factory,
            plans if plans is not None else load_plans(journeys),
            sender,
            Templates(journeys / "templates"),
        )
        rt.publish_plans()
        return rt

    # ------------------------------------------------------------------------------------------ plans
    def publish_plans(self) -> None:
        """Store the current plan versions, so enrollments can pin them (idempotent)."""
        with self.factory.begin() as s:
            for p in self.plans.values():
                store.save_plan(s, p.id, p.version, p.to_json())

    def plan_for(self, s: Session, journey_id: str, version: str) -> JourneyPlan:
        key = (journey_id, version)
        if key not in self._pinned:
            row = s.get(m.StoredPlan, {"journey_id": journey_id, "version": version})
            if row is None:
                raise PosventaError(f"plan {journey_id}@{version} is not stored")
            self._pinned[key] = JourneyPlan.from_json(row.plan)
        return self._pinned[key]

    # ----------------------------------------------------------------------------------------- events
    def apply_events(
        self, raw: Iterable[Mapping[str, Any]], source: str, now: datetime | None = None, first_line: int = 1
    ) -> IngestReport:
        """Validate and apply events; a bad item is reported with its position and skipped.

        One transaction for the call, a savepoint per item: a batch costs one commit, and an item that
        fails rolls back alone. (A database error that breaks the connection fails the whole call; events
        are idempotent, so the client simply retries.)"""
        report = IngestReport()
        with self.factory.begin() as s:
            for n, item in enumerate(raw, first_line):
                try:
                    ev = parse_event(item)
                except EventError as exc:
                    report.rejected.append((n, "; ".join(exc.problems)))
                    continue
                try:
                    with s.begin_nested():
                        new = self.apply_event(s, ev, source, now or utcnow())
                except PosventaError as exc:
                    report.rejected.append((n, str(exc)))
                    continue
                if new:
                    report.accepted += 1
                else:
                    report.duplicates += 1
        return report

    def apply_event(self, s: Session, ev: Event, source: str, now: datetime) -> bool:
        """Apply one validated event inside the caller's transaction. Returns False for a duplicate."""
        if not store.record_event(s, ev, source):
            return False
        customer: m.Customer | None = s.get(m.Customer, ev.customer_id)
        if ev.customer is not None:
            customer = store.upsert_customer(s, ev.customer)
        elif customer is None:
            customer = m.Customer(id=ev.customer_id, locale="es", attributes={})
            s.add(customer)
            s.flush()
        order = s.get(m.Order, ev.order_id) if ev.order_id else None
        if ev.order is not None:
            order = store.upsert_order(s, ev.customer_id, ev.order, ev.occurred_at)
        elif order is None and ev.order_id and ev.type.startswith("order."):
            order = m.Order(
                id=ev.order_id,
                customer_id=ev.customer_id,
                placed_at=ev.occurred_at,
                status="placed",
                items=[],
                attributes={},
            )
            s.add(order)
            s.flush()
        self._side_effects(s, ev, customer, order)
        self._enroll_for_event(s, ev, customer, order, now)
        self._wake(s, ev.customer_id, now)
        return True

    def _side_effects(self, s: Session, ev: Event, customer: m.Customer, order: m.Order | None) -> None:
        t, d = ev.type, ev.data
        if order is not None and t.startswith("order.") and t != "order.placed":
            from posventa.timeutil import parse_instant

            # Guarded: out-of-order events never move an order backwards (store.set_order_status).
            at = parse_instant(d.get("delivered_at")) if t == "order.delivered" else None
            store.set_order_status(s, order.id, t.split(".", 1)[1], at or ev.occurred_at)
            if t == "order.shipped" and d.get("tracking_url"):
                order.tracking_url = d["tracking_url"]
            s.flush()
            s.refresh(order)
        elif t == "ticket.opened":
            store.open_ticket(
                s,
                d["ticket_id"],
                ev.customer_id,
                ev.order_id,
                d.get("subject"),
                d.get("category", "complaint"),
                "external",
            )
        elif t == "ticket.resolved":
            store.resolve_ticket(s, d["ticket_id"], ev.occurred_at)
        elif t == "feedback.submitted":
            store.save_feedback(
                s, ev.customer_id, ev.order_id, d.get("survey", "nps"), d["score"], d.get("comment")
            )
        elif t == "customer.unsubscribed" and customer.email:
            store.suppress(
                s,
                customer.email,
                "unsubscribed",
                scope="promotional" if d.get("scope") == "promotional" else "all",
                customer_id=customer.id,
                source=d.get("source") or "event",
            )
        if t in ("order.placed", "purchase") and order is not None and order.referral_code:
            store.attribute_referral(s, order.referral_code, order.id, ev.customer_id)

    def _entry_key(
        self, plan: JourneyPlan, ev_id: str, customer_id: str, order_id: str | None, now: datetime, s: Session
    ) -> str | None:
        rule = plan.entry
        if rule["once_per"] == "order":
            return f"order:{order_id}" if order_id else None
        if rule["once_per"] == "occurrence":
            return f"occurrence:{ev_id}"
        if rule.get("cooldown_s"):
            last = s.scalar(
                select(func.max(m.Enrollment.entered_at)).where(
                    m.Enrollment.journey_id == plan.id, m.Enrollment.customer_id == customer_id
                )
            )
            if last is not None and now - last < timedelta(seconds=rule["cooldown_s"]):
                return None
            n = (
                s.scalar(
                    select(func.count())
                    .select_from(m.Enrollment)
                    .where(m.Enrollment.journey_id == plan.id, m.Enrollment.customer_id == customer_id)
                )
                or 0
            )
            return f"customer:{customer_id}:{n}"
        return f"customer:{customer_id}"

    def _enroll_for_event(
        self, s: Session, ev: Event, customer: m.Customer, order: m.Order | None, now: datetime
    ) -> None:
        for plan in self.plans.values():
            trig = plan.trigger
            if trig.get("event") != ev.type:
                continue
            if trig.get("when"):
                ctx = {
                    "customer": customer_fact(customer),
                    "order": derive_order(order_fact(order)) or {},
                    "event": {"id": ev.id, "type": ev.type, "order_id": ev.order_id, "data": ev.data},
                    "feedback": {},
                    "journey": {"id": plan.id},
                }
                try:
                    if not compile_condition(trig["when"])(ctx):
                        continue
                except PosventaError:
                    continue
            key = self._entry_key(plan, ev.id, ev.customer_id, ev.order_id, ev.occurred_at, s)
            if key is None:
                continue
            self._create_enrollment(
                s,
                plan,
                ev.customer_id,
                ev.order_id,
                key,
                ev.occurred_at,
                now,
                {"id": ev.id, "type": ev.type, "order_id": ev.order_id, "data": ev.data},
            )

    def _create_enrollment(
        self,
        s: Session,
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
        return store.create_enrollment(
            s, plan.id, plan.version, customer_id, order_id, key, state.to_json(), now, entered_at
        )

    def _wake(self, s: Session, customer_id: str, now: datetime) -> None:
        """An event may resolve a wait_for, trigger an exit or release a hold: look at the customer now."""
        s.execute(
            update(m.Enrollment)
            .where(
                m.Enrollment.customer_id == customer_id,
                m.Enrollment.status.in_(LIVE),
                or_(m.Enrollment.next_due_at.is_(None), m.Enrollment.next_due_at > now),
            )
            .values(next_due_at=now)
        )

    # ---------------------------------------------------------------------------- scheduled entries
    def enroll_scheduled(self, now: datetime) -> Stats:
        """Nightly: enroll customers whose date trigger falls due today, and segment entries."""
        stats = Stats()
        for plan in self.plans.values():
            trig = plan.trigger
            if not (trig.get("date") or trig.get("segment")):
                continue
            with self.factory.begin() as s:
                n = self._enroll_plan(s, plan, now)
            stats.add(plan.id, "(entry)", "enrolled", n)
        return stats

    def _enroll_plan(self, s: Session, plan: JourneyPlan, now: datetime) -> int:
        """Enroll everyone whose date (± offset) falls in the last few days, or who is in the segment.

        Entry keys come from the journey's entry rule (as for events), so running the nightly twice, or
        catching up after missed nights (``CATCH_UP``), enrolls nobody twice.
        """
        trig = plan.trigger
        offset = timedelta(seconds=trig.get("offset_s") or 0)
        today = now.date()
        count = 0

        def admit(c: m.Customer, o: m.Order | None, occurrence: str) -> None:
            nonlocal count
            ctx = {
                "customer": customer_fact(c),
                "order": derive_order(order_fact(o)) or {},
                "event": {},
                "feedback": {},
                "journey": {"id": plan.id},
            }
            condition = trig.get("segment") or trig.get("when")
            if condition:
                try:
                    if not compile_condition(condition)(ctx):
                        return
                except PosventaError:
                    return
            key = self._entry_key(plan, occurrence, c.id, o.id if o else None, now, s)
            if key and self._create_enrollment(s, plan, c.id, o.id if o else None, key, now, now, None):
                count += 1

        def in_window(due: date) -> bool:
            return today - CATCH_UP < due <= today

        if trig.get("segment"):
            for c in s.scalars(select(m.Customer)):
                admit(c, None, f"segment:{c.id}")
            return count
        root, _, fname = trig["date"].partition(".")
        if root == "customer":
            for c in s.scalars(select(m.Customer).where(m.Customer.birthday.is_not(None))):
                assert c.birthday is not None
                years = (today.year - 1, today.year, today.year + 1) if trig.get("yearly") else (None,)
                for year in years:
                    d = c.birthday if year is None else _in_year(c.birthday, year)
                    if in_window(d + offset):
                        admit(c, None, f"date:{c.id}:{(d + offset).isoformat()}")
            return count
        # Order dates (warranty expiry, run-out date) derive from the items; warranties run for years,
        # so every live order is a candidate.
        customers: dict[str, m.Customer] = {}
        for o in s.scalars(select(m.Order).where(m.Order.status.not_in(("canceled", "returned")))):
            raw = (derive_order(order_fact(o)) or {}).get(fname)
            if not raw:
                continue
            due = date.fromisoformat(str(raw)[:10]) + offset
            if in_window(due):
                found = customers.get(o.customer_id) or s.get(m.Customer, o.customer_id)
                if found is not None:
                    customers[found.id] = found
                    admit(found, o, f"date:{o.id}:{due.isoformat()}")
        return count

    # -------------------------------------------------------------------------------------- advance
    def advance_due(
        self,
        now: datetime | None = None,
        limit: int | None = None,
        journey: str | None = None,
        customer: str | None = None,
        force: bool = False,
    ) -> Stats:
        """Claim one batch of due enrollments and advance each through the engine (phase A).

        ``force`` ignores ``next_due_at`` (the per-customer flow: "advance this customer now")."""
        now = now or utcnow()
        limit = limit or self.settings.batch_size
        stats = Stats()
        with self.factory.begin() as s:
            q = select(m.Enrollment).where(m.Enrollment.status.in_(LIVE))
            if not force:
                q = q.where(m.Enrollment.next_due_at <= now)
            if journey:
                q = q.where(m.Enrollment.journey_id == journey)
            if customer:
                q = q.where(m.Enrollment.customer_id == customer)
            rows = list(
                s.scalars(
                    q.order_by(m.Enrollment.next_due_at, m.Enrollment.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            )
            if not rows:
                return stats
            self._lock_customers(s, sorted({e.customer_id for e in rows}))
            facts = self._facts_for(s, rows, now)
            ledger: list[dict[str, Any]] = []
            for e in rows:
                stats.enrollments += 1
                mine = Stats()
                try:
                    ledger_rows = self._advance_one(s, e, facts[e.id], now, mine)
                except Exception as exc:
                    e.attempts += 1
                    e.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                    e.next_due_at = now + timedelta(minutes=5 * 2 ** min(e.attempts, 8))
                    if e.attempts >= MAX_ATTEMPTS:
                        e.status, e.next_due_at = "failed", None
                    stats.add(e.journey_id, e.state.get("step") or "?", "failed")
                    stats.failures.append(f"enrollment {e.id}: {e.last_error}")
                    log.warning("enrollment %s failed: %s\n%s", e.id, exc, traceback.format_exc(limit=3))
                else:
                    ledger += ledger_rows
                    stats.merge(mine)
            if ledger:
                insert_ledger(s, ledger)
        return stats

    @staticmethod
    def _lock_customers(s: Session, customer_ids: Sequence[str]) -> None:
        """PostgreSQL: serialise workers on the same customers until commit, so the frequency cap (which
        counts messages across journeys) sees what another worker just decided. Locks are taken in one
        sorted order, so two workers cannot deadlock on them."""
        if s.get_bind().dialect.name != "postgresql" or not customer_ids:
            return
        s.execute(
            text(
                "SELECT pg_advisory_xact_lock(h) FROM (SELECT hashtextextended(c, 7823) AS h "
                "FROM unnest(CAST(:ids AS text[])) AS c ORDER BY 1) AS k"
            ),
            {"ids": list(customer_ids)},
        )

    def _facts_for(self, s: Session, rows: Sequence[m.Enrollment], now: datetime) -> dict[int, Facts]:
        """Load everything the batch needs in a fixed number of queries (not one per enrollment)."""
        cids = sorted({e.customer_id for e in rows})
        oids = sorted({e.order_id for e in rows if e.order_id})
        customers = {c.id: c for c in s.scalars(select(m.Customer).where(m.Customer.id.in_(cids)))}
        orders = {o.id: o for o in s.scalars(select(m.Order).where(m.Order.id.in_(oids)))} if oids else {}
        since = min(e.entered_at for e in rows)
        events: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for ev in s.scalars(
            select(m.StoredEvent)
            .where(
                m.StoredEvent.customer_id.in_(cids),
                m.StoredEvent.occurred_at >= since,
                m.StoredEvent.occurred_at <= now,
            )
            .order_by(m.StoredEvent.occurred_at, m.StoredEvent.id)
        ):
            events[ev.customer_id].append(event_fact(ev))
        feedback: dict[tuple[str, str | None], dict[str, Any]] = {}
        for f in s.scalars(
            select(m.FeedbackResponse)
            .where(m.FeedbackResponse.customer_id.in_(cids))
            .order_by(m.FeedbackResponse.updated_at)
        ):
            feedback[(f.customer_id, f.order_id)] = {
                "score": f.score,
                "comment": f.comment,
                "survey": f.survey,
            }
        complaints = _open_complaints(s, cids)
        suppressed = _suppressions(s, customers.values())
        orders_count: dict[str, int] = dict(
            s.execute(
                select(m.Order.customer_id, func.count())
                .where(m.Order.customer_id.in_(cids))
                .group_by(m.Order.customer_id)
            )
            .tuples()
            .all()
        )
        promo: dict[str, list[datetime]] = defaultdict(list)
        for cid, at in s.execute(
            select(m.LedgerEntry.customer_id, m.LedgerEntry.created_at).where(
                m.LedgerEntry.customer_id.in_(cids),
                m.LedgerEntry.category == "promotional",
                m.LedgerEntry.status.in_(("pending", "sending", "sent", "unknown")),
                m.LedgerEntry.created_at > now - CAP_LOOKBACK,
            )
        ):
            promo[cid].append(at)
        out = {}
        for e in rows:
            c = customers.get(e.customer_id)
            cust: dict[str, Any] = customer_fact(c) if c else {"id": e.customer_id}
            cust["orders_count"] = orders_count.get(e.customer_id, 0)
            scopes = suppressed.get(store.normalise_email(cust["email"]), {}) if cust.get("email") else {}
            out[e.id] = Facts(
                customer=cust,
                order=order_fact(orders.get(e.order_id or "")),
                events=events.get(e.customer_id, []),
                feedback=feedback.get((e.customer_id, e.order_id)) or feedback.get((e.customer_id, None)),
                open_complaint=e.customer_id in complaints,
                suppressed=scopes.get("all"),
                unsubscribed_promotional="promotional" in scopes,
                recent_promotional=promo[e.customer_id],
                default_timezone=self.settings.timezone,
            )
        return out

    def _advance_one(
        self,
        s: Session,
        e: m.Enrollment,
        facts: Facts,
        now: datetime,
        stats: Stats,
    ) -> list[dict[str, Any]]:
        """Advance one enrollment; return its ledger rows. The engine is pure, so nothing is written
        unless it succeeds; local actions (rare) get a savepoint so a failing one rolls back alone."""
        plan = self.plan_for(s, e.journey_id, e.plan_version)
        ledger: list[dict[str, Any]] = []
        local_actions: list[Act] = []
        before = State.from_json(e.state)
        adv = advance(before, plan, now, facts)
        if before.step:
            stats.add(e.journey_id, before.step, "due")
        for eff in adv.effects:
            row = {
                "key": f"{e.id}:{eff.key}",
                "enrollment_id": e.id,
                "journey_id": e.journey_id,
                "step_id": eff.step,
                "occurrence": eff.occurrence,
                "customer_id": e.customer_id,
                "created_at": now,
                "updated_at": now,
            }
            if isinstance(eff, Send):
                if eff.category == "promotional" and isinstance(facts.recent_promotional, list):
                    # Shared by this customer's other enrollments in the batch: the cap counts this send.
                    facts.recent_promotional.append(now)
                row.update(
                    kind="message",
                    channel=eff.channel,
                    template=eff.template,
                    category=eff.category,
                    to_email=facts.customer.get("email"),
                    status="pending",
                    payload={
                        "locale": eff.locale,
                        "order_id": e.order_id,
                        "sendgrid_template_id": eff.sendgrid_template_id,
                        "event": before.event if adv.state.event is None else adv.state.event,
                        "variant": adv.state.variant,
                    },
                )
            elif isinstance(eff, Skip):
                row.update(
                    kind="message",
                    channel="email",
                    template=eff.template,
                    category=eff.category,
                    to_email=facts.customer.get("email"),
                    status="skipped",
                    reason=eff.reason,
                    payload={},
                )
                stats.add(e.journey_id, eff.step, f"skipped:{eff.reason}")
            elif isinstance(eff, Act):
                row.update(kind="action", payload={"action": eff.action, "params": dict(eff.params)})
                if eff.action == "webhook":
                    row["status"] = "pending"
                else:
                    local_actions.append(eff)
                    row.update(status="sent", sent_at=now)
                    stats.add(e.journey_id, eff.step, "sent")
            ledger.append(row)
        for line in adv.trace:
            if line.endswith("(quiet hours)") or line.endswith("(frequency cap)"):
                stats.add(e.journey_id, line.split(":", 1)[0], "deferred")
            elif line.endswith("held (open complaint)"):
                stats.add(e.journey_id, line.split(":", 1)[0], "held")
        if local_actions:
            with s.begin_nested():
                for act in local_actions:
                    self._local_action(s, e, act)
        e.state = adv.state.to_json()
        e.status = adv.status
        e.next_due_at = adv.next_due_at
        e.attempts, e.last_error = 0, None
        if adv.status in ("completed", "exited", "converted"):
            e.ended_at = now
        return ledger

    def _local_action(self, s: Session, e: m.Enrollment, eff: Act) -> None:
        p = eff.params
        if eff.action == "set_attribute":
            c = s.get(m.Customer, e.customer_id)
            if c is not None:
                c.attributes = {**(c.attributes or {}), **p}
        elif eff.action == "open_ticket":
            store.open_ticket(
                s,
                f"pv-{e.id}-{eff.step}-{eff.occurrence}",
                e.customer_id,
                e.order_id,
                p.get("subject"),
                p.get("category", "complaint"),
                "journey",
            )

    # -------------------------------------------------------------------------------------- deliver
    def deliver(
        self, now: datetime | None = None, limit: int | None = None, customer: str | None = None
    ) -> Stats:
        """Phase B: send pending messages (and webhooks) once; record what the provider said."""
        now = now or utcnow()
        limit = limit or self.settings.batch_size
        stats = Stats()
        with self.factory.begin() as s:
            q = select(m.LedgerEntry).where(
                m.LedgerEntry.status == "pending",
                or_(m.LedgerEntry.not_before.is_(None), m.LedgerEntry.not_before <= now),
            )
            if customer:
                q = q.where(m.LedgerEntry.customer_id == customer)
            rows = list(
                s.scalars(q.order_by(m.LedgerEntry.id).limit(limit).with_for_update(skip_locked=True))
            )
            if not rows:
                return stats
            # Recorded as 'sending' and committed before any provider call (explicit updated_at: the
            # reconciler compares it with the caller's clock, which is virtual in the demo and tests).
            s.execute(
                update(m.LedgerEntry)
                .where(m.LedgerEntry.id.in_([r.id for r in rows]))
                .values(status="sending", attempts=m.LedgerEntry.attempts + 1, updated_at=now)
                .execution_options(synchronize_session=False)
            )
            work = [
                (
                    r.key,
                    r.journey_id,
                    r.step_id,
                    r.kind,
                    r.customer_id,
                    r.template,
                    r.category,
                    dict(r.payload or {}),
                )
                for r in rows
            ]
        with self.factory.begin() as s:  # committed: rendering may create referral codes
            messages, verdicts = self._build(s, work, now)
        where = {w[0]: (w[1], w[2]) for w in work}
        moves: list[store.Move] = []
        for key, (status, reason) in verdicts.items():
            # "pending" here means held (promotional during an open complaint): look again later.
            later = now + timedelta(hours=6) if status == "pending" else None
            moves.append(store.Move(key, status, reason, None, later))
            j, st = where[key]
            stats.add(j, st, {"skipped": f"skipped:{reason}", "pending": "held"}.get(status, status))
        if moves:
            with self.factory.begin() as s:
                store.mark_many(s, moves, ("sending",), now=now)
        if messages:
            results = self.sender.send([msg for msg, _ in messages])
            meta = {msg.ledger_key: (msg.journey, msg.step) for msg, _ in messages}
            moves = []
            for res in results:
                j, st = meta[res.ledger_key]
                if res.outcome == Outcome.SENT:
                    moves.append(store.Move(res.ledger_key, "sent", None, res.provider_message_id))
                    stats.add(j, st, "sent")
                elif res.outcome == Outcome.FAILED:
                    moves.append(store.Move(res.ledger_key, "failed", res.error))
                    stats.add(j, st, "failed")
                elif res.outcome == Outcome.UNKNOWN:
                    moves.append(store.Move(res.ledger_key, "unknown", res.error))
                    stats.add(j, st, "unknown")
                else:  # nothing was sent: back to pending, not before the provider allows
                    wait = timedelta(seconds=res.retry_after or 60)
                    moves.append(store.Move(res.ledger_key, "pending", res.error, None, now + wait))
                    stats.add(j, st, "retry")
            with self.factory.begin() as s:
                store.mark_many(s, moves, ("sending",), now=now)
        return stats

    def _build(
        self, s: Session, work: Sequence[tuple[Any, ...]], now: datetime
    ) -> tuple[list[tuple[OutgoingEmail, str]], dict[str, tuple[str, str]]]:
        """Render the batch; decide at the last moment what must not be sent (suppressed since decided)."""
        cids = sorted({w[4] for w in work})
        customers = {c.id: c for c in s.scalars(select(m.Customer).where(m.Customer.id.in_(cids)))}
        oids = sorted({w[7].get("order_id") for w in work if w[7].get("order_id")})
        orders = {o.id: o for o in s.scalars(select(m.Order).where(m.Order.id.in_(oids)))} if oids else {}
        complaints = _open_complaints(s, cids)
        suppressed = _suppressions(s, customers.values())
        messages: list[tuple[OutgoingEmail, str]] = []
        verdicts: dict[str, tuple[str, str]] = {}
        for key, journey, step, kind, cid, template, category, payload in work:
            c = customers.get(cid)
            if kind == "action":
                verdicts[key] = self._webhook(payload)
                continue
            if c is None or not c.email:
                verdicts[key] = ("skipped", "no-address")
                continue
            scopes = suppressed.get(store.normalise_email(c.email), {})
            reason = scopes.get("all") or (scopes.get("promotional") if category == "promotional" else None)
            if reason:
                verdicts[key] = ("skipped", f"suppressed:{reason}")
                continue
            if category == "promotional" and cid in complaints:
                verdicts[key] = ("pending", "held: open complaint")  # decided before the complaint: wait
                continue
            order = orders.get(payload.get("order_id") or "")
            locale = payload.get("locale") or c.locale or "es"
            try:
                msg = self._render(
                    s,
                    key,
                    journey,
                    step,
                    template or "",
                    category or "transactional",
                    locale,
                    c,
                    order,
                    payload,
                    now,
                )
            except PosventaError as exc:
                verdicts[key] = ("failed", f"render: {exc}")
                continue
            messages.append((msg, key))
        return messages, verdicts

    def _webhook(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        import httpx

        params = payload.get("params") or {}
        try:
            r = httpx.post(params["url"], json={"event": params.get("event"), "payload": payload}, timeout=10)
        except httpx.HTTPError as exc:
            return "unknown", f"webhook: {type(exc).__name__}"
        return (
            ("sent", f"HTTP {r.status_code}") if r.status_code < 400 else ("failed", f"HTTP {r.status_code}")
        )

    def links(
        self,
        key: str,
        customer: m.Customer,
        order_id: str | None,
        journey: str,
        now: datetime,
        referral_code: str | None,
    ) -> dict[str, Any]:
        base = self.settings.public_base_url.rstrip("/")
        secret = self.settings.secret_key.get_secret_value()
        survey = _LazyList(
            11,
            lambda i: (
                f"{base}/s/"
                + tokens.sign(
                    {"k": key, "c": customer.id, "o": order_id, "s": i, "j": journey},
                    secret,
                    now=now,
                    ttl=SURVEY_TTL,
                )
            ),
        )
        unsub = f"{base}/u/" + tokens.sign(
            {"c": customer.id, "e": customer.email, "j": journey, "k": key},
            secret,
            now=now,
            ttl=UNSUBSCRIBE_TTL,
        )
        return {
            "survey": survey,
            "unsubscribe": unsub,
            "referral": f"{base}/r/{referral_code}" if referral_code else None,
            "support": f"mailto:{self.settings.email_from}",
            "review": None,
            "shop": base,
        }

    def _render(
        self,
        s: Session,
        key: str,
        journey: str,
        step: str,
        template: str,
        category: str,
        locale: str,
        c: m.Customer,
        order: m.Order | None,
        payload: Mapping[str, Any],
        now: datetime,
    ) -> OutgoingEmail:
        # A referral code is created only if the template (or a partial it includes) prints one.
        code = _Lazy(lambda: store.referral_code_for(s, c.id, journey))
        links: dict[str, Any] = self.links(key, c, order.id if order else None, journey, now, None)
        base = self.settings.public_base_url.rstrip("/")
        links["referral"] = _Lazy(lambda: f"{base}/r/{code}")
        ctx = message_context(
            customer=customer_fact(c),
            order=derive_order(order_fact(order)),
            journey=journey,
            step=step,
            links=links,
            event=payload.get("event"),
            variant=payload.get("variant"),
            referral_code=code,  # type: ignore[arg-type]
            brand={
                "name": self.settings.email_from_name,
                "url": self.settings.public_base_url,
                "support_email": self.settings.email_from,
            },
        )
        promotional = category == "promotional"
        if payload.get("sendgrid_template_id"):
            # SendGrid renders the template: hand it plain JSON (a dynamic template may use the code).
            ctx["referral_code"] = str(code)
            ctx["links"] = {
                **ctx["links"],
                "referral": str(links["referral"]),
                "survey": list(ctx["links"]["survey"]),
            }
            return OutgoingEmail(
                ledger_key=key,
                to_email=c.email or "",
                to_name=c.name,
                subject="",
                html="",
                text="",
                journey=journey,
                step=step,
                promotional=promotional,
                unsubscribe_url=links["unsubscribe"],
                locale=locale,
                sendgrid_template_id=payload["sendgrid_template_id"],
                template_data=ctx,
            )
        r = self.templates.render(template, locale, ctx)
        return OutgoingEmail(
            ledger_key=key,
            to_email=c.email or "",
            to_name=c.name,
            subject=r.subject,
            html=r.html,
            text=r.text,
            journey=journey,
            step=step,
            promotional=promotional,
            unsubscribe_url=links["unsubscribe"] if promotional else None,
            locale=locale,
        )

    # ------------------------------------------------------------------------------------ reconcile
    def reconcile(
        self, now: datetime | None = None, stuck_after: timedelta = timedelta(minutes=15)
    ) -> dict[str, int]:
        """Sending rows a dead worker left become unknown; unknown rows past the window are released."""
        now = now or utcnow()
        window = timedelta(minutes=self.settings.reconcile_after_minutes)
        with self.factory.begin() as s:
            stuck = s.execute(
                update(m.LedgerEntry)
                .where(m.LedgerEntry.status == "sending", m.LedgerEntry.updated_at < now - stuck_after)
                .values(status="unknown", reason="worker stopped while sending", updated_at=now)
            )
            released = s.execute(
                update(m.LedgerEntry)
                .where(
                    m.LedgerEntry.status == "unknown",
                    m.LedgerEntry.kind == "message",
                    m.LedgerEntry.updated_at < now - window,
                )
                .values(status="pending", reason="released after reconciliation window", updated_at=now)
            )
        return {"marked_unknown": int(stuck.rowcount or 0), "released": int(released.rowcount or 0)}  # type: ignore[attr-defined]

    def count_due(self, now: datetime, journey: str | None = None) -> int:
        """How many enrollments a sweep at ``now`` will advance (for the progress artifact)."""
        with self.factory() as s:
            q = (
                select(func.count())
                .select_from(m.Enrollment)
                .where(m.Enrollment.status.in_(LIVE), m.Enrollment.next_due_at <= now)
            )
            if journey:
                q = q.where(m.Enrollment.journey_id == journey)
            return int(s.scalar(q) or 0)

    # ---------------------------------------------------------------------------------------- sweep
    def sweep(self, now: datetime | None = None, max_batches: int = 10_000) -> Stats:
        """Advance every due enrollment and deliver every pending message (without Prefect)."""
        now = now or utcnow()
        total = Stats()
        for _ in range(max_batches):
            st = self.advance_due(now)
            total.merge(st)
            if st.enrollments == 0:
                break
        for _ in range(max_batches):
            st = self.deliver(now)
            total.merge(st)
            if not st.rows:
                break
        return total


def _open_complaints(s: Session, customer_ids: Sequence[str]) -> set[str]:
    """Which of these customers have an open complaint (promotions wait for them)."""
    return set(
        s.scalars(
            select(m.SupportTicket.customer_id).where(
                m.SupportTicket.customer_id.in_(customer_ids),
                m.SupportTicket.status == "open",
                m.SupportTicket.category == "complaint",
            )
        )
    )


def _suppressions(s: Session, customers: Iterable[m.Customer]) -> dict[str, dict[str, str]]:
    """Suppression reasons by normalised address and scope, for a batch of customers in one query."""
    emails = sorted({store.normalise_email(c.email) for c in customers if c.email})
    out: dict[str, dict[str, str]] = defaultdict(dict)
    if emails:
        for row in s.scalars(select(m.Suppression).where(m.Suppression.email.in_(emails))):
            out[row.email][row.scope] = row.reason
    return out


class _Lazy:
    """A template value computed on first use (printed, tested or compared), then remembered."""

    def __init__(self, make: Any) -> None:
        self._make: Any = make
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = str(self._make())
        return str(self._value)

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(str(self)))

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other: object) -> bool:
        return str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))


class _LazyList(Sequence[str]):
    """A list whose items are made when a template reads them (11 signed survey links per message
    would otherwise be signed for every email, survey or not)."""

    def __init__(self, n: int, make: Any) -> None:
        self._n, self._make = n, make
        self._items: dict[int, str] = {}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._n))]
        i = index + self._n if index < 0 else index
        if not 0 <= i < self._n:
            raise IndexError(index)
        if i not in self._items:
            self._items[i] = self._make(i)
        return self._items[i]


def insert_ledger(s: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk ``INSERT … ON CONFLICT (key) DO NOTHING``: a recomputed effect finds its row already there."""
    from sqlalchemy.dialects import postgresql, sqlite

    dialect = postgresql if s.get_bind().dialect.name == "postgresql" else sqlite
    cols = {c.name for c in m.LedgerEntry.__table__.columns} - {"id"}
    full = [{**{c: None for c in cols}, "attempts": 0, "reason": None, **r} for r in rows]
    # One multi-row INSERT per chunk (not an executemany: psycopg2 would send a statement per row).
    for start in range(0, len(full), 500):
        chunk = full[start : start + 500]
        # No conflict target: both unique indexes arbitrate (see store.reserve_step).
        s.execute(dialect.insert(m.LedgerEntry).values(chunk).on_conflict_do_nothing())


__all__ = ["IngestReport", "Runtime", "Stats"]

"""Advancing (phase A of a sweep): claim a batch of due enrollments, load the facts of the whole batch in
a fixed number of queries, run the pure engine per enrollment, and — in the *same transaction* — write
the new states and one ledger row per effect under its derived key. Local actions (set an attribute,
open a ticket) happen inside that transaction too, so they are atomic with the state change. A worker
that dies before commit leaves nothing behind; the next claim recomputes the same keys."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from app.config import Config
from app.plans import PlanBook
from app.ports import Clock, Store, Tx
from app.records import DeferralRecord, EnrollmentRecord, StateChange, ledger_key
from app.stats import Stats
from posventa.engine import Act, Send, Skip, State, advance
from posventa.facts import Facts

log = logging.getLogger("posventa.advance")
#: An enrollment that fails this many times in a row is parked as ``failed`` for a human to look at.
MAX_ATTEMPTS = 5
ENDED = ("completed", "exited", "converted")


class Advancer:
    def __init__(self, store: Store, plans: PlanBook, config: Config, clock: Clock) -> None:
        self.store = store
        self.plans = plans
        self.config = config
        self.clock = clock

    def count_due(self, now: datetime, journey: str | None = None) -> int:
        """How many enrollments a sweep at ``now`` will advance (for the progress artifact)."""
        with self.store.read() as tx:
            return tx.enrollments.count_due(now, journey)

    def run(
        self,
        now: datetime | None = None,
        limit: int | None = None,
        journey: str | None = None,
        customer: str | None = None,
        force: bool = False,
    ) -> Stats:
        """Claim one batch of due enrollments and advance each through the engine.

        ``force`` ignores ``next_due_at`` (the per-customer flow: "advance this customer now")."""
        now = now or self.clock()
        stats = Stats()
        with self.store.begin() as tx:
            rows = tx.enrollments.claim_due(now, limit or self.config.batch_size, journey, customer, force)
            if not rows:
                return stats
            tx.customers.lock(sorted({e.customer_id for e in rows}))
            facts = self._facts_for(tx, rows, now)
            ledger: list[dict[str, Any]] = []
            deferrals: list[DeferralRecord] = []
            changes: list[StateChange] = []
            for e in rows:
                stats.enrollments += 1
                mine = Stats()
                try:
                    ledger_rows, change, waited = self._advance_one(tx, e, facts[e.id], now, mine)
                except Exception as exc:
                    self._failed(tx, e, exc, now, stats)
                else:
                    ledger += ledger_rows
                    changes.append(change)
                    deferrals += waited
                    stats.merge(mine)
            # The batch's writes, set-based: the new states in one statement, the ledger rows in another.
            tx.enrollments.save_states(changes)
            if ledger:
                tx.ledger.insert(ledger)
            tx.deferrals.record(deferrals)
        return stats

    def _failed(self, tx: Tx, e: EnrollmentRecord, exc: Exception, now: datetime, stats: Stats) -> None:
        """Recorded on the enrollment with back-off; the batch goes on."""
        attempts = e.attempts + 1
        error = f"{type(exc).__name__}: {exc}"[:2000]
        due: datetime | None = now + timedelta(minutes=5 * 2 ** min(attempts, 8))
        status = e.status
        if attempts >= MAX_ATTEMPTS:
            status, due = "failed", None
        tx.enrollments.record_failure(e.id, attempts, error, status, due)
        stats.add(e.journey_id, e.state.get("step") or "?", "failed")
        stats.failures.append(f"enrollment {e.id}: {error}")
        log.warning("enrollment %s failed: %s\n%s", e.id, exc, traceback.format_exc(limit=3))

    def _facts_for(self, tx: Tx, rows: Sequence[EnrollmentRecord], now: datetime) -> dict[int, Facts]:
        """Everything the batch needs, in a fixed number of queries (not one per enrollment)."""
        cids = sorted({e.customer_id for e in rows})
        customers = tx.customers.facts(cids)
        orders = tx.orders.facts([e.order_id for e in rows if e.order_id])
        events = tx.events.for_customers(cids, min(e.entered_at for e in rows), now)
        feedback = tx.feedback.for_customers(cids)
        complaints = tx.tickets.open_complaints(cids)
        suppressed = tx.suppressions.scopes([c["email"] for c in customers.values() if c.get("email")])
        orders_count = tx.orders.count_by_customer(cids)
        lookback = self._cap_lookback(tx, rows)
        promo = tx.ledger.recent_promotional(cids, now - lookback) if lookback else {}
        shared_promo = {cid: promo.get(cid, []) for cid in cids}
        out = {}
        for e in rows:
            found = customers.get(e.customer_id)
            cust: dict[str, Any] = dict(found) if found else {"id": e.customer_id}
            cust["orders_count"] = orders_count.get(e.customer_id, 0)
            email = cust.get("email")
            scopes = suppressed.get(email.strip().lower(), {}) if email else {}
            out[e.id] = Facts(
                customer=cust,
                order=orders.get(e.order_id or ""),
                events=events.get(e.customer_id, []),
                feedback=feedback.get((e.customer_id, e.order_id)) or feedback.get((e.customer_id, None)),
                open_complaint=e.customer_id in complaints,
                suppressed=scopes.get("all"),
                unsubscribed_promotional="promotional" in scopes,
                # One list per customer, shared by their enrollments in this batch: the cap counts a send
                # another enrollment of the same customer decided a moment ago.
                recent_promotional=shared_promo[e.customer_id],
                default_timezone=self.config.timezone,
            )
        return out

    def _cap_lookback(self, tx: Tx, rows: Sequence[EnrollmentRecord]) -> timedelta:
        """How far back the frequency cap must look for this batch: the longest ``per`` of the plans its
        enrollments pinned (none: no promotional history is needed)."""
        plans = {
            (e.journey_id, e.plan_version): self.plans.pinned(tx, e.journey_id, e.plan_version) for e in rows
        }
        pers = {cap.per_s for plan in plans.values() if (cap := plan.policy.frequency_cap) is not None}
        return timedelta(seconds=max(pers, default=0))

    def _advance_one(
        self, tx: Tx, e: EnrollmentRecord, facts: Facts, now: datetime, stats: Stats
    ) -> tuple[list[dict[str, Any]], StateChange, list[DeferralRecord]]:
        """Advance one enrollment; return its ledger rows, its new state (both written with the rest of
        the batch) and the messages that wait (the deferrals table: one row per message and reason, however
        many sweeps it waits). The engine is pure, so nothing is written unless it succeeds; local actions
        (rare) get a savepoint so a failing one rolls back alone."""
        plan = self.plans.pinned(tx, e.journey_id, e.plan_version)
        before = State.from_json(e.state)
        adv = advance(before, plan, now, facts)
        if before.step:
            stats.add(e.journey_id, before.step, "due")
        ledger: list[dict[str, Any]] = []
        local_actions: list[Act] = []
        for eff in adv.effects:
            row: dict[str, Any] = {
                "key": ledger_key(e.id, eff.key),
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
                        # what the template reads: event, trigger_event, variant, visit(s), item
                        **eff.context,
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
                if eff.action == "webhook":  # delivered like a message, outside this transaction
                    row["status"] = "pending"
                else:
                    local_actions.append(eff)
                    row.update(status="sent", sent_at=now)
                    stats.add(e.journey_id, eff.step, "sent")
            ledger.append(row)
        waited = []
        for deferral in adv.deferrals:
            stats.add_deferral(e.journey_id, deferral)
            waited.append(
                DeferralRecord(
                    e.id,
                    e.journey_id,
                    deferral.step,
                    deferral.occurrence,
                    deferral.reason.value,
                    now,
                    deferral.until,
                )
            )
        if local_actions:
            with tx.savepoint():
                for act in local_actions:
                    self._local_action(tx, e, act)
        ended = now if adv.status in ENDED else None
        return ledger, StateChange(e.id, adv.state.to_json(), adv.status, adv.next_due_at, ended), waited

    def _local_action(self, tx: Tx, e: EnrollmentRecord, act: Act) -> None:
        if act.action == "set_attribute":
            tx.customers.merge_attributes(e.customer_id, act.params)
        elif act.action == "open_ticket":
            p = act.params
            tx.tickets.open(
                f"pv-{e.id}-{act.step}-{act.occurrence}",
                e.customer_id,
                e.order_id,
                p.get("subject"),
                p.get("category", "complaint"),
                "journey",
            )

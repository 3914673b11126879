"""Rows for hand-computed report fixtures, inserted as they are (exact instants, explicit ids), so each
expected number in a test can be worked out from the rows above it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from app.records import DeferralRecord, ledger_key
from infra.db import models as m
from infra.db.store import SqlTx
from infra.db.store.provider_events import note_evidence
from posventa.plan import JourneyPlan

ROOT = Path(__file__).resolve().parents[2]
#: A Monday at 09:00 UTC: ISO week 2026-W10.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def at(days: float = 0, hours: float = 0, seconds: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours, seconds=seconds)


class World:
    """A session plus the plans it has stored; ``s.commit()`` is the caller's."""

    def __init__(self, s: Session, plans: dict[str, JourneyPlan]) -> None:
        self.s = s
        self.plans = plans
        self.versions: dict[str, str] = {}

    def customer(self, cid: str, locale: str = "es") -> str:
        if self.s.get(m.Customer, cid) is None:
            self.s.execute(insert(m.Customer).values(id=cid, email=f"{cid}@example.com", locale=locale))
        return cid

    def order(
        self,
        oid: str,
        cid: str,
        placed_at: datetime,
        total: str | None = None,
        *,
        status: str = "placed",
        promised: date | None = None,
        delivered_at: datetime | None = None,
        items: list[dict[str, Any]] | None = None,
    ) -> str:
        self.customer(cid)
        self.s.execute(
            insert(m.Order).values(
                id=oid,
                customer_id=cid,
                placed_at=placed_at,
                status=status,
                total=None if total is None else Decimal(total),
                currency="EUR",
                promised_delivery_date=promised,
                delivered_at=delivered_at,
                items=items or [],
            )
        )
        return oid

    def plan(self, journey: str) -> str:
        if journey not in self.versions:
            plan = self.plans[journey]
            SqlTx(self.s).plans.save(plan.id, plan.version, plan.to_json())
            self.versions[journey] = plan.version
        return self.versions[journey]

    def enrollment(
        self,
        eid: int,
        cid: str,
        entered_at: datetime,
        *,
        journey: str = "post_purchase",
        order_id: str | None = None,
        status: str = "active",
        variant: str | None = None,
        step: str | None = None,
        ended_at: datetime | None = None,
    ) -> int:
        self.customer(cid)
        state = {"step": step, "status": status, "entered_at": entered_at.isoformat(), "variant": variant}
        self.s.execute(
            insert(m.Enrollment).values(
                id=eid,
                journey_id=journey,
                plan_version=self.plan(journey),
                customer_id=cid,
                order_id=order_id,
                entry_key=f"e{eid}",
                status=status,
                state=state,
                entered_at=entered_at,
                ended_at=ended_at,
            )
        )
        return eid

    def ledger(
        self,
        eid: int,
        step: str,
        created_at: datetime,
        *,
        occurrence: int = 0,
        status: str = "sent",
        kind: str = "message",
        variant: str | None = None,
    ) -> str:
        e = self.s.get(m.Enrollment, eid)
        assert e is not None
        key = ledger_key(eid, f"{step}:{occurrence}")
        self.s.execute(
            insert(m.LedgerEntry).values(
                key=key,
                enrollment_id=eid,
                journey_id=e.journey_id,
                step_id=step,
                occurrence=occurrence,
                kind=kind,
                channel="email" if kind == "message" else None,
                category="transactional" if kind == "message" else None,
                customer_id=e.customer_id,
                status=status,
                payload={"variant": variant, "order_id": e.order_id},
                created_at=created_at,
                updated_at=created_at,
            )
        )
        return key

    def deferral(
        self,
        eid: int,
        step: str,
        reason: str,
        *ticks: datetime,
        occurrence: int = 0,
    ) -> None:
        """A message that waited in each sweep of ``ticks``, recorded as the advance records it."""
        e = self.s.get(m.Enrollment, eid)
        assert e is not None
        tx = SqlTx(self.s)
        for tick in ticks:
            tx.deferrals.record(
                [DeferralRecord(eid, e.journey_id, step, occurrence, reason, tick, tick + HOUR)]
            )

    def webhook(self, key: str | None, event: str, sg_id: str, occurred_at: datetime = T0) -> None:
        self.s.execute(
            insert(m.WebhookEvent).values(
                sg_event_id=sg_id, event=event, ledger_key=key, email="x@example.com", occurred_at=occurred_at
            )
        )
        note_evidence(self.s, key, event)  # what ProviderEvents.record does after its insert

    def answer(
        self,
        cid: str,
        oid: str | None,
        score: int,
        created_at: datetime,
        *,
        comment: str | None = None,
        via: str | None = None,
    ) -> None:
        """An NPS answer; ``via``: the ledger key of the survey email it was given through."""
        self.customer(cid)
        self.s.execute(
            insert(m.FeedbackResponse).values(
                customer_id=cid,
                order_id=oid,
                survey="nps",
                score=score,
                comment=comment,
                created_at=created_at,
                updated_at=created_at,
            )
        )
        if via is not None:
            self.event(
                f"survey:{via}", "feedback.submitted", cid, created_at, order_id=oid, data={"score": score}
            )

    def event(
        self,
        eid: str,
        type_: str,
        cid: str,
        occurred_at: datetime,
        *,
        order_id: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> None:
        self.s.execute(
            insert(m.StoredEvent).values(
                id=eid,
                type=type_,
                customer_id=cid,
                order_id=order_id,
                occurred_at=occurred_at,
                source="api",
                data=data or {},
            )
        )

    def ticket(
        self,
        tid: str,
        cid: str,
        opened_at: datetime,
        resolved_at: datetime | None = None,
        category: str = "complaint",
    ) -> None:
        self.s.execute(
            insert(m.SupportTicket).values(
                id=tid,
                customer_id=cid,
                category=category,
                status="resolved" if resolved_at else "open",
                source="journey",
                opened_at=opened_at,
                resolved_at=resolved_at,
            )
        )

    def referral_code(
        self, code: str, cid: str, created_at: datetime, journey: str | None = "post_purchase"
    ) -> None:
        self.customer(cid)
        self.s.execute(
            insert(m.ReferralCode).values(
                code=code, customer_id=cid, journey_id=journey, created_at=created_at
            )
        )

    def referral_order(
        self, code: str, oid: str, referred: str, total: str, *, status: str = "placed"
    ) -> None:
        self.order(oid, referred, T0, total, status=status)
        self.s.execute(
            insert(m.ReferralConversion).values(code=code, order_id=oid, referred_customer_id=referred)
        )


def sample_world(w: World) -> None:
    """A little of everything, for the renderers: two journeys, a split, answers and deliveries over two
    weeks, a referral, tickets."""
    w.customer("ana", "es")
    w.customer("bob", "en")
    for i, (cid, variant, status) in enumerate(
        [
            ("ana", "plain", "converted"),
            ("bob", "holdout", "exited"),
            ("cy", "incentive", "waiting"),
            ("di", None, "active"),
        ],
        start=1,
    ):
        oid = f"order-{cid}"
        w.order(
            oid,
            cid,
            T0,
            "25.00",
            status="delivered",
            promised=date(2026, 3, 4) + timedelta(days=i % 2 * 7),
            delivered_at=at(2 + i * 3, 2),
            items=[{"sku": f"SKU-{i % 2}", "name": f"Producto {i % 2}"}],
        )
        w.enrollment(
            i,
            cid,
            T0,
            order_id=oid,
            status=status,
            variant=variant,
            step="content_wait" if status in ("waiting", "active") else None,
            ended_at=at(20) if status in ("converted", "exited") else None,
        )
        thanks = w.ledger(i, "thank_you", at(hours=i))
        for j, event in enumerate(("delivered", "open", "click")[: 4 - i % 3]):
            w.webhook(thanks, event, f"sg-{i}-{j}")
        survey = w.ledger(i, "nps_survey", at(8 + i))
        w.answer(
            cid,
            oid,
            (10, 9, 6, 8)[i - 1],
            at(6 + i * 2),
            comment=("¡Genial!", None, "Tarde", None)[i - 1],
            via=survey,
        )
        if variant == "plain":
            w.deferral(i, "referral_ask", "quiet_hours", at(11, 21), at(11, 22), at(11, 23))
            w.ledger(i, "referral_ask", at(12), variant=variant)
    w.order("again-ana", "ana", at(15), "40.00")
    w.enrollment(5, "bob", at(1), journey="warranty", status="waiting", step="watch_for_claim")
    w.ledger(5, "warranty_notice", at(1, 3))
    w.referral_code("ANA12345", "ana", at(12))
    w.event("click-1", "referral.clicked", "ana", at(13))
    w.referral_order("ANA12345", "friend-order", "friend", "30.00")
    w.ticket("t1", "cy", at(9), at(9, 5))
    w.ticket("t2", "cy", at(10))

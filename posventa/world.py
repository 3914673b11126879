"""The world a simulated customer lives in: their profile, orders and events, and the facts the runtime
would hold about them at any moment (:meth:`World.facts`), folded from the events the way the runtime's
ingest records them — the customer and orders as the shop described them, order status and dates, open
complaint tickets, survey answers, unsubscribes.

A synthetic world (:class:`World`) invents a customer and an order with a plausible future: delivery on
time, late or never, a cancellation or a return, a survey answer when asked, a second purchase. A
scripted world (:func:`scripted_world`) has only what its events say.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from posventa.engine import Facts
from posventa.events import OrderIn, parse_event

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
_RANK = {"placed": 0, "shipped": 1, "delivered": 2, "canceled": 3, "returned": 3}


@dataclass(frozen=True)
class _Moment:
    seen: list[dict[str, Any]]
    customer: dict[str, Any]
    orders: dict[str, dict[str, Any]]
    answers: list[dict[str, Any]]
    open_complaint: bool
    scopes: set[str]


class World:
    """One customer and the events their life produces. ``customer`` and ``orders`` hold what is known
    without events (a synthetic profile and order); events carrying ``customer`` / ``order`` objects (a
    script) add to them as they happen, like the runtime's ingest."""

    scripted = False

    def blank(self, customer: dict[str, Any], end: datetime, rng: random.Random) -> None:
        """No orders, no events yet."""
        self.customer, self.end, self.rng = customer, end, rng
        self.order: dict[str, Any] = {"id": None}
        self.orders: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.attribute_updates: list[tuple[datetime, Mapping[str, Any]]] = []
        self.journey_tickets: list[tuple[datetime, str, str]] = []  # (opened, id, category)
        self.reacted: set[str] = set()
        self._n = 0
        self._cached: tuple[tuple[datetime, int, int, int], _Moment] | None = None

    def __init__(self, index: int, seed: int, start: datetime, days: int) -> None:
        """A synthetic customer (index ``index`` of the population of ``seed``)."""
        rng = random.Random(f"{seed}:{index}")
        locale = rng.choice(("es", "en"))
        first = rng.choice(
            ("Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Sofía", "Diego")
            if locale == "es"
            else ("Emma", "Oliver", "Ava", "Noah", "Mia", "Liam", "Grace", "Henry")
        )
        customer: dict[str, Any] = {
            "id": f"c{index:06d}",
            "name": f"{first} {rng.choice(('García', 'López', 'Smith', 'Brown'))}",
            "email": f"cliente{index}@example.com",
            "locale": locale,
            "timezone": rng.choice(ZONES),
            "birthday": date(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
            "consent_email": True,
            "attributes": {},
        }
        self.blank(customer, start + timedelta(days=days), rng)
        placed = start + timedelta(days=rng.uniform(0, max(1.0, min(days / 4, 30))), hours=rng.uniform(0, 12))
        promised = (placed + timedelta(days=rng.randint(3, 5))).date()
        items = [dict(p, quantity=1) for p in rng.sample(PRODUCTS, rng.randint(1, 2))]
        oid = f"o{index:06d}"
        self.order = {
            "id": oid,
            "status": "placed",
            "placed_at": placed.isoformat(),
            "total": round(sum(i["price"] for i in items), 2),
            "currency": "EUR",
            "channel": rng.choice(("web", "app", "store")),
            "promised_delivery_date": promised.isoformat(),
            "items": items,
        }
        self.orders[oid] = self.order
        self.add("order.placed", placed, order_id=oid)
        fate = rng.random()
        if fate < 0.05:
            self.add(
                "order.canceled",
                placed + timedelta(hours=rng.uniform(1, 30)),
                order_id=oid,
                data={"reason": "changed_mind"},
            )
        elif fate >= 0.08:  # else lost in transit: never delivered
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

    def add(
        self,
        kind: str,
        at: datetime,
        order_id: str | None = None,
        data: Mapping[str, Any] | None = None,
        **objects: Any,
    ) -> None:
        self._n += 1
        ev = {
            "id": f"{self.customer['id']}-e{self._n}",
            "type": kind,
            "occurred_at": at,
            "order_id": order_id,
            "data": dict(data or {}),
        }
        self.events.append({**ev, **objects})
        self.events.sort(key=lambda e: e["occurred_at"])

    # -- the facts the runtime would hold at `now` -----------------------------------------------------
    def seen(self, now: datetime) -> list[dict[str, Any]]:
        return [e for e in self.events if e["occurred_at"] <= now]

    def customer_at(self, seen: Sequence[Mapping[str, Any]], now: datetime, orders: int) -> dict[str, Any]:
        c = dict(self.customer)
        attributes = dict(c.get("attributes") or {})
        updates = [(e["occurred_at"], e["customer"]) for e in seen if e.get("customer")]
        updates += [(at, {"attributes": a}) for at, a in self.attribute_updates if at <= now]
        for _, given in sorted(updates, key=lambda u: u[0]):
            attributes.update(given.get("attributes") or {})
            c.update({k: v for k, v in given.items() if v is not None and k != "attributes"})
        c["attributes"] = attributes
        c["orders_count"] = orders
        return c

    def orders_at(self, seen: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
        """Every order the runtime would know, with the status and dates its events gave it."""
        out: dict[str, dict[str, Any]] = {}
        for ev in seen:
            oid = ev.get("order_id")
            creates = bool(ev.get("order")) or ev["type"].startswith("order.")
            if not oid or (oid not in out and not creates):
                continue
            if oid not in out:
                base = self.orders.get(oid) or {"status": "placed", "items": [], "attributes": {}}
                out[oid] = {
                    **base,
                    "id": oid,
                    "placed_at": base.get("placed_at") or ev["occurred_at"].isoformat(),
                }
            out[oid].update({k: v for k, v in (ev.get("order") or {}).items() if v is not None and k != "id"})
            self._apply(out[oid], ev)
        return out

    @staticmethod
    def _apply(order: dict[str, Any], ev: Mapping[str, Any]) -> None:
        kind = ev["type"]
        if not kind.startswith("order.") or kind == "order.placed":
            return
        status = kind.split(".", 1)[1]
        at = ev["data"].get("delivered_at") if kind == "order.delivered" else None
        stamp = {"shipped": "shipped_at", "delivered": "delivered_at"}.get(status)
        if stamp and not order.get(stamp):
            order[stamp] = at or ev["occurred_at"].isoformat()
        if _RANK[status] > _RANK.get(order.get("status", "placed"), 0):
            order["status"] = status
        if kind == "order.shipped" and ev["data"].get("tracking_url"):
            order["tracking_url"] = ev["data"]["tracking_url"]

    def order_at(self, now: datetime, order_id: str | None = None) -> dict[str, Any] | None:
        return self.orders_at(self.seen(now)).get(order_id or self.order["id"])

    def _moment(self, now: datetime) -> _Moment:
        """What the runtime would hold about the customer at ``now`` (kept until the world changes)."""
        key = (now, len(self.events), len(self.attribute_updates), len(self.journey_tickets))
        if self._cached is not None and self._cached[0] == key:
            return self._cached[1]
        seen = self.seen(now)
        orders = self.orders_at(seen)
        customer = self.customer_at(seen, now, len(orders))
        resolved = {e["data"].get("ticket_id") for e in seen if e["type"] == "ticket.resolved"}
        tickets = [
            (e["data"]["ticket_id"], e["data"].get("category", "complaint"))
            for e in seen
            if e["type"] == "ticket.opened"
        ]
        tickets += [(tid, cat) for at, tid, cat in self.journey_tickets if at <= now]
        scopes = {e["data"].get("scope", "all") for e in seen if e["type"] == "customer.unsubscribed"}
        moment = _Moment(
            seen=seen,
            customer=customer,
            orders=orders,
            answers=[e for e in seen if e["type"] == "feedback.submitted"],
            open_complaint=any(cat == "complaint" and tid not in resolved for tid, cat in tickets),
            scopes=scopes if customer.get("email") else set(),
        )
        self._cached = (key, moment)
        return moment

    def facts(self, order_id: str | None, now: datetime, promo: Sequence[datetime], tz: str) -> Facts:
        m = self._moment(now)
        mine = [e for e in m.answers if e.get("order_id") == order_id and order_id] or [
            e for e in m.answers if not e.get("order_id")
        ]
        feedback = None
        if mine:
            d = mine[-1]["data"]
            feedback = {
                "score": d.get("score"),
                "comment": d.get("comment"),
                "survey": d.get("survey", "nps"),
            }
        return Facts(
            customer=m.customer,
            order=m.orders.get(order_id or ""),
            events=m.seen,
            feedback=feedback,
            open_complaint=m.open_complaint,
            suppressed="unsubscribed" if "all" in m.scopes else None,
            unsubscribed_promotional="promotional" in m.scopes,
            recent_promotional=promo,
            default_timezone=tz,
        )

    def react(self, event_type: str, now: datetime) -> None:
        """The journey waits for ``event_type``: maybe the customer (or the world) produces it."""
        key = f"{event_type}@{now.isoformat()}"
        if self.scripted or key in self.reacted or event_type not in REACTIONS:
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
        elif event_type == "return.received":  # the parcel of the latest return request
            asked = [e for e in self.events if e["type"] == "return.requested" and e["occurred_at"] <= now]
            data = {"rma_id": asked[-1]["data"]["rma_id"] if asked else f"RMA-{self.customer['id']}"}
        self.add(event_type, at, order_id=self.order["id"], data=data)

    def ticket_opened(self, ticket_id: str, category: str, now: datetime) -> None:
        self.journey_tickets.append((now, ticket_id, category))
        if not self.scripted:  # support resolves what a journey opens, after a few days
            self.add(
                "ticket.resolved", now + timedelta(days=self.rng.uniform(2, 6)), data={"ticket_id": ticket_id}
            )


def _described(order: OrderIn) -> dict[str, Any]:
    """An order as the shop described it, stored the way the runtime stores it (the fields sent)."""
    out: dict[str, Any] = {}
    for name in order.model_fields_set - {"id"}:
        value = getattr(order, name)
        if name == "items":
            value = [item.model_dump(mode="json", exclude_none=True) for item in order.items]
        elif name == "currency" and value:
            value = value.upper()
        if value is not None:
            out[name] = value
    return out


def scripted_world(cid: str, events: Sequence[Mapping[str, Any]], start: datetime, days: int) -> World:
    """A customer who has only what their events (API events, as :func:`posventa.simulate.script_events`
    makes them) say; nothing is invented, and nobody reacts to the journey."""
    w = World.__new__(World)  # not the synthetic constructor: nothing is invented
    w.blank({"id": cid, "attributes": {}}, start + timedelta(days=days), random.Random(cid))
    w.scripted = True
    for raw in events:
        ev = parse_event(raw)
        objects: dict[str, Any] = {}
        if ev.customer is not None:
            objects["customer"] = ev.customer.model_dump(mode="json", exclude_unset=True)
        if ev.order is not None:
            objects["order"] = _described(ev.order)
        w.events.append({**ev.fact(), "occurred_at": ev.occurred_at.astimezone(UTC), **objects})
    w.order = {"id": next((e["order_id"] for e in w.events if e.get("order_id")), None)}
    return w

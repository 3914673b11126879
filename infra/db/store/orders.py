"""Orders: upserts from events, guarded status moves, and facts for the engine and templates."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update

from app.records import Fact
from infra.db.models import ORDER_STATUSES, Order
from infra.db.store._base import (
    Repo,
    Upsert,
    aware,
    insert_or_update,
    insert_or_update_many,
    one_of,
    rowcount,
)
from infra.db.store.customers import Customers
from posventa.events import OrderIn

#: Order statuses only advance (events can arrive out of order: a late "shipped" after "delivered" only
#: fills in ``shipped_at``).
_ORDER_RANK = {"placed": 0, "shipped": 1, "delivered": 2, "canceled": 3, "returned": 3}


#: The columns a fact reads: selected as rows by the batch readers (no ORM objects to build and track).
_FACT = (
    Order.id,
    Order.status,
    Order.total,
    Order.currency,
    Order.channel,
    Order.placed_at,
    Order.promised_delivery_date,
    Order.shipped_at,
    Order.delivered_at,
    Order.items,
    Order.referral_code,
    Order.tracking_url,
    Order.attributes,
)


def order_fact(o: Any) -> Fact:
    """``order.*`` as conditions and templates read it (before the engine derives lateness and dates),
    from an :class:`Order` or a row of :data:`_FACT`."""

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


def _upsert_row(customer_id: str, order: OrderIn, placed_at: datetime) -> Upsert:
    """(first-sighting values, fields the shop sent, attributes) of an order upsert."""
    aware(placed_at, "placed_at")
    given: dict[str, Any] = {}
    for name in order.model_fields_set - {"id"}:
        value = getattr(order, name)
        if value is None:
            continue
        if name == "items":
            value = [item.model_dump(mode="json", exclude_none=True) for item in order.items]
        elif name == "total":
            value = Decimal(str(value)).quantize(Decimal("0.01"))
        elif name == "currency":
            value = value.upper()
        given[name] = value
    attributes = dict(given.pop("attributes", {}))
    return {"id": order.id, "customer_id": customer_id, "placed_at": placed_at}, given, attributes


class Orders(Repo):
    def upsert(
        self, customer_id: str, order: OrderIn, placed_at: datetime, *, customer_exists: bool = False
    ) -> Fact:
        """Create or update an order (creating a bare customer row if needed, unless the caller knows it
        exists); returns it as stored now. ``placed_at`` and the owning customer are kept from the first
        time the order was seen; other fields the shop sent are updated."""
        first, given, attributes = _upsert_row(customer_id, order, placed_at)
        if not customer_exists:
            Customers(self.s).ensure(customer_id)
        return order_fact(insert_or_update(self, Order, order.id, first, given, attributes))

    def upsert_many(self, orders: Sequence[tuple[str, OrderIn, datetime]]) -> dict[str, Fact]:
        """:meth:`upsert` of orders with distinct ids, given as (customer id, order, placed at), whose
        customers exist; one statement per set of fields sent. Returns them by id as stored now."""
        rows = [_upsert_row(customer_id, order, placed_at) for customer_id, order, placed_at in orders]
        return {o.id: order_fact(o) for o in insert_or_update_many(self, Order, rows)}

    def ensure(self, order_id: str, customer_id: str, placed_at: datetime) -> None:
        """A bare order for an ``order.*`` event about an order the shop never described."""
        self.ensure_many([(order_id, customer_id, placed_at)])

    def ensure_many(self, orders: Sequence[tuple[str, str, datetime]]) -> None:
        """:meth:`ensure` of many (order id, customer id, placed at), in one statement."""
        if orders:
            stmt = self.insert_ignoring(Order, returning=("id",))  # RETURNING: one multi-row INSERT
            rows = [
                {
                    "id": order_id,
                    "customer_id": customer_id,
                    "placed_at": aware(placed_at, "placed_at"),
                    "status": "placed",
                    "items": [],
                    "attributes": {},
                }
                for order_id, customer_id, placed_at in orders
            ]
            self.s.execute(stmt, rows)

    def fact(self, order_id: str) -> Fact | None:
        o = self.s.get(Order, order_id)
        return None if o is None else order_fact(o)

    def facts(self, order_ids: Sequence[str]) -> dict[str, Fact]:
        ids = sorted({i for i in order_ids if i})
        if not ids:
            return {}
        return {o.id: order_fact(o) for o in self.s.execute(select(*_FACT).where(Order.id.in_(ids)))}

    def live_facts(self) -> Iterator[tuple[str, Fact]]:
        """(customer id, fact) of every order not canceled or returned."""
        stmt = select(Order).where(Order.status.not_in(("canceled", "returned"))).order_by(Order.id)
        for o in self.s.scalars(stmt):
            yield o.customer_id, order_fact(o)

    def set_status(self, order_id: str, status: str, at: datetime) -> bool:
        """Advance an order's status and stamp ``shipped_at`` / ``delivered_at`` (first value wins).

        Returns True if the status changed. A status that would move the order backwards (a late
        "shipped" after "delivered") only fills in its timestamp. Guarded UPDATEs, so concurrent events
        cannot undo each other.
        """
        one_of(status, ORDER_STATUSES, "order status")
        aware(at, "at")
        stamp = {"shipped": Order.shipped_at, "delivered": Order.delivered_at}.get(status)
        if stamp is not None:
            self.s.execute(update(Order).where(Order.id == order_id, stamp.is_(None)).values({stamp: at}))
        behind = [name for name, rank in _ORDER_RANK.items() if rank < _ORDER_RANK[status]]
        moved = update(Order).where(Order.id == order_id, Order.status.in_(behind)).values(status=status)
        return rowcount(self.s.execute(moved)) == 1

    def set_tracking_url(self, order_id: str, url: str) -> None:
        self.s.execute(update(Order).where(Order.id == order_id).values(tracking_url=url))

    def count_by_customer(self, customer_ids: Sequence[str]) -> dict[str, int]:
        stmt = (
            select(Order.customer_id, func.count())
            .where(Order.customer_id.in_(sorted(set(customer_ids))))
            .group_by(Order.customer_id)
        )
        return {cid: int(n) for cid, n in self.s.execute(stmt)}

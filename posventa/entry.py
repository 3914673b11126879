"""Who enters a journey, and when: the rules the runtime (``app.enroll``) and the simulator share.

* An **event trigger** enrolls when its event arrives, its ``trigger.when`` holds, and the event is not
  **stale**: older than ``policy.stale_after`` (default 7 days) when it arrives. A historical import
  thus enrolls nobody in a thank-you journey for last year's orders. The enrollment starts when the
  event happened (``entered_at`` = ``occurred_at``), not when it was processed.
* A **date trigger** enrolls, in the nightly run, whoever's date (+ offset) fell in the last
  :data:`CATCH_UP` days (a missed night or two is caught up): a customer date, an order date (every
  order not canceled or returned), or an item date (every item of such an order: one entry per item).
  The journey starts on the day the date fell due (:func:`starts_at`), not on the night it was found.
  A segment enrolls, in the nightly run, whoever is in it; the journey starts then.
* The **entry rule** becomes a key, unique per journey: a second entry with the same key is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from posventa.errors import PosventaError
from posventa.expressions import compile_condition
from posventa.facts import derive_order, order_items
from posventa.plan import JourneyPlan

#: Date triggers look back this far, so a missed nightly run (or two) still enrolls its customers.
CATCH_UP = timedelta(days=3)
#: A customer's entries so far: when they last entered the journey, and how many times.
History = Callable[[], tuple[datetime | None, int]]


def is_stale(plan: JourneyPlan, occurred_at: datetime, now: datetime) -> bool:
    """Whether an event is too old, when it arrives, to enroll anyone in this journey."""
    limit = plan.policy.stale_after_s
    return limit is not None and now - occurred_at > timedelta(seconds=limit)


def trigger_context(
    plan: JourneyPlan,
    customer: Mapping[str, Any],
    order: Mapping[str, Any] | None,
    event: Mapping[str, Any] | None,
    item: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What ``trigger.when`` and ``trigger.segment`` read: the triggering event is ``event`` and
    ``trigger_event``; nothing has happened in the journey yet."""
    return {
        "customer": customer,
        "order": derive_order(order) or {},
        "event": dict(event or {}),
        "trigger_event": dict(event or {}),
        "item": dict(item or {}),
        "feedback": {},
        "journey": {"id": plan.id, "visits": {sid: 0 for sid in plan.order}},
    }


def admits(condition: str | None, context: Mapping[str, Any]) -> bool:
    """A trigger condition; one that cannot be evaluated for this customer does not admit them."""
    if not condition:
        return True
    try:
        return bool(compile_condition(condition)(context))
    except PosventaError:
        return False


def needs_history(plan: JourneyPlan) -> bool:
    """Whether :func:`entry_key` reads the customer's entries so far (a per-customer rule with a cooldown)."""
    rule = plan.entry
    return rule.once_per not in ("order", "item", "occurrence") and bool(rule.cooldown_s)


def entry_key(
    plan: JourneyPlan,
    occurrence: str,
    customer_id: str,
    order_id: str | None,
    item_sku: str | None,
    history: History,
    now: datetime,
) -> str | None:
    """The entry rule as a key: once per order, item, occurrence, or customer (with a cooldown, a numbered
    key per re-entry). None: not now."""
    rule = plan.entry
    if rule.once_per == "order":
        return f"order:{order_id}" if order_id else None
    if rule.once_per == "item":
        return f"item:{order_id}:{item_sku}" if order_id and item_sku else None
    if rule.once_per == "occurrence":
        return f"occurrence:{occurrence}"
    if rule.cooldown_s:
        last, count = history()
        if last is not None and now - last < timedelta(seconds=rule.cooldown_s):
            return None
        return f"customer:{customer_id}:{count}"
    return f"customer:{customer_id}"


@dataclass(frozen=True)
class DateEntry:
    """One enrollment a date trigger asks for: the occurrence (part of the entry key), the order and item
    it is about (None for a customer date), and the day it fell due."""

    occurrence: str
    due: date
    order: Mapping[str, Any] | None = None
    item: Mapping[str, Any] | None = None


def starts_at(found: DateEntry, now: datetime) -> datetime:
    """When a date entry's journey starts: the start of the day it fell due (UTC), so a night caught up
    late does not shift the journey — its waits count from that day, and a send with ``expires_after``
    that is too late by now is skipped. Never later than ``now``."""
    return min(now, datetime.combine(found.due, time(0), UTC))


def in_window(due: date, today: date) -> bool:
    return today - CATCH_UP < due <= today


def _anniversary(d: date, year: int) -> date:
    """The anniversary of ``d`` in ``year`` (29 February → 28 February in common years)."""
    try:
        return d.replace(year=year)
    except ValueError:
        return date(year, 2, 28)


def customer_dates(plan: JourneyPlan, customer: Mapping[str, Any], today: date) -> list[DateEntry]:
    """The entries a ``customer.*`` date trigger asks for today."""
    trig = plan.trigger
    assert trig.date is not None
    raw = customer.get(trig.date.partition(".")[2])
    if not raw:
        return []
    day = date.fromisoformat(str(raw)[:10])
    offset = timedelta(seconds=trig.offset_s)
    years: tuple[int | None, ...] = (today.year - 1, today.year, today.year + 1) if trig.yearly else (None,)
    out = []
    for year in years:
        due = (day if year is None else _anniversary(day, year)) + offset
        if in_window(due, today):
            out.append(DateEntry(f"date:{customer['id']}:{due.isoformat()}", due))
    return out


def order_dates(plan: JourneyPlan, order: Mapping[str, Any], today: date) -> list[DateEntry]:
    """The entries an ``order.*`` or ``item.*`` date trigger asks for today, for one live order."""
    trig = plan.trigger
    assert trig.date is not None
    root, _, name = trig.date.partition(".")
    offset = timedelta(seconds=trig.offset_s)
    out = []
    if root == "item":
        for item in order_items(order):
            if item.get(name):
                due = date.fromisoformat(str(item[name])[:10]) + offset
                if in_window(due, today):
                    out.append(
                        DateEntry(f"date:{order['id']}:{item['sku']}:{due.isoformat()}", due, order, item)
                    )
        return out
    raw = (derive_order(order) or {}).get(name)
    if raw:
        due = date.fromisoformat(str(raw)[:10]) + offset
        if in_window(due, today):
            out.append(DateEntry(f"date:{order['id']}:{due.isoformat()}", due, order))
    return out

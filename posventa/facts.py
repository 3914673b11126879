"""What the engine may know about a customer at a moment (:class:`Facts`, gathered by the advance use case
or the simulator), and the date fields derived from an order (:func:`derive_order`) that journeys,
conditions and templates read."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from posventa.timeutil import parse_date


@dataclass(frozen=True)
class Facts:
    """What the engine may know about the customer at ``now`` (``app.advance`` or the simulator).

    ``events`` are this customer's events since the enrollment began, each a mapping with ``id``, ``type``,
    ``occurred_at`` (aware datetime), ``order_id`` and ``data``. ``recent_promotional`` are the times of
    promotional messages sent to the customer (any journey) — the frequency cap counts them.
    """

    customer: Mapping[str, Any]
    order: Mapping[str, Any] | None = None
    events: Sequence[Mapping[str, Any]] = ()
    feedback: Mapping[str, Any] | None = None
    open_complaint: bool = False
    suppressed: str | None = None
    unsubscribed_promotional: bool = False
    recent_promotional: Sequence[datetime] = ()
    default_timezone: str = "Europe/Madrid"


def _positive(value: Any) -> int | None:
    """A count of days or months, or None: shops send 0 (or nothing) for "not applicable"."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return None
    return int(value)


def _base_date(order: Mapping[str, Any]) -> date | None:
    """What warranties and run-out dates count from: the delivery date, else the order date."""
    return parse_date(order.get("delivered_at")) or parse_date(order.get("placed_at"))


def _item_dates(item: Mapping[str, Any], base: date | None) -> dict[str, str | None]:
    months, days = _positive(item.get("warranty_months")), _positive(item.get("runs_out_in_days"))
    if not (months or days):
        return {"warranty_expires_on": None, "runs_out_on": None}
    return {
        "warranty_expires_on": _add_months(base, months).isoformat() if base and months else None,
        "runs_out_on": (base + timedelta(days=days)).isoformat() if base and days else None,
    }


def order_items(order: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The order's items, one per SKU (the first line wins), each with its own ``warranty_expires_on`` and
    ``runs_out_on`` — what ``item.*`` reads in a journey a date trigger over items started."""
    if not order:
        return []
    base = _base_date(order)
    out: dict[str, dict[str, Any]] = {}
    for raw in order.get("items") or []:
        if isinstance(raw, Mapping) and raw.get("sku") and raw["sku"] not in out:
            out[raw["sku"]] = {**raw, **_item_dates(raw, base)}
    return list(out.values())


def derive_item(order: Mapping[str, Any] | None, sku: str | None) -> dict[str, Any] | None:
    """The item ``sku`` of the order, with its dates; None when the order has no such item."""
    return next((i for i in order_items(order) if i["sku"] == sku), None) if sku else None


def derive_order(order: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Add the derived date fields journeys may use: lateness, warranty expiry, run-out date."""
    if order is None:
        return None
    out = dict(order)
    promised = parse_date(order.get("promised_delivery_date"))
    delivered = parse_date(order.get("delivered_at"))
    out["days_late"] = (delivered - promised).days if promised and delivered else None
    out["delivered_late"] = bool(promised and delivered and delivered > promised)
    # The order's dates: the longest warranty, the first item to run out (an item's own: order_items).
    items = [i for i in order.get("items") or [] if isinstance(i, Mapping)]
    months = [m for i in items if (m := _positive(i.get("warranty_months")))]
    days = [d for i in items if (d := _positive(i.get("runs_out_in_days")))]
    base = delivered or parse_date(order.get("placed_at"))
    out["warranty_expires_on"] = _add_months(base, max(months)).isoformat() if base and months else None
    out["runs_out_on"] = (base + timedelta(days=min(days))).isoformat() if base and days else None
    return out


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    for day in (d.day, 30, 29, 28):
        try:
            return date(year, month, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")

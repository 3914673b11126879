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


def derive_order(order: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Add the derived date fields journeys may use: lateness, warranty expiry, run-out date."""
    if order is None:
        return None
    out = dict(order)
    promised = parse_date(order.get("promised_delivery_date"))
    delivered = parse_date(order.get("delivered_at"))
    placed = parse_date(order.get("placed_at"))
    out["days_late"] = (delivered - promised).days if promised and delivered else None
    out["delivered_late"] = bool(promised and delivered and delivered > promised)
    items = order.get("items") or []
    base = delivered or placed
    months: list[int] = [
        int(i["warranty_months"]) for i in items if isinstance(i, Mapping) and i.get("warranty_months")
    ]
    runs: list[int] = [
        int(i["runs_out_in_days"]) for i in items if isinstance(i, Mapping) and i.get("runs_out_in_days")
    ]
    out["warranty_expires_on"] = _add_months(base, max(months)).isoformat() if base and months else None
    out["runs_out_on"] = (base + timedelta(days=min(runs))).isoformat() if base and runs else None
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

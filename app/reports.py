"""Read-only reports: a customer's story for ops ("why did — or didn't — this customer get that
email?"), their timeline for the admin area, and the shop's referral figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.ports import Store
from app.records import TimelineEntry


def _iso(v: datetime | None) -> str | None:
    return v.isoformat() if v is not None else None


def customer_report(store: Store, customer_id: str) -> dict[str, Any] | None:
    """Suppressions with their reasons, open complaint, journeys and messages; None for no such customer."""
    with store.read() as tx:
        c = tx.customers.fact(customer_id)
        if c is None:
            return None
        return {
            "customer": {
                k: c[k] for k in ("id", "email", "locale", "timezone", "consent_email", "attributes")
            },
            "suppressions": [
                {
                    "email": x.email,
                    "reason": x.reason,
                    "scope": x.scope,
                    "source": x.source,
                    "detail": x.detail,
                    "since": _iso(x.created_at),
                }
                for x in tx.suppressions.for_customer(customer_id)
            ],
            "open_complaint": tx.tickets.has_open_complaint(customer_id),
            "enrollments": [
                {
                    "id": e.id,
                    "journey": e.journey_id,
                    "status": e.status,
                    "step": e.state.get("step"),
                    "reason": e.state.get("reason"),
                    "next_due_at": _iso(e.next_due_at),
                    "entered_at": _iso(e.entered_at),
                    "last_error": e.last_error,
                }
                for e in tx.enrollments.for_customer(customer_id)
            ],
            "messages": [
                {
                    "key": r.key,
                    "journey": r.journey_id,
                    "step": r.step_id,
                    "status": r.status,
                    "reason": r.reason,
                    "category": r.category,
                    "at": _iso(r.sent_at or r.updated_at),
                }
                for r in tx.ledger.for_customer(customer_id)
            ],
        }


def referral_report(store: Store, limit: int = 100) -> dict[str, Any]:
    """Referral codes, clicks and attributed orders (``order.referral_code``) per journey and referrer."""
    with store.read() as tx:
        figures = tx.referrals.figures()
    referrers: list[dict[str, Any]] = []
    journeys: dict[str, dict[str, Any]] = {}
    for code, owner, journey in figures.codes:
        n, revenue = figures.conversions_by_code.get(code, (0, 0.0))
        row: dict[str, Any] = {
            "customer_id": owner,
            "code": code,
            "journey_id": journey,
            "clicks": int(figures.clicks_by_owner.get(owner, 0)),
            "conversions": n,
            "revenue": round(revenue, 2),
        }
        referrers.append(row)
        j = journeys.setdefault(
            journey or "", {"journey_id": journey, "codes": 0, "clicks": 0, "conversions": 0, "revenue": 0.0}
        )
        j["codes"] += 1
        j["clicks"] += row["clicks"]
        j["conversions"] += n
        j["revenue"] = round(j["revenue"] + revenue, 2)
    referrers.sort(key=lambda r: (-r["conversions"], -r["clicks"], r["code"]))
    total = {k: sum(j[k] for j in journeys.values()) for k in ("codes", "clicks", "conversions")}
    total["revenue"] = round(sum(j["revenue"] for j in journeys.values()), 2)
    return {
        "total": total,
        "journeys": sorted(journeys.values(), key=lambda j: j["journey_id"] or ""),
        "referrers": referrers[:limit],
    }


def customer_timeline(store: Store, customer_id: str, limit: int = 500) -> list[TimelineEntry]:
    """Everything that happened to a customer, newest first (at most ``limit`` entries)."""
    with store.read() as tx:
        return tx.timelines.for_customer(customer_id, limit)

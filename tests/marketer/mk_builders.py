"""Builders for the marketer's tests: services from settings (as every entry point builds them), events,
journey edits, rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.services import Services
from infra.db import models as m
from infra.settings import Settings, make_settings
from infra.wiring import build_services
from posventa.plan import JourneyPlan

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Madrid: outside quiet hours
DAY = timedelta(days=1)


def settings_for(url: str, tmp: Path, journeys: Path = ROOT / "journeys", **extra: Any) -> Settings:
    return make_settings(
        database_url=url,
        journeys_dir=str(journeys),
        outbox_dir=str(tmp / "outbox"),
        secret_key="k" * 40,
        public_base_url="https://pv.example",
        **extra,
    )


def services(settings: Settings, plans: dict[str, JourneyPlan] | None = None, **kw: Any) -> Services:
    """The services as a worker builds them: from the journey files (drafts) unless ``plans`` is given."""
    return build_services(settings, plans=plans, **kw)


def placed(cid: str, at: datetime = T0, *, locale: str = "es", oid: str | None = None) -> dict[str, Any]:
    return {
        "id": f"placed-{oid or cid}",
        "type": "order.placed",
        "occurred_at": at.isoformat(),
        "customer": {"id": cid, "email": f"{cid}@example.com", "name": f"Cliente {cid}", "locale": locale},
        "order": {
            "id": oid or f"o-{cid}",
            "total": 30,
            "currency": "EUR",
            "promised_delivery_date": (at + 4 * DAY).date().isoformat(),
            "items": [{"sku": "CEP-01", "name": "Cepillo", "quantity": 1, "price": 30}],
        },
    }


def delivered(cid: str, at: datetime, oid: str | None = None) -> dict[str, Any]:
    return {
        "id": f"delivered-{oid or cid}",
        "type": "order.delivered",
        "occurred_at": at.isoformat(),
        "customer_id": cid,
        "order_id": oid or f"o-{cid}",
    }


def edit(path: Path, old: str, new: str) -> None:
    """Replace ``old`` (which must be there) in a journey or template file."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new), encoding="utf-8")


def rows(svc: Services, model: Any, **where: Any) -> list[Any]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        q = select(model)
        for k, v in where.items():
            q = q.where(getattr(model, k) == v)
        return list(s.scalars(q.order_by(*model.__table__.primary_key.columns)))


def enrollment(svc: Services, customer: str, journey: str = "post_purchase") -> m.Enrollment:
    [e] = rows(svc, m.Enrollment, customer_id=customer, journey_id=journey)
    return e


def sends(svc: Services, customer: str) -> list[tuple[str, str]]:
    """The customer's ledger rows as (key, status), in order."""
    return [(r.key, r.status) for r in rows(svc, m.LedgerEntry, customer_id=customer)]

"""Shared helpers for the runtime tests (plain module: conftest fixtures import it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.ports import HttpClient
from app.services import Services
from infra.email.fake_sendgrid import FakeSendGrid
from infra.settings import make_settings
from infra.wiring import build_services

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Madrid: outside quiet hours


def make_services(
    url: str,
    fake: FakeSendGrid,
    plans: dict[str, Any],
    tmp: Path,
    http: HttpClient | None = None,
    **extra: Any,
) -> Services:
    """Services wired from settings as a deployment is (``infra.wiring``): the real SendGrid client
    against the loopback fake, so what the settings say is what reaches the wire."""
    values: dict[str, Any] = {
        "sendgrid_api_key": "SG.test",
        "sendgrid_timeout": 2.0,
        "sendgrid_concurrency": 1,  # one request at a time, as the sender's own default
        **extra,
    }
    settings = make_settings(
        database_url=url,
        journeys_dir=str(ROOT / "journeys"),
        outbox_dir=str(tmp / "outbox"),
        secret_key="k" * 40,
        sendgrid_host=fake.url,
        **values,
    )
    return build_services(settings, plans=plans, http=http)


def order_placed(
    i: int, at: datetime = T0, *, email: str | None = None, locale: str = "es", tz: str = "Europe/Madrid"
) -> dict[str, Any]:
    return {
        "id": f"evt-placed-{i}",
        "type": "order.placed",
        "occurred_at": at.isoformat(),
        "customer": {
            "id": f"c{i}",
            "email": email or f"cliente{i}@example.com",
            "name": f"Cliente {i}",
            "locale": locale,
            "timezone": tz,
        },
        "order": {
            "id": f"o{i}",
            "total": 42.5,
            "currency": "EUR",
            "promised_delivery_date": (at + timedelta(days=4)).date().isoformat(),
            "items": [{"sku": "CEP-01", "name": "Cepillo", "quantity": 1, "price": 42.5}],
        },
    }


def event(kind: str, i: int, at: datetime, n: int = 0, **data: Any) -> dict[str, Any]:
    return {
        "id": f"evt-{kind}-{i}-{n}",
        "type": kind,
        "occurred_at": at.isoformat(),
        "customer_id": f"c{i}",
        "order_id": f"o{i}",
        "data": data,
    }

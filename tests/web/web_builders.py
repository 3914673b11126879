"""Builders shared by the web tests: events, services on the post-purchase journey, a virtual clock,
and a walk of a customer through the journey up to the NPS survey email."""

from __future__ import annotations

import html.parser
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from app.links import SURVEY, UNSUBSCRIBE
from app.services import Services
from infra.db import models as m
from infra.email.outbox import outbox_stem
from infra.settings import Settings, make_settings
from infra.wiring import build_services
from posventa import tokens
from posventa.compile import compile_file
from posventa.engine import bucket
from posventa.plan import JourneyPlan
from web.app import create_app, running_in_thread
from web.limits import Limits

REPO = Path(__file__).resolve().parents[2]
JOURNEYS = REPO / "journeys"
SECRET = "x" * 40
#: Monday 2 March 2026, 10:00 in Madrid.
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    """The app's clock: tests move it (token expiry, event times and webhook timestamps follow)."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, now: datetime) -> datetime:
        self.now = now
        return now


@lru_cache(maxsize=1)
def post_purchase() -> JourneyPlan:
    return compile_file(JOURNEYS / "post_purchase.yaml")


def web_settings(
    database_url: str, outbox: Path, public_base_url: str, webhook_key: str | None = None
) -> Settings:
    return make_settings(
        database_url=database_url,
        journeys_dir=str(JOURNEYS),
        outbox_dir=str(outbox),
        secret_key=SECRET,
        public_base_url=public_base_url,
        sendgrid_webhook_public_key=webhook_key,
        email_from_name="Tienda Olivo",
    )


def make_services(settings: Settings) -> Services:
    """Services on ``post_purchase`` only: journeys being written elsewhere must not break these tests."""
    return build_services(settings, plans={"post_purchase": post_purchase()})


def promoter_id(prefix: str = "cust") -> str:
    """A customer id whose referral split bucket is not the 10% holdout."""
    n = 0
    while bucket("post_purchase", f"{prefix}-{n}", "referral_split") < 10:
        n += 1
    return f"{prefix}-{n}"


def ev(event_id: str, type_: str, customer_id: str = "c1", at: datetime = T0, **extra: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "occurred_at": at.isoformat(),
        "customer_id": customer_id,
    }
    raw.update(extra)
    return raw


def order_placed(
    customer_id: str,
    order_id: str,
    at: datetime = T0,
    *,
    email: str | None = None,
    locale: str = "es",
    **order: Any,
) -> dict[str, Any]:
    return {
        "id": f"placed-{order_id}",
        "type": "order.placed",
        "occurred_at": at.isoformat(),
        "customer": {
            "id": customer_id,
            "email": email or f"{customer_id}@example.com",
            "name": "Ana García",
            "locale": locale,
        },
        "order": {
            "id": order_id,
            "total": 59.9,
            "currency": "EUR",
            "promised_delivery_date": "2026-03-05",
            "items": [{"sku": "TB-01", "name": "Cepillo", "quantity": 1, "price": 59.9}],
            **order,
        },
    }


def survey_token(
    customer_id: str = "c1",
    score: int = 9,
    *,
    key: str = "1:nps_survey:0",
    order_id: str | None = "o1",
    now: datetime = T0,
    ttl: timedelta = timedelta(days=30),
    secret: str = SECRET,
) -> str:
    return tokens.sign(
        {"k": key, "c": customer_id, "o": order_id, "s": score, "j": "post_purchase"},
        secret,
        purpose=SURVEY,
        now=now,
        ttl=ttl,
    )


def unsubscribe_token(
    customer_id: str = "c1",
    email: str = "c1@example.com",
    *,
    key: str = "1:referral_ask:0",
    now: datetime = T0,
    ttl: timedelta = timedelta(days=400),
    secret: str = SECRET,
) -> str:
    return tokens.sign(
        {"c": customer_id, "e": email, "j": "post_purchase", "k": key},
        secret,
        purpose=UNSUBSCRIBE,
        now=now,
        ttl=ttl,
    )


@dataclass
class Journey:
    """A customer walked through ``post_purchase`` up to the NPS survey email."""

    customer_id: str
    order_id: str
    enrollment_id: int
    survey_key: str
    survey_html: Path
    survey_at: datetime


def ledger(svc: Services, customer_id: str) -> dict[str, tuple[str, str | None]]:
    """step id → (status, reason) of a customer's ledger rows."""
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        rows = s.execute(
            select(m.LedgerEntry.step_id, m.LedgerEntry.status, m.LedgerEntry.reason).where(
                m.LedgerEntry.customer_id == customer_id
            )
        ).all()
    return {step: (status, reason) for step, status, reason in rows}


def walk_to_survey(
    svc: Services, customer_id: str, order_id: str = "o1", *, email: str | None = None
) -> Journey:
    """order.placed → delivered → sweeps on a virtual clock until ``nps_survey`` is sent to the outbox."""
    report = svc.ingest.apply([order_placed(customer_id, order_id, T0, email=email)], "api", T0)
    assert report.accepted == 1, report
    svc.sweep(T0)
    delivered = T0 + timedelta(days=2)
    svc.ingest.apply(
        [ev(f"delivered-{order_id}", "order.delivered", customer_id, delivered, order_id=order_id)],
        "api",
        delivered,
    )
    at = T0
    for _ in range(80):
        at += timedelta(hours=6)
        svc.sweep(at)
        if ledger(svc, customer_id).get("nps_survey", ("",))[0] == "sent":
            break
    else:
        raise AssertionError(f"nps_survey never sent: {ledger(svc, customer_id)}")
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        row = s.scalars(
            select(m.LedgerEntry).where(
                m.LedgerEntry.customer_id == customer_id, m.LedgerEntry.step_id == "nps_survey"
            )
        ).one()
        key, enrollment_id = row.key, row.enrollment_id
    html = svc.deliver.sender.directory / f"{outbox_stem(key)}.html"  # type: ignore[attr-defined]
    assert html.exists(), f"no outbox file for {key}"
    return Journey(customer_id, order_id, enrollment_id, key, html, at)


class _Links(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[dict[str, str | None], str]] = []
        self._open: dict[str, str | None] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            self.links.append((self._open, "".join(self._text).strip()))
            self._open = None


def links_in(html_text: str) -> list[tuple[str, str]]:
    """(href, text) of every link of an HTML document."""
    parser = _Links()
    parser.feed(html_text)
    return [(attrs.get("href") or "", text) for attrs, text in parser.links]


def survey_link(html_text: str, score: int) -> str:
    """The survey email's link for ``score`` (the button whose text is the number)."""
    found = [href for href, text in links_in(html_text) if re.search(r"/s/", href) and text == str(score)]
    assert len(found) == 1, f"expected one survey link for {score}, found {found}"
    return found[0]


def wait_until_serving(proc: subprocess.Popen[Any], base: str, output: Callable[[], str]) -> None:
    """Wait (at most a minute) until ``posventa serve`` answers at ``base``; ``output`` says why it died."""
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, output()
        try:
            if httpx.get(f"{base}/openapi.json", timeout=1, trust_env=False).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.1)


# --- the app served for real (uvicorn in a thread, on loopback) ---------------------------------------
@dataclass
class Live:
    base: str
    svc: Services
    clock: Clock

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client of the live server (cookies kept; no proxy from the environment)."""
        return httpx.Client(base_url=self.base, trust_env=False, timeout=60, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_live(db_url: str, tmp_path: Path, limits: Limits | None = None) -> Iterator[Live]:
    """The app on a free loopback port, in a thread; its email links point at it. uvicorn trusts
    ``X-Forwarded-*`` from 127.0.0.1 (as behind a proxy)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = web_settings(db_url, tmp_path / "outbox", base)
    svc = make_services(settings)
    clock = Clock(T0)
    app = create_app(svc, settings=settings, clock=clock, limits=limits)
    with running_in_thread(app, port, name="uvicorn-test", start_timeout=15):
        yield Live(base, svc, clock)
        svc.store.dispose()  # type: ignore[attr-defined]

"""Builders for the use-case tests: services on explicit ports, journeys from text, events, ledger rows,
and a loopback HTTP endpoint standing in for a shop's CRM (journey webhooks)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.config import Config
from app.services import Services
from infra.db import models as m
from infra.db.session import make_engine, session_factory
from infra.db.store import SqlStore
from infra.email.outbox import FileOutboxSender
from infra.http import HttpxClient
from posventa.compile import compile_checked
from posventa.plan import JourneyPlan
from posventa.templates import Templates
from posventa.validate import check_text

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "journeys" / "templates"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Madrid: outside quiet hours
SECRET = "s" * 40


def make_services(
    url: str,
    tmp: Path,
    plans: Mapping[str, JourneyPlan],
    *,
    clock: Callable[[], datetime] = lambda: T0,
    webhook_timeout: float = 5.0,
    **config: Any,
) -> Services:
    """The use cases wired by hand on real adapters (no settings): the store on ``url``, the file outbox
    in ``tmp/outbox``, httpx for webhooks."""
    cfg = Config(secret_key=SECRET, public_base_url="https://pv.example", **config)
    svc = Services.build(
        cfg,
        SqlStore(session_factory(make_engine(url))),
        plans,
        FileOutboxSender(tmp / "outbox", from_email=cfg.email_from),
        HttpxClient(timeout=webhook_timeout),
        Templates(TEMPLATES),
        clock,
    )
    svc.plans.publish()
    return svc


def journey(text: str, name: str = "test_journey") -> JourneyPlan:
    return compile_checked(check_text(text, f"journeys/{name}.yaml", TEMPLATES))


def order_placed(
    cid: str, oid: str | None = None, at: datetime = T0, *, tz: str = "Europe/Madrid", **customer: Any
) -> dict[str, Any]:
    return {
        "id": f"placed-{oid or cid}",
        "type": "order.placed",
        "occurred_at": at.isoformat(),
        "customer": {
            "id": cid,
            "email": f"{cid}@example.com",
            "name": f"Cliente {cid}",
            "locale": "es",
            "timezone": tz,
            **customer,
        },
        "order": {
            "id": oid or f"o-{cid}",
            "total": 30,
            "currency": "EUR",
            "promised_delivery_date": (at + timedelta(days=4)).date().isoformat(),
            "items": [{"sku": "CEP-01", "name": "Cepillo", "quantity": 1, "price": 30}],
        },
    }


def ledger(svc: Services, **where: Any) -> list[m.LedgerEntry]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        q = select(m.LedgerEntry).order_by(m.LedgerEntry.id)
        for k, v in where.items():
            q = q.where(getattr(m.LedgerEntry, k) == v)
        return list(s.scalars(q))


def next_due(svc: Services) -> datetime | None:
    """When the earliest live enrollment falls due (a virtual clock jumps there)."""
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        due = s.scalar(
            select(func.min(m.Enrollment.next_due_at)).where(
                m.Enrollment.status.in_(("active", "waiting", "held"))
            )
        )
    return None if due is None else due if due.tzinfo else due.replace(tzinfo=UTC)


class Endpoint:
    """A loopback HTTP endpoint that records each POST (headers and JSON body) and answers as told:
    ``status``; ``drop`` (close without answering: the client cannot know whether it arrived); ``hold``
    (wait until :meth:`release`); ``together`` (wait until that many requests are in flight at once —
    a 500 if they never are)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.status = 200
        self.drop = False
        self.together = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._lock = threading.Lock()
        self._barrier: threading.Barrier | None = None
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                endpoint._handle(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def hold(self) -> None:
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers.get("Content-Length") or 0)) or b"null")
        with self._lock:
            self.requests.append(({k.lower(): v for k, v in h.headers.items()}, body))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            if self.together and self._barrier is None:
                self._barrier = threading.Barrier(self.together, timeout=5)
        self.arrived.set()
        status = self.status
        try:
            self._released.wait(30)
            if self._barrier is not None:
                try:
                    self._barrier.wait()
                except threading.BrokenBarrierError:
                    status = 500
            if self.drop:
                h.close_connection = True
                return
            h.send_response(status)
            h.send_header("Content-Length", "0")
            h.end_headers()
        finally:
            with self._lock:
                self.in_flight -= 1

    def __enter__(self) -> Endpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        self._server.shutdown()
        self._server.server_close()

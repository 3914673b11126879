"""The demo's SendGrid Event Webhook: what SendGrid would report about the demo's emails — delivered,
opened, clicked, a few bounces — signed as SendGrid signs them and POSTed over HTTP to the real webhook
endpoint (``web.app``'s ``POST /webhooks/sendgrid``, served by uvicorn on a loopback port), so they go
through signature verification, parsing and ``app.webhook_events`` exactly as production events do:
the report's delivered / opened / clicked come from there, linked to ledger rows by ``posventa_key``.

Who opens what is decided per message by a generator seeded with the demo's seed and the ledger key
(reproducible runs); events are posted when the demo's virtual clock reaches them, in batches of up to
500 as SendGrid sends them. A click on a referral ask may bring a friend: they open the referral link on
the same server (``GET /r/<code>``, which counts the click for the referrer) and some of them order with
the code (:meth:`DemoSendGrid.take_orders`: the demo ingests those orders). The signing key is made for
the run (``FakeSendGrid``'s, never started) and its public half is the demo's
``POSVENTA_SENDGRID_WEBHOOK_PUBLIC_KEY``.
"""

from __future__ import annotations

import random
import socket
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from app.records import LedgerRecord
from infra.email.fake_sendgrid import FakeSendGrid
from posventa.errors import PosventaError

#: Shares of messages: bounced; of those delivered, opened; of those opened, clicked.
BOUNCE, OPEN, CLICK = 0.02, 0.55, 0.35
BATCH = 500  # SendGrid posts up to about this many events per request
#: Of the clicked referral asks: a friend opens the link; of those friends, one orders with the code.
VISIT, ORDER = 0.6, 0.4


class DemoSendGrid:
    """``observe`` the messages the demo sent; ``post_due(now)`` posts the events whose time has come."""

    def __init__(self, seed: int, shop_url: str) -> None:
        self.seed = seed
        self.shop_url = shop_url.rstrip("/")
        self._signer = FakeSendGrid()  # only its webhook key: the server is never started
        self.public_key = self._signer.webhook_public_key_b64
        self.now: datetime | None = None
        self.url: str | None = None
        self._services: Any = None
        self._visits: list[tuple[datetime, str, str]] = []  # (when, referrer, journey)
        self._orders: list[tuple[datetime, dict[str, Any]]] = []
        self.emails: dict[str, str] = {}  # customer id → address
        self._pending: list[tuple[datetime, dict[str, Any]]] = []
        self._seen: set[str] = set()
        self.posted: Counter[str] = Counter()  # events posted by kind
        self.results: Counter[str] = Counter()  # the endpoint's answers: applied, duplicates, ignored, failed
        self.friends: Counter[str] = Counter()  # referral links opened ("visits"), orders with a code

    def clock(self) -> datetime:
        """The web app's clock: the demo's virtual time."""
        if self.now is None:
            raise PosventaError("the demo's SendGrid has no time yet")
        return self.now

    @contextmanager
    def serving(self, services: Any, settings: Any) -> Iterator[DemoSendGrid]:
        """The web app on a free loopback port (uvicorn in a thread) for the block."""
        from web.app import create_app, running_in_thread

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        app = create_app(services, settings=settings, clock=self.clock)
        try:
            with running_in_thread(app, port, name="demo-webhook", start_timeout=30):
                self.url = f"http://127.0.0.1:{port}/webhooks/sendgrid"
                self._services = services
                try:
                    yield self
                finally:
                    self.url = self._services = None
        except TimeoutError as exc:
            raise PosventaError("the demo's web app did not start") from exc

    def observe(self, sent: Iterable[LedgerRecord]) -> None:
        """Decide what SendGrid will report about each message not seen before."""
        for row in sent:
            if row.key in self._seen or row.sent_at is None or row.kind != "message":
                continue
            self._seen.add(row.key)
            email = self.emails.get(row.customer_id)
            if email is None:
                continue
            rng = random.Random(f"{self.seed}:{row.key}")
            at = row.sent_at + timedelta(seconds=rng.uniform(5, 300))
            if rng.random() < BOUNCE:
                self._add(row, email, "bounce", at)
                continue
            self._add(row, email, "delivered", at)
            if rng.random() < OPEN:
                at += timedelta(minutes=rng.uniform(10, 48 * 60))
                self._add(row, email, "open", at)
                if rng.random() < CLICK:
                    at += timedelta(seconds=rng.uniform(5, 600))
                    self._add(row, email, "click", at)
                    if row.step_id.startswith("referral_ask") and rng.random() < VISIT:
                        self._visits.append(
                            (at + timedelta(hours=rng.uniform(1, 72)), row.customer_id, row.journey_id)
                        )

    def _add(self, row: LedgerRecord, email: str, kind: str, at: datetime) -> None:
        event: dict[str, Any] = {
            "email": email,
            "timestamp": int(at.timestamp()),
            "event": kind,
            "sg_event_id": f"demo-{kind}-{row.key}",
            "sg_message_id": f"demo{zlib.crc32(row.key.encode()):010d}.filter0001",
            "posventa_key": row.key,
            "category": [row.journey_id, f"{row.journey_id}:{row.step_id}"],
        }
        if kind == "click":
            event["url"] = f"{self.shop_url}/?utm_source=posventa&utm_content={row.step_id}"
        if kind == "bounce":
            event |= {"reason": "550 5.1.1 The email account does not exist.", "type": "bounce"}
        self._pending.append((at, event))

    def post_due(self, now: datetime) -> int:
        """POST every event due by ``now``, signed, in batches; returns how many were posted."""
        import httpx

        if self.url is None:
            raise PosventaError("the demo's web app is not serving")
        self.now = now
        due = sorted((e for e in self._pending if e[0] <= now), key=lambda e: e[0])
        self._pending = [e for e in self._pending if e[0] > now]
        visits = [v for v in self._visits if v[0] <= now]
        self._visits = [v for v in self._visits if v[0] > now]
        with httpx.Client(trust_env=False, timeout=60) as client:
            for at, referrer, journey in visits:
                self._friend(client, at, referrer, journey)
            for start in range(0, len(due), BATCH):
                events = [event for _, event in due[start : start + BATCH]]
                body, headers = self._signer.signed_webhook_request(events, timestamp=int(now.timestamp()))
                answer = client.post(self.url, content=body, headers=headers)
                if answer.status_code != 200:
                    raise PosventaError(
                        f"the webhook refused the demo's events: {answer.status_code} {answer.text}"
                    )
                self._count(answer.json())
                self.posted.update(e["event"] for e in events)
        return len(due)

    def _friend(self, client: Any, at: datetime, referrer: str, journey: str) -> None:
        """A friend opens the referrer's link (the real ``/r/<code>``: it counts the click, then sends them to
        the shop or, without a shop URL, shows the code); maybe orders with the code."""
        with self._services.store.begin() as tx:
            code = tx.referrals.code_for(referrer, journey)  # the code the referral ask showed
        n = self.friends["visits"]
        base = self.url.rsplit("/webhooks/", 1)[0]  # type: ignore[union-attr]
        answer = client.get(f"{base}/r/{code}", headers={"User-Agent": f"demo-friend-{n}"})
        if answer.status_code not in (200, 303):  # 303 to the shop, or 200: the page with the code
            return  # e.g. 429: the page's per-address limit (every friend comes from 127.0.0.1)
        self.friends["visits"] += 1
        rng = random.Random(f"{self.seed}:friend:{n}")
        if rng.random() >= ORDER:
            return
        self.friends["orders"] += 1
        cid, oid = f"f{n:05d}", f"fo{n:05d}"
        placed = at + timedelta(minutes=rng.uniform(5, 120))
        self.emails[cid] = f"amigo{n}@example.com"
        self._orders.append(
            (
                placed,
                {
                    "id": f"friend-order-{n}",
                    "type": "order.placed",
                    "occurred_at": placed.isoformat(),
                    "customer_id": cid,
                    "order_id": oid,
                    "data": {},
                    "customer": {"id": cid, "email": self.emails[cid], "name": f"Amigo {n}", "locale": "es"},
                    "order": {
                        "id": oid,
                        "total": 49.9,
                        "currency": "EUR",
                        "channel": "web",
                        "referral_code": code,
                        "items": [
                            {
                                "sku": "CEP-01",
                                "name": "Cepillo de dientes eléctrico",
                                "quantity": 1,
                                "price": 49.9,
                            }
                        ],
                    },
                },
            )
        )

    def take_orders(self, now: datetime) -> list[dict[str, Any]]:
        """The friends' orders placed by ``now`` (each handed out once)."""
        due = [order for at, order in self._orders if at <= now]
        self._orders = [(at, order) for at, order in self._orders if at > now]
        return due

    def _count(self, answer: Mapping[str, Any]) -> None:
        for key in ("applied", "duplicates", "ignored", "failed"):
            self.results[key] += int(answer.get(key, 0))

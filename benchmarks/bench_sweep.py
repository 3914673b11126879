"""Issue 3: nightly-sweep throughput on PostgreSQL (customer-steps per second) and peak memory.

For each N (``POSVENTA_BENCH_SIZES``, default ``10000,100000``) a fresh, migrated PostgreSQL database is
seeded with N customers, their orders and their ``order.placed`` events, and N enrollments in
``post_purchase`` at its first step ``thank_you``, due now. One customer-step = one enrollment advanced
through the thank-you send into its wait, with the message accepted by the loopback HTTP sink. Designs,
all on the same rows (the enrollments are re-created and the ledger emptied between designs):

* **real** — ``Services.sweep(now)`` (``app.services``): claims with ``FOR UPDATE SKIP LOCKED`` in
  batches, the pure engine, the ledger, then ``deliver`` through ``SendGridSender``.
* **naive** — the per-customer Prefect design: one task run per customer (``advance.run(customer=…,
  force=True)`` + ``deliver.run(customer=…)``), mapped in one flow, on a sample
  (``POSVENTA_BENCH_NAIVE_SAMPLE``, default 300); its seconds for N are *extrapolated* from the sample's
  per-step cost. The ephemeral Prefect server's start-up is excluded (reported apart).
* **raw** — the limit: plain SQL claim (``SELECT … FOR UPDATE OF e SKIP LOCKED`` joined to customers and
  orders, batches of 500, psycopg2), the *real* ``thank_you`` template rendered per customer with
  ``message_context`` (and the same signed unsubscribe link), one raw ``http.client`` POST of v3
  mail/send JSON per batch, one ledger row ``sent`` and one enrollment update per customer in two
  ``execute_values`` statements. No engine, no Prefect, no ORM. Every thank-you is personalised (name,
  order, items, signed link), and a v3 request shares one ``content`` among its personalizations, so the
  raw limit batches 500 customers per request through a pass-through dynamic template
  (``dynamic_template_data`` = the locally rendered subject/html/text).
* **raw, trivial template** — the same loop rendering a three-line template: what the limit would be
  without the real layout's rendering, so the rendering share of a step is visible.
* **raw-1/req** (diagnostic) — the raw path but one request per distinct content, which for these
  messages is one request per customer: the rule ``SendGridSender`` batches by. real / raw-1/req is the
  runtime's own overhead; raw-1/req / raw is what the HTTP request count costs.

Every design talks to the same provider: a minimal loopback HTTP sink in another process
(``benchmarks/_sink.py``: reads the body, answers 202 with a message id, stores and checks nothing), so
as little provider work as possible shares the machine with the measured process. For the real sweep,
the SQL statements it sends are counted (a ``before_cursor_execute`` listener; an executemany counts one
per row) and reported per batch of 500 steps.

Each design runs in its own spawned process, so the timings share no warm caches, and "peak memory" is
the ``resource.getrusage`` ru_maxrss kind of figure, taken so that it means something: the process's
peak resident set during the timed section minus its resident set when the section starts. The high-water
mark is reset at the start (Linux ``/proc/self/clear_refs`` ← 5, then ``VmHWM`` from
``/proc/self/status``): a plain ru_maxrss delta reads 0 in a spawned child, whose ru_maxrss starts at the
pre-``exec`` image's peak, i.e. the parent's size. Where ``/proc`` cannot do that, the ru_maxrss delta is
used and the table says so.

Run: ``python -m benchmarks.bench_sweep [N ...]``; ``--profile N`` runs cProfile on the real sweep of N.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from benchmarks._sink import ServerProcess, server_process, sink_process
from benchmarks.bench_render import TRIVIAL

ROOT = Path(__file__).resolve().parents[1]
JOURNEY_FILE = ROOT / "journeys" / "post_purchase.yaml"
FIRST_STEP = "thank_you"
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, 11:00 in Madrid, 10:00 in London: a send window
NOW = T0 + timedelta(minutes=1)
API_KEY = "SG.bench"
SECRET = "posventa-bench-secret-" + "x" * 20
BATCH = 500
DEFAULT_SIZES = (10_000, 100_000)
DEFAULT_NAIVE_SAMPLE = 300
TARGET = 0.7  # real (pass-through) / raw, the real-template limit (issue 12)
SEED_CHUNK = 5_000
MAX_BATCHES = 10_000  # bounds every claim loop (10000 × 500 ≫ any N here)
PASSTHROUGH_TEMPLATE = "d-posventa-passthrough"
ZONES = ("Europe/Madrid", "Europe/London")
FIRST = {
    "es": ("Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Sofía", "Diego"),
    "en": ("Emma", "Oliver", "Ava", "Noah", "Mia", "Liam", "Grace", "Henry"),
}
LAST = ("García", "López", "Smith", "Brown", "Pérez", "Martín")
ITEMS = (
    {"sku": "CEP-01", "name": "Cepillo de dientes eléctrico", "quantity": 1, "price": 49.9},
    {"sku": "MER-02", "name": "Mermelada artesanal de fresa", "quantity": 2, "price": 6.5},
    {"sku": "CAM-05", "name": "Camiseta de algodón", "quantity": 1, "price": 19.9},
)


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    return int(raw) if raw else default


def sizes_from_env() -> list[int]:
    raw = os.environ.get("POSVENTA_BENCH_SIZES", "").strip()
    if not raw:
        return list(DEFAULT_SIZES)
    sizes = [int(x) for x in raw.replace(" ", "").split(",") if x]
    if not sizes or any(n < 1 or n > 1_000_000 for n in sizes):
        raise ValueError(f"POSVENTA_BENCH_SIZES must be integers between 1 and 1000000, got {raw!r}")
    return sizes


def _timeout_for(n: int) -> float:
    """A bound on every child process: generous (≈ 40 steps/s) but finite."""
    return float(_env_int("POSVENTA_BENCH_TIMEOUT_S", 0)) or max(300.0, n / 40)


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class PeakMemory:
    """Peak resident memory of this process during a section, in KiB above where it started."""

    def __init__(self) -> None:
        self.method = "ru_maxrss delta"
        try:
            with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
                f.write("5")  # reset VmHWM (the peak RSS) to the current RSS
            if _status_kib("VmHWM") is not None:
                self.method = "peak RSS (VmHWM reset at start) − RSS at start"
        except OSError:
            pass
        self.start = self._now() if self.method.startswith("peak") else self._maxrss()

    @staticmethod
    def _now() -> int:
        return _status_kib("VmRSS") or 0

    @staticmethod
    def _maxrss() -> int:
        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB on Linux

    def growth_kib(self) -> int:
        peak = _status_kib("VmHWM") if self.method.startswith("peak") else self._maxrss()
        return max(0, (peak or 0) - self.start)


def _plan() -> Any:
    from posventa.compile import compile_file

    plan = compile_file(JOURNEY_FILE)
    if plan.start != FIRST_STEP:
        raise RuntimeError(
            f"{JOURNEY_FILE.name} starts at {plan.start!r}, the benchmark expects {FIRST_STEP!r}"
        )
    return plan


# ----------------------------------------------------------------------------------------------- seeding
def _customer(i: int) -> dict[str, Any]:
    locale = "en" if i % 3 == 0 else "es"
    first = FIRST[locale][i % len(FIRST[locale])]
    return {
        "id": f"c{i:07d}",
        "email": f"cliente{i}@example.com",
        "name": f"{first} {LAST[i % len(LAST)]}",
        "locale": locale,
        "timezone": ZONES[i % len(ZONES)],
        "consent_email": True,
        "birthday": None,
        "attributes": {},
        "created_at": T0,
        "updated_at": T0,
    }


def _order(i: int) -> dict[str, Any]:
    items = [dict(ITEMS[i % len(ITEMS)])] + ([dict(ITEMS[(i + 1) % len(ITEMS)])] if i % 2 else [])
    total = sum(Decimal(str(it["price"])) * it["quantity"] for it in items)
    return {
        "id": f"o{i:07d}",
        "customer_id": f"c{i:07d}",
        "placed_at": T0,
        "status": "placed",
        "total": total,
        "currency": "EUR",
        "channel": "web",
        "promised_delivery_date": (T0 + timedelta(days=4)).date(),
        "shipped_at": None,
        "delivered_at": None,
        "items": items,
        "referral_code": None,
        "tracking_url": f"https://tienda.example/track/o{i:07d}" if i % 2 else None,
        "attributes": {},
        "created_at": T0,
        "updated_at": T0,
    }


def _event(i: int) -> dict[str, Any]:
    return {
        "id": f"evt-placed-{i}",
        "type": "order.placed",
        "customer_id": f"c{i:07d}",
        "order_id": f"o{i:07d}",
        "occurred_at": T0,
        "received_at": T0,
        "source": "api",
        "data": {},
        "processed_at": T0,
    }


def seed(url: str, n: int, plan: Any) -> None:
    """N customers, orders and order.placed events (bulk INSERT through the models), the plan, and N
    enrollments due at T0 at the journey's first step."""
    from sqlalchemy import create_engine, insert
    from sqlalchemy.orm import Session
    from sqlalchemy.pool import NullPool

    from infra.db import models as m
    from infra.db.store import SqlTx

    engine = create_engine(url, poolclass=NullPool)
    try:
        with Session(engine) as s, s.begin():
            SqlTx(s).plans.save(plan.id, plan.version, plan.to_json())
        with engine.begin() as c:
            for start in range(0, n, SEED_CHUNK):
                idx = range(start, min(n, start + SEED_CHUNK))
                c.execute(insert(m.Customer), [_customer(i) for i in idx])
                c.execute(insert(m.Order), [_order(i) for i in idx])
                c.execute(insert(m.StoredEvent), [_event(i) for i in idx])
    finally:
        engine.dispose()
    reset_due(url, plan)


def reset_due(url: str, plan: Any) -> None:
    """Empty the ledger and (re-)create one due enrollment per order, then VACUUM ANALYZE: every design
    starts from the same rows, with fresh statistics and no dead tuples left by the previous one."""
    from sqlalchemy import bindparam, create_engine, insert, literal, select, text
    from sqlalchemy.pool import NullPool

    from infra.db import models as m
    from infra.db.types import JSONType, UTCDateTime
    from posventa.engine import State

    state = State.start(plan, T0).to_json()
    cols = [
        "journey_id",
        "plan_version",
        "customer_id",
        "order_id",
        "entry_key",
        "status",
        "state",
        "next_due_at",
        "attempts",
        "entered_at",
        "updated_at",
    ]
    t0 = bindparam("t0", T0, type_=UTCDateTime())
    rows = select(
        literal(plan.id),
        literal(plan.version),
        m.Order.customer_id,
        m.Order.id,
        literal("order:") + m.Order.id,
        literal("active"),
        bindparam("state", state, type_=JSONType),
        t0,
        literal(0),
        t0,
        t0,
    ).order_by(m.Order.id)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.begin() as c:
            c.execute(text("TRUNCATE ledger, enrollments RESTART IDENTITY CASCADE"))
            c.execute(insert(m.Enrollment).from_select(cols, rows))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


def outcome_counts(url: str) -> dict[str, Any]:
    """What the database says happened: ledger rows by status, enrollments by status."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            ledger = dict(c.execute(text("SELECT status, count(*) FROM ledger GROUP BY status")).all())
            enr = dict(c.execute(text("SELECT status, count(*) FROM enrollments GROUP BY status")).all())
    finally:
        engine.dispose()
    return {
        "ledger": {str(k): int(v) for k, v in ledger.items()},
        "enrollments": {str(k): int(v) for k, v in enr.items()},
    }


def customer_ids(url: str, limit: int) -> list[str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as c:
            rows = c.execute(text("SELECT customer_id FROM enrollments ORDER BY id LIMIT :n"), {"n": limit})
            return [str(r[0]) for r in rows]
    finally:
        engine.dispose()


# ------------------------------------------------------------------------------------- the fake SendGrid
def _fake_main(conn: Connection, lifetime_s: float) -> None:
    """Child process: the loopback FakeSendGrid, answering "stats" / "reset" / "stop" on a pipe."""
    from infra.email.fake_sendgrid import FakeSendGrid

    with FakeSendGrid(api_key=API_KEY, poll_interval=0.1) as fake:
        conn.send(fake.url)
        deadline = time.monotonic() + lifetime_s
        while time.monotonic() < deadline:
            try:
                if not conn.poll(1.0):
                    continue
                cmd = conn.recv()
            except (EOFError, OSError):
                return  # the parent is gone
            if cmd == "stats":
                reqs = fake.requests
                conn.send(
                    {
                        "requests": len(reqs),
                        "accepted": sum(r.stored for r in reqs),
                        "statuses": dict(Counter(r.status for r in reqs)),
                    }
                )
            elif cmd == "reset":
                fake.reset()
                conn.send("ok")
            elif cmd == "stop":
                conn.send("ok")
                return


def fake_sendgrid_process(lifetime_s: float) -> AbstractContextManager[ServerProcess]:
    return server_process(_fake_main, lifetime_s, name="bench-fake-sendgrid", what="fake SendGrid")


# ------------------------------------------------------------------------------------- measured children
def _services(url: str, fake_url: str, outbox: str, passthrough: bool = False) -> Any:
    from infra.email.sendgrid_sender import SendGridSender
    from infra.settings import make_settings
    from infra.wiring import build_services

    plan = _plan()
    settings = make_settings(
        database_url=url,
        journeys_dir=str(ROOT / "journeys"),
        outbox_dir=outbox,
        secret_key=SECRET,
        sendgrid_host=fake_url,
        batch_size=BATCH,
        sendgrid_passthrough_template_id=PASSTHROUGH_TEMPLATE if passthrough else None,
    )
    # The sender as the product configures it (build_services does the same from these settings).
    sender = SendGridSender(
        API_KEY,
        settings.email_from,
        host=fake_url,
        timeout=30.0,
        concurrency=settings.sendgrid_concurrency,
        passthrough_template_id=settings.sendgrid_passthrough_template_id,
    )
    return build_services(settings, sender=sender, plans={plan.id: plan})


def count_statements(engine: Any) -> Callable[[], int]:
    """Count the SQL statements ``engine`` sends from now on (a ``before_cursor_execute`` listener); an
    executemany counts one per parameter set, as the server runs one statement per row. Returns a reader."""
    from sqlalchemy import event

    seen = [0]

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        seen[0] += len(params) if executemany and isinstance(params, list | tuple) else 1

    event.listen(engine, "before_cursor_execute", count)
    return lambda: seen[0]


def _prepare_real(
    url: str,
    fake_url: str,
    tmp: str,
    profile_top: int = 0,
    profile_out: str | None = None,
    passthrough: bool = False,
) -> tuple[Callable[[], dict], dict]:
    svc = _services(url, fake_url, str(Path(tmp) / "outbox"), passthrough)
    statements = count_statements(svc.store.factory.kw["bind"])

    def run() -> dict[str, Any]:
        if not profile_top:
            stats = svc.sweep(NOW)
            return {"engine_failures": len(stats.failures), "statements": statements()}
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        stats = svc.sweep(NOW)
        prof.disable()
        out = io.StringIO()
        ps = pstats.Stats(prof, stream=out)
        ps.sort_stats("cumulative").print_stats(r"/(app|infra|posventa)/", profile_top)
        ps.sort_stats("cumulative").print_stats(profile_top)
        ps.sort_stats("tottime").print_stats(profile_top)
        if profile_out:
            prof.dump_stats(profile_out)
        return {"engine_failures": len(stats.failures), "profile": out.getvalue(), "statements": statements()}

    return run, {}


def _prepare_naive(
    url: str, fake_url: str, tmp: str, customers: list[str]
) -> tuple[Callable[[], dict], dict]:
    os.environ["PREFECT_HOME"] = str(Path(tmp) / "prefect")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")  # busy 2-core machine
    os.environ.pop("PREFECT_API_URL", None)  # the ephemeral server in PREFECT_HOME, never a shared one
    started = time.perf_counter()
    from benchmarks import _prefect_naive
    from tasks.steps import using

    svc = _services(url, fake_url, str(Path(tmp) / "outbox"))
    with using(svc):  # the flow runs and their task runs see these services
        _prefect_naive.warmup()
    startup = time.perf_counter() - started

    def run() -> dict[str, Any]:
        with using(svc):
            advanced = _prefect_naive.per_customer(customers, NOW)
        return {"advanced": advanced}

    return run, {"prefect_startup_s": round(startup, 1)}


_CLAIM = """
SELECT e.id, e.customer_id, e.order_id, c.email, c.name, c.locale, c.timezone, c.birthday, c.consent_email,
       c.attributes, o.status, o.total, o.currency, o.channel, o.placed_at, o.promised_delivery_date,
       o.shipped_at, o.delivered_at, o.items, o.referral_code, o.tracking_url, o.attributes
FROM enrollments e
JOIN customers c ON c.id = e.customer_id
LEFT JOIN orders o ON o.id = e.order_id
WHERE e.status IN ('active', 'waiting', 'held') AND e.next_due_at <= %s
ORDER BY e.next_due_at, e.id
LIMIT %s
FOR UPDATE OF e SKIP LOCKED
"""
_LEDGER = """
INSERT INTO ledger (key, enrollment_id, journey_id, step_id, occurrence, kind, channel, template, category,
                    customer_id, to_email, status, provider_message_id, attempts, payload, created_at,
                    updated_at, sent_at)
VALUES %s ON CONFLICT (key) DO NOTHING
"""
_ENROLLMENTS = """
UPDATE enrollments AS e SET state = v.state::jsonb, status = 'waiting', next_due_at = v.due::timestamptz,
       attempts = 0, updated_at = v.now::timestamptz
FROM (VALUES %s) AS v(id, state, due, now) WHERE e.id = v.id
"""


def _prepare_raw(
    url: str, fake_url: str, tmp: str, per_request: int, template: str = "real"
) -> tuple[Callable[[], dict], dict]:
    """The raw limit. ``per_request`` 500: pass-through dynamic template; 1: one request per content.
    ``template`` "trivial": a three-line template instead of the real ``thank_you`` (the rendering share)."""
    import psycopg2
    from psycopg2.extras import Json, execute_values
    from sqlalchemy.engine import make_url

    from infra.settings import make_settings
    from posventa import tokens
    from posventa.templates import Templates, message_context

    plan = _plan()
    settings = make_settings(database_url=url, secret_key=SECRET)
    base = settings.public_base_url.rstrip("/")
    brand = {
        "name": settings.email_from_name,
        "url": settings.public_base_url,
        "support_email": settings.email_from,
    }
    sender = {"email": settings.email_from, "name": settings.email_from_name}
    if template == "trivial":
        for locale in ("es", "en"):
            (Path(tmp) / "trivial" / locale).mkdir(parents=True)
            (Path(tmp) / "trivial" / locale / f"{FIRST_STEP}.j2").write_text(TRIVIAL, encoding="utf-8")
        templates = Templates(Path(tmp) / "trivial")
    else:
        templates = Templates(ROOT / "journeys" / "templates")
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = psycopg2.connect(dsn)
    target = urlsplit(fake_url)
    headers = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}
    categories = [plan.id, f"{plan.id}:{FIRST_STEP}"]
    iso = lambda v: v.isoformat() if v is not None else None  # noqa: E731
    ttl = timedelta(days=400)

    def post(body: dict[str, Any]) -> str:
        c = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
        try:
            c.request("POST", "/v3/mail/send", body=json.dumps(body).encode(), headers=headers)
            reply = c.getresponse()
            reply.read()
            if reply.status != 202:
                raise RuntimeError(f"fake SendGrid answered {reply.status}")
            return str(reply.getheader("X-Message-Id") or "")
        finally:
            c.close()

    def render(row: tuple[Any, ...]) -> tuple[str, dict[str, Any], Any]:
        eid, cid, oid, email, name, locale, tz, bday, consent, cattrs = row[:10]
        order_cols = row[10:]
        ostatus, total, cur, channel, placed, promised, shipped, delivered, items, ref, track, oattrs = (
            order_cols
        )
        key = f"{eid}:{FIRST_STEP}:0"
        customer = {
            "id": cid,
            "email": email,
            "name": name,
            "locale": locale,
            "timezone": tz,
            "birthday": iso(bday),
            "consent_email": consent,
            "attributes": dict(cattrs or {}),
        }
        order = {
            "id": oid,
            "status": ostatus,
            "total": float(total) if total is not None else None,
            "currency": cur,
            "channel": channel,
            "placed_at": iso(placed),
            "promised_delivery_date": iso(promised),
            "shipped_at": iso(shipped),
            "delivered_at": iso(delivered),
            "items": list(items or []),
            "referral_code": ref,
            "tracking_url": track,
            "attributes": dict(oattrs or {}),
        }
        unsub = f"{base}/u/" + tokens.sign(
            {"c": cid, "e": email, "j": plan.id, "k": key}, SECRET, purpose="unsubscribe", now=NOW, ttl=ttl
        )
        links = {"unsubscribe": unsub, "support": f"mailto:{settings.email_from}", "shop": base}
        ctx = message_context(
            customer=customer, order=order, journey=plan.id, step=FIRST_STEP, links=links, brand=brand
        )
        r = templates.render(FIRST_STEP, locale or "es", ctx)
        person = {
            "to": [{"email": email, "name": name} if name else {"email": email}],
            "custom_args": {"posventa_key": key},
        }
        return key, person, r

    def send(batch: list[tuple[str, dict[str, Any], Any]]) -> tuple[list[str], int]:
        """POST the batch; returns the provider message id per message and the request count."""
        if per_request > 1:
            ids: list[str] = []
            for start in range(0, len(batch), per_request):
                chunk = batch[start : start + per_request]
                body = {
                    "personalizations": [
                        {**p, "dynamic_template_data": {"subject": r.subject, "html": r.html, "text": r.text}}
                        for _, p, r in chunk
                    ],
                    "from": sender,
                    "template_id": PASSTHROUGH_TEMPLATE,
                    "categories": categories,
                }
                ids += [post(body)] * len(chunk)
            return ids, -(-len(batch) // per_request)
        groups: dict[tuple[str, str, str], list[int]] = {}
        for i, (_, _, r) in enumerate(batch):
            groups.setdefault((r.subject, r.html, r.text), []).append(i)
        out = [""] * len(batch)
        for (subject, html, text), idx in groups.items():
            body = {
                "personalizations": [batch[i][1] for i in idx],
                "from": sender,
                "subject": subject,
                "content": [{"type": "text/plain", "value": text}, {"type": "text/html", "value": html}],
                "categories": categories,
            }
            mid = post(body)
            for i in idx:
                out[i] = mid
        return out, len(groups)

    # The engine's wait: until the end of promised_delivery_date + 1 day, local to the customer.
    promised_plus_one = (T0 + timedelta(days=5)).date()
    wait_until = {
        tz: datetime.combine(promised_plus_one, datetime.min.time(), ZoneInfo(tz)).astimezone(UTC)
        for tz in ZONES
    }

    def run() -> dict[str, Any]:
        requests = statements = 0
        for _ in range(MAX_BATCHES):
            with conn, conn.cursor() as cur:
                cur.execute(_CLAIM, (NOW, BATCH))
                statements += 1
                rows = cur.fetchall()
                if not rows:
                    break
                batch = [render(row) for row in rows]  # every seeded customer has an address
                ids, n = send(batch)
                requests += n
                ledger = []
                updates = []
                for row, (key, _, _), mid in zip(rows, batch, ids, strict=True):
                    ledger.append(
                        (
                            key,
                            row[0],
                            plan.id,
                            FIRST_STEP,
                            0,
                            "message",
                            "email",
                            FIRST_STEP,
                            "transactional",
                            row[1],
                            row[3],
                            "sent",
                            mid,
                            1,
                            Json({"locale": row[5], "order_id": row[2]}),
                            NOW,
                            NOW,
                            NOW,
                        )
                    )
                    until = wait_until[row[6]]
                    state = {
                        "step": "await_delivery",
                        "status": "waiting",
                        "entered_at": T0.isoformat(),
                        "visits": {FIRST_STEP: 1},
                        "loops": {},
                        "wait_step": "await_delivery",
                        "wait_since": NOW.isoformat(),
                        "wait_until": until.isoformat(),
                        "consumed": [],
                        "event": None,
                        "variant": None,
                        "reason": None,
                    }
                    updates.append((row[0], json.dumps(state), until, NOW))
                execute_values(cur, _LEDGER, ledger, page_size=BATCH)
                execute_values(cur, _ENROLLMENTS, updates, page_size=BATCH)
                statements += 2
        conn.close()
        return {"requests": requests, "statements": statements}

    return run, {}


_DESIGNS: dict[str, Callable[..., tuple[Callable[[], dict], dict]]] = {
    "real": _prepare_real,
    "naive": _prepare_naive,
    "raw": _prepare_raw,
}


def _quiet(log: Path) -> Callable[[], str]:
    """Send this process's (and its children's) stdout/stderr to ``log``; returns a reader of its tail."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return lambda: log.read_text(encoding="utf-8", errors="replace")[-4000:]


def _child(conn: Connection, design: str, kwargs: dict[str, Any]) -> None:
    tail: Callable[[], str] = lambda: ""  # noqa: E731
    try:
        with tempfile.TemporaryDirectory(prefix=f"posventa-bench-{design}-") as tmp:
            try:
                if design == "naive":  # Prefect's server start and shutdown chatter would drown the table
                    tail = _quiet(Path(tmp) / "prefect.log")
                run, info = _DESIGNS[design](tmp=tmp, **kwargs)
                memory = PeakMemory()
                started = time.perf_counter()
                out = run()
                seconds = time.perf_counter() - started
                growth = memory.growth_kib()
                conn.send(
                    {
                        "ok": True,
                        "seconds": seconds,
                        "mem_mib": growth / 1024,
                        "mem_method": memory.method,
                        "rss_start_mib": memory.start / 1024,
                        **info,
                        **out,
                    }
                )
            except BaseException:
                conn.send({"ok": False, "error": traceback.format_exc() + "\n" + tail()})
    finally:
        conn.close()


def measure(design: str, timeout_s: float, **kwargs: Any) -> dict[str, Any]:
    """Run one design in a fresh spawned process (bounded by ``timeout_s``); its result dict."""
    ctx = mp.get_context("spawn")
    mine, theirs = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(theirs, design, kwargs), name=f"bench-sweep-{design}")
    proc.start()
    theirs.close()
    try:
        if not mine.poll(timeout_s):
            raise TimeoutError(f"{design}: no result within {timeout_s:.0f} s")
        try:
            result = dict(mine.recv())
        except EOFError:
            raise RuntimeError(f"{design}: the benchmark process died (exit code {proc.exitcode})") from None
    finally:
        proc.join(60)  # lets the Prefect child stop its ephemeral server
        if proc.is_alive():
            proc.terminate()
            proc.join(10)
    if not result.get("ok"):
        raise RuntimeError(f"{design} crashed:\n{result.get('error')}")
    return result


# ---------------------------------------------------------------------------------------------- the run
def _check(design: str, url: str, fake: ServerProcess, expect: int) -> dict[str, Any]:
    """Every one of ``expect`` customers must have had the thank-you accepted by the fake and recorded
    as sent; a design that did less would flatter its rate, so it is an error, not a number."""
    db = outcome_counts(url)
    sg = fake.stats()
    sent = db["ledger"].get("sent", 0)
    if sent != expect or sg["accepted"] != expect:
        raise RuntimeError(
            f"{design}: expected {expect} thank-yous sent, ledger says {db['ledger']}, fake "
            f"SendGrid accepted {sg['accepted']} in {sg['requests']} requests {sg['statuses']}"
        )
    return {"requests": sg["requests"]}


def run_size(n: int, naive_sample: int, fake: ServerProcess, *, raw_per_message: bool = True) -> list[dict]:
    from infra.db.testing import fresh_postgres_database

    plan = _plan()
    timeout = _timeout_for(n)
    rows: list[dict[str, Any]] = []
    with fresh_postgres_database() as url:
        started = time.perf_counter()
        seed(url, n, plan)
        print(f"  sweep N={n}: seeded in {time.perf_counter() - started:.1f} s", flush=True)

        designs: list[tuple[str, str, str, dict[str, Any], int]] = [
            ("raw", "raw", "raw limit (SQL + real render + POST 500/req)", {"per_request": BATCH}, n),
            (
                "raw_trivial",
                "raw",
                "raw, trivial template",
                {"per_request": BATCH, "template": "trivial"},
                n,
            ),
            ("real", "real", "real sweep (Services.sweep)", {}, n),
            ("real_pt", "real", "real sweep, pass-through template", {"passthrough": True}, n),
        ]
        if raw_per_message:
            designs.append(("raw1", "raw", "raw, 1 request per content", {"per_request": 1}, n))
        sample = min(naive_sample, n)
        if sample:
            designs.append(
                (
                    "naive",
                    "naive",
                    "naive: Prefect task/customer",
                    {"customers": customer_ids(url, sample)},
                    sample,
                )
            )
        batches = -(-n // BATCH)
        for i, (key, design, label, kwargs, count) in enumerate(designs):
            if i:
                reset_due(url, plan)
            fake.reset()
            res = measure(design, timeout, url=url, fake_url=fake.url, **kwargs)
            checked = _check(label, url, fake, count)
            per_step = res["seconds"] / count
            row = {
                "design": label,
                "key": key,
                "n": n,
                "measured_n": count,
                "seconds": res["seconds"] if count == n else per_step * n,
                "measured_seconds": res["seconds"],
                "steps_per_s": count / res["seconds"],
                "mem_mib": res["mem_mib"],
                "mem_method": res["mem_method"],
                "rss_start_mib": res["rss_start_mib"],
                "requests": checked["requests"],
                "extrapolated": count != n,
                "statements_per_batch": res["statements"] / batches if "statements" in res else None,
            }
            if "prefect_startup_s" in res:
                row["prefect_startup_s"] = res["prefect_startup_s"]
            rows.append(row)
            note = f" (sample {count}, extrapolated)" if count != n else ""
            print(
                f"  sweep N={n}: {label}: {res['seconds']:.2f} s for {count}{note}, "
                f"{row['steps_per_s']:.0f} steps/s, {checked['requests']} requests",
                flush=True,
            )
    raw = next(r for r in rows if r["key"] == "raw")
    trivial = next(r for r in rows if r["key"] == "raw_trivial")
    for r in rows:
        r["ratio_to_raw"] = r["steps_per_s"] / raw["steps_per_s"]
        r["ratio_to_trivial"] = r["steps_per_s"] / trivial["steps_per_s"]
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    head = (
        f"{'design':<46}{'N':>8}{'seconds':>10}{'steps/s':>10}{'/ raw':>8}{'/ trivial':>10}"
        f"{'requests':>10}{'SQL/batch':>10}{'peak mem':>12}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        star = "*" if r["extrapolated"] else ""
        sql = r["statements_per_batch"]
        print(
            f"{r['design']:<46}{r['n']:>8}{r['seconds']:>9.1f}{star:1}{r['steps_per_s']:>10.1f}"
            f"{r['ratio_to_raw']:>8.3f}{r['ratio_to_trivial']:>10.3f}{r['requests']:>9}{star:1}"
            f"{'' if sql is None else f'{sql:.1f}':>10}{r['mem_mib']:>8.1f} MiB"
        )
    print(
        f"raw: the limit — claim {BATCH} due rows, render the real thank_you per customer, one POST per\n"
        "  batch to a minimal HTTP sink (reads the body, answers 202), ledger + state in two set-based\n"
        "  statements; raw, trivial template: the same loop with a three-line template (the limit without\n"
        f"  the rendering). SQL/batch: statements sent per batch of {BATCH} steps (an executemany counts\n"
        "  one per row)."
    )
    startups = ", ".join(f"{r['prefect_startup_s']} s" for r in rows if "prefect_startup_s" in r)
    if startups:
        print(
            "* naive: measured on a sample of customers (requests and memory are the sample's); seconds "
            "for N = N × the sample's per-customer cost.\n  Prefect import + ephemeral server start, "
            f"excluded: {startups}"
        )
    methods = sorted({r["mem_method"] for r in rows})
    starts = ", ".join(f"{r['key']} {r['rss_start_mib']:.0f}" for r in rows)
    print(f"peak mem: {' / '.join(methods)}, of the design's own process (RSS at start, MiB: {starts})")
    for r in rows:
        if r["key"] == "real_pt":
            verdict = "PASS" if r["ratio_to_raw"] >= TARGET else "BELOW TARGET"
            print(f"N={r['n']}: {r['design']} / raw = {r['ratio_to_raw']:.3f} (target ≥ {TARGET}): {verdict}")
    mem = {r["n"]: r["mem_mib"] for r in rows if r["key"] == "real_pt"}
    if len(mem) > 1:
        lo, hi = min(mem), max(mem)
        print(f"real sweep peak memory N={lo}: {mem[lo]:.1f} MiB, N={hi}: {mem[hi]:.1f} MiB (target: flat)")


def run(sizes: list[int] | None = None, naive_sample: int | None = None) -> dict[str, Any]:
    """Measure every size; returns the rows and, per size, the real/raw ratio (the issue's target)."""
    sizes = sizes or sizes_from_env()
    sample = (
        naive_sample
        if naive_sample is not None
        else _env_int("POSVENTA_BENCH_NAIVE_SAMPLE", DEFAULT_NAIVE_SAMPLE)
    )
    load = os.getloadavg()
    print(
        f"sweep: N = {', '.join(map(str, sizes))}; {os.cpu_count()} CPUs, load average {load[0]:.1f} / "
        f"{load[1]:.1f} / {load[2]:.1f}; PostgreSQL, minimal HTTP sink in another process",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with sink_process(sum(_timeout_for(n) * 6 for n in sizes)) as fake:
        for n in sizes:
            # The one-request-per-customer diagnostic costs about as much as the real sweep's HTTP part:
            # measured once, on the smallest size.
            rows += run_size(n, sample, fake, raw_per_message=n == min(sizes))
    load = os.getloadavg()
    print(f"sweep: load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min)")
    print_table(rows)
    summary = {}
    for r in rows:
        if r["key"] in ("real", "real_pt"):
            summary[f"{r['key']}_vs_raw_{r['n']}"] = round(r["ratio_to_raw"], 3)
            summary[f"{r['key']}_vs_trivial_{r['n']}"] = round(r["ratio_to_trivial"], 3)
            summary[f"{r['key']}_steps_per_s_{r['n']}"] = round(r["steps_per_s"], 1)
            summary[f"{r['key']}_sql_per_batch_{r['n']}"] = round(r["statements_per_batch"] or 0, 1)
            summary[f"{r['key']}_mem_mib_{r['n']}"] = round(r["mem_mib"], 1)
        if r["key"] == "naive":
            summary[f"naive_steps_per_s_{r['n']}"] = round(r["steps_per_s"], 1)
        if r["key"] in ("raw", "raw_trivial"):
            summary[f"{r['key']}_steps_per_s_{r['n']}"] = round(r["steps_per_s"], 1)
    return {
        "rows": rows,
        "summary": summary,
        "target": TARGET,
        # The product's best configuration (pass-through template) against the target.
        "pass": all(r["ratio_to_raw"] >= TARGET for r in rows if r["key"] == "real_pt"),
    }


def profile(n: int, top: int = 35, out: str | None = None) -> None:
    """cProfile of the real sweep on N enrollments: our own functions, then everything, by cumulative time,
    then by own time. ``out``: also write the raw profile there (``python -m pstats`` / snakeviz)."""
    from infra.db.testing import fresh_postgres_database

    plan = _plan()
    with sink_process(_timeout_for(n) * 3) as fake, fresh_postgres_database() as url:
        seed(url, n, plan)
        res = measure(
            "real",
            _timeout_for(n) * 2,
            url=url,
            fake_url=fake.url,
            profile_top=top,
            profile_out=str(Path(out).resolve()) if out else None,
            passthrough=True,
        )
        checked = _check("real (profiled)", url, fake, n)
    print(
        f"real sweep of {n} under cProfile: {res['seconds']:.1f} s, {checked['requests']} SendGrid requests"
    )
    print(res["profile"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_sweep", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "sizes", nargs="*", type=int, help="N values (default: POSVENTA_BENCH_SIZES or 10000,100000)"
    )
    parser.add_argument("--naive-sample", type=int, default=None)
    parser.add_argument("--profile", type=int, metavar="N", help="cProfile the real sweep on N enrollments")
    parser.add_argument("--profile-out", metavar="PATH", help="with --profile: also write the .prof file")
    args = parser.parse_args(argv)
    if args.profile:
        profile(args.profile, out=args.profile_out)
        return 0
    run(args.sizes or None, args.naive_sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())

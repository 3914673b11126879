"""The embedded demo: a sample shop run through several simulated weeks, with Prefect in embedded mode.

It uses the real parts end to end — events go through the ingest use case (as from the API or an
import), the Prefect ``demo`` flow advances a virtual clock and runs the same tasks as the tick flow, and
every email is written to the outbox folder as ``.eml`` + ``.html``. Customers answer surveys and return
parcels as the simulator's world model says they would, in reaction to what they received; SendGrid's
Event Webhook reports deliveries, opens, clicks and a few bounces through the real webhook endpoint
(``ops.demo_sendgrid``). A few customers of two years ago, whose warranties end during the demo, show the
warranty journey. The demo ends with the KPI summary and ``report.html`` (``posventa report``'s page).
"""

from __future__ import annotations

import random
import shutil
import sys
from collections import Counter
from contextvars import ContextVar
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from app.stats import Stats
from infra.db.migrate import upgrade
from infra.settings import get_settings, make_settings
from infra.wiring import build_services
from ops.demo_sendgrid import DemoSendGrid
from ops.i18n import t
from posventa.simulate import EPOCH, _World
from tasks.steps import enroll_scheduled, ingest_events, services, using

STEP = timedelta(hours=6)
#: The demo's SendGrid webhook for the flow run (set by :func:`run_demo`; the flow's parameters stay plain).
_SENDGRID: ContextVar[DemoSendGrid | None] = ContextVar("demo_sendgrid", default=None)


def _api_event(world: _World, ev: dict[str, Any]) -> dict[str, Any]:
    """A world event as a shop would send it: order.placed carries the customer and order inline."""
    out: dict[str, Any] = {
        "id": ev["id"],
        "type": ev["type"],
        "occurred_at": ev["occurred_at"].isoformat(),
        "customer_id": world.customer["id"],
        "data": ev["data"],
    }
    if ev.get("order_id"):
        out["order_id"] = ev["order_id"]
    if ev["type"] == "order.placed":
        c = world.customer
        out["customer"] = {
            "id": c["id"],
            "email": c["email"],
            "name": c["name"],
            "locale": c["locale"],
            "timezone": c["timezone"],
            "birthday": c["birthday"],
        }
        o = world.order
        items = [
            {
                k: v
                for k, v in i.items()
                if k
                in ("sku", "name", "quantity", "price", "consumable", "runs_out_in_days", "warranty_months")
            }
            for i in o["items"]
        ]
        out["order"] = {
            "id": ev["order_id"],
            "total": o["total"],
            "currency": o["currency"],
            "channel": o["channel"],
            "promised_delivery_date": o["promised_delivery_date"],
            "items": items,
        }
    if ev["type"] == "order.delivered":
        out["data"] = {"delivered_at": ev["data"].get("delivered_at") or ev["occurred_at"].isoformat()}
    if ev["type"] == "return.received":
        out["data"] = {"rma_id": ev["data"].get("rma_id") or "RMA"}
    return out


def past_customers(n: int, seed: int, days: int) -> list[dict[str, Any]]:
    """Customers who bought headphones two years before the demo: their 24-month warranty ends during it,
    so the warranty journey has customers (its date trigger fires 30 days before the end). Most bought an
    accessory again in the months before the demo, so churn is not every old customer. Their old orders
    enroll nobody else (``stale_after``)."""
    rng = random.Random(f"{seed}:past")
    out = []
    for i in range(n):
        trigger = (EPOCH + timedelta(days=rng.uniform(1, max(2, days - 21)))).date()
        ends = trigger + timedelta(days=30)
        delivered = date(ends.year - 2, ends.month, min(ends.day, 28))
        at = datetime.combine(delivered, datetime.min.time(), tzinfo=EPOCH.tzinfo) + timedelta(hours=12)
        locale = rng.choice(("es", "en"))
        cid, oid = f"p{i:05d}", f"po{i:05d}"
        customer = {
            "id": cid,
            "email": f"antiguo{i}@example.com",
            "name": f"{rng.choice(('Carmen', 'Tomás', 'Olivia', 'James'))} {rng.choice(('Ruiz', 'Taylor'))}",
            "locale": locale,
            "timezone": rng.choice(("Europe/Madrid", "Europe/London")),
        }
        item = {"sku": "AUR-03", "name": "Auriculares inalámbricos", "quantity": 1, "price": 89.0}
        out.append(
            {
                "id": f"past-placed-{i}",
                "type": "order.placed",
                "occurred_at": (at - timedelta(days=3)).isoformat(),
                "customer_id": cid,
                "order_id": oid,
                "data": {},
                "customer": customer,
                "order": {
                    "id": oid,
                    "total": 89.0,
                    "currency": "EUR",
                    "channel": "web",
                    "items": [item | {"warranty_months": 24}],
                },
            }
        )
        out.append(
            {
                "id": f"past-delivered-{i}",
                "type": "order.delivered",
                "occurred_at": at.isoformat(),
                "customer_id": cid,
                "order_id": oid,
                "data": {"delivered_at": at.isoformat()},
            }
        )
        if rng.random() < 0.65:  # most came back for an accessory in the months before the demo (churn)
            again = EPOCH - timedelta(days=rng.uniform(20, 100))
            rid = f"po{i:05d}b"
            accessory = {"sku": "FUN-01", "name": "Funda de transporte", "quantity": 1, "price": 19.0}
            out.append(
                {
                    "id": f"past-again-{i}",
                    "type": "order.placed",
                    "occurred_at": again.isoformat(),
                    "customer_id": cid,
                    "order_id": rid,
                    "data": {},
                    "order": {
                        "id": rid,
                        "total": 19.0,
                        "currency": "EUR",
                        "channel": "web",
                        "items": [accessory],
                    },
                }
            )
    return out


@flow(name="demo", flow_run_name="demo · {customers} customers · {weeks} weeks", log_prints=False)
def demo_flow(customers: int, weeks: int, seed: int, outbox: str) -> dict[str, Any]:
    from flows.sweep import sweep

    store = services().store
    sendgrid = _SENDGRID.get()
    worlds = [_World(i, seed, EPOCH, weeks * 7) for i in range(customers)]
    by_customer = {w.customer["id"]: w for w in worlds}
    past = past_customers(max(3, customers // 10), seed, weeks * 7)
    if sendgrid is not None:
        sendgrid.emails.update({w.customer["id"]: w.customer["email"] for w in worlds})
        sendgrid.emails.update({e["customer"]["id"]: e["customer"]["email"] for e in past if "customer" in e})
    fed: set[str] = set()
    reacted: set[str] = set()
    total = Stats()
    steps = int(weeks * 7 * 24 / (STEP.total_seconds() / 3600))
    now = EPOCH
    from rich.progress import Progress

    with Progress(transient=False) as bar:
        job = bar.add_task(t("demo_progress"), total=steps)
        for _ in range(steps):
            now += STEP
            due = [
                _api_event(w, e)
                for w in worlds
                for e in w.events
                if e["occurred_at"] <= now and e["id"] not in fed
            ]
            if now == EPOCH + STEP:
                due = past + due
            if sendgrid is not None:  # friends who came through a referral link and ordered
                due += sendgrid.take_orders(now)
            fed.update(e["id"] for e in due)
            if due:
                ingest_events(
                    sorted(due, key=lambda e: e["occurred_at"]),
                    label=f"{len(due)} events @ {now:%m-%d %H:%M}",
                    source="simulation",
                    now=now,
                )
            if now.hour == 2:  # the nightly run: birthdays, replenishment and warranty dates
                total.merge(Stats.from_json(enroll_scheduled(now)))
            total.merge(sweep(now, artifacts=False))
            # Customers react to what they received: survey answers, parcels sent back.
            with store.read() as tx:
                sent = tx.ledger.sent_messages()
            for row in sent:
                if row.key in reacted:
                    continue
                reacted.add(row.key)
                world = by_customer.get(row.customer_id)
                if world is None or row.sent_at is None:
                    continue
                if row.template in ("nps_survey", "nps_reminder"):
                    world.react("feedback.submitted", row.sent_at)
                elif row.template and row.template.startswith("return_"):
                    world.react("return.received", row.sent_at)
            if sendgrid is not None:  # what SendGrid's Event Webhook reports about them, when it happens
                sendgrid.observe(sent)
                sendgrid.post_due(now)
            bar.advance(job)
    table = total.table()
    create_table_artifact(table, key="demo-summary", description="Demo: per journey step")
    create_markdown_artifact(
        f"Demo ran {customers} customers over {weeks} weeks; outbox: `{outbox}`",
        key="demo-notes",
    )
    return {"rows": table, "sent": total.total("sent"), "end": now.isoformat()}


def summary_rows(run_rows: list[dict[str, Any]], report: Any) -> list[dict[str, Any]]:
    """The demo's table, per journey step in plan order: messages ``sent`` and ``actions`` done apart
    (an action is no email), ``deferred`` as distinct messages that waited (the report's, not the sweeps
    they waited through), the webhook's ``delivered`` / ``opened`` / ``clicked``; skips, failures and
    unknown sends from the run."""
    run = {(r["journey"], r["step"]): r for r in run_rows}
    types: dict[tuple[str, str], str] = {}
    order: list[tuple[str, str]] = []
    seen: Counter[tuple[str, str]] = Counter()
    for j in report.funnel:
        for n in j.nodes:
            types[(j.journey_id, n.step_id)] = n.type
            order.append((j.journey_id, n.step_id))
        for st in j.steps:
            key = (j.journey_id, st.step_id)
            if key not in types:
                order.append(key)
            for name in ("deferred", "delivered", "opened", "clicked"):
                seen[(*key, name)] += getattr(st, name)  # type: ignore[index]
    order += sorted(k for k in run if k not in set(order))
    out = []
    for key in dict.fromkeys(order):
        r = run.get(key, {})
        done = int(r.get("sent", 0))
        action = types.get(key) == "action"
        row = {
            "journey": key[0],
            "step": key[1],
            "sent": 0 if action else done,
            "actions": done if action else 0,
            "skipped": int(r.get("skipped", 0)),
            **{name: seen[(*key, name)] for name in ("deferred", "delivered", "opened", "clicked")},  # type: ignore[index]
            "failed": int(r.get("failed", 0)),
            "unknown": int(r.get("unknown", 0)),
            "skip reasons": r.get("skip reasons", ""),
        }
        if any(row[c] for c in NUMBERS):
            out.append(row)
    return out


NUMBERS = ("sent", "actions", "skipped", "deferred", "delivered", "opened", "clicked", "failed", "unknown")


def print_summary(rows: list[dict[str, Any]], locale: str) -> None:
    from infra.report.i18n import label

    heads = {
        "journey": label("journey", locale).lower(),
        "step": label("step_id", locale),
        "actions": t("demo_actions"),
        "unknown": t("demo_unknown"),
        "skip reasons": t("demo_skip_reasons"),
    }
    cols = ["journey", "step", *NUMBERS, "skip reasons"]
    names = [heads.get(c) or label(c, locale) for c in cols]
    widths = [max(len(str(v)) for v in (n, *(r[c] for r in rows))) for c, n in zip(cols, names, strict=True)]

    def line(values: list[Any]) -> str:
        cells = [
            str(v).rjust(w) if c in NUMBERS else str(v).ljust(w)
            for c, v, w in zip(cols, values, widths, strict=True)
        ]
        return "  ".join(cells).rstrip()

    print(line(names))
    for row in rows:
        print(line([row[c] for c in cols]))


def run_demo(customers: int = 300, weeks: int = 10, seed: int = 7) -> int:
    from infra.report.render import render
    from ops.report import make_report
    from posventa.i18n import language

    base = get_settings()
    locale = language()
    # The demo keeps its database and outbox apart from the default ones (.posventa/posventa.db,
    # .posventa/outbox): a real run after the demo must not find the demo's mail under its keys.
    home = Path(".posventa") / "demo"
    db = home / "demo.db"
    outbox = home / "outbox"
    home.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    shutil.rmtree(outbox, ignore_errors=True)
    outbox.mkdir(parents=True, exist_ok=True)
    sendgrid = DemoSendGrid(seed, base.shop_url or base.public_base_url)
    settings = make_settings(
        database_url=f"sqlite:///{db}",
        journeys_dir=base.journeys_dir,
        outbox_dir=str(outbox),
        timezone=base.timezone,
        secret_key=base.secret_key.get_secret_value(),
        public_base_url=base.public_base_url,
        batch_size=base.batch_size,
        sendgrid_webhook_public_key=sendgrid.public_key,
    )
    print(t("demo_start", n=customers, w=weeks, db=db))
    upgrade(settings.database_url)
    svc = build_services(settings)
    token = _SENDGRID.set(sendgrid)
    try:
        with using(svc), sendgrid.serving(svc, settings):
            result = demo_flow(customers=customers, weeks=weeks, seed=seed, outbox=str(outbox))
    finally:
        _SENDGRID.reset(token)
        svc.store.dispose()  # type: ignore[attr-defined]
    end = datetime.fromisoformat(result["end"])
    report = make_report(settings.database_url, tz=settings.timezone, now=end)
    print()
    print(t("demo_summary"))
    print_summary(summary_rows(result["rows"], report), locale)
    posted = sendgrid.posted
    print()
    print(
        t(
            "demo_webhook",
            n=sum(posted.values()),
            delivered=posted["delivered"],
            opened=posted["open"],
            clicked=posted["click"],
            bounced=posted["bounce"],
            applied=sendgrid.results["applied"],
        )
    )
    print(t("demo_friends", visits=sendgrid.friends["visits"], orders=sendgrid.friends["orders"]))
    by_template: Counter[str] = Counter(p.stem.split("__")[0] for p in outbox.glob("*.eml"))
    print(t("demo_done", sent=sum(by_template.values()) or result["sent"], outbox=outbox))
    print()
    print(render(report, "summary", locale), end="")
    page = home / "report.html"
    page.write_text(render(report, "html", locale), encoding="utf-8")
    print()
    print(t("demo_report", path=page.resolve()))
    import os

    print(t("demo_ui", home=os.environ.get("PREFECT_HOME", "~/.prefect")))
    sys.stdout.flush()
    return 0

"""The embedded demo: a sample shop run through several simulated weeks, with Prefect in embedded mode.

It uses the real parts end to end — events go through the ingest use case (as from the API or an
import), the Prefect ``demo`` flow advances a virtual clock and runs the same tasks as the tick flow, and
every email is written to the outbox folder as ``.eml`` + ``.html``. Customers answer surveys and return
parcels as the simulator's world model says they would, in reaction to what they received.
"""

from __future__ import annotations

import shutil
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.artifacts import create_markdown_artifact, create_table_artifact

from app.stats import Stats
from infra.db.migrate import upgrade
from infra.settings import get_settings, make_settings
from infra.wiring import build_services
from ops.i18n import t
from posventa.simulate import EPOCH, _World
from tasks.steps import enroll_scheduled, ingest_events, services, using

STEP = timedelta(hours=6)


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


@flow(name="demo", flow_run_name="demo · {customers} customers · {weeks} weeks", log_prints=False)
def demo_flow(customers: int, weeks: int, seed: int, outbox: str) -> dict[str, Any]:
    from flows.sweep import sweep

    store = services().store
    worlds = [_World(i, seed, EPOCH, weeks * 7) for i in range(customers)]
    by_customer = {w.customer["id"]: w for w in worlds}
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
            bar.advance(job)
    table = total.table()
    create_table_artifact(table, key="demo-summary", description="Demo: per journey step")
    create_markdown_artifact(
        f"Demo ran {customers} customers over {weeks} weeks; outbox: `{outbox}`",
        key="demo-notes",
    )
    return {"rows": table, "sent": total.total("sent")}


def run_demo(customers: int = 300, weeks: int = 10, seed: int = 7) -> int:
    base = get_settings()
    # The demo keeps its database and outbox apart from the default ones (.posventa/posventa.db,
    # .posventa/outbox): a real run after the demo must not find the demo's mail under its keys.
    home = Path(".posventa") / "demo"
    db = home / "demo.db"
    outbox = home / "outbox"
    home.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    shutil.rmtree(outbox, ignore_errors=True)
    outbox.mkdir(parents=True, exist_ok=True)
    settings = make_settings(
        database_url=f"sqlite:///{db}",
        journeys_dir=base.journeys_dir,
        outbox_dir=str(outbox),
        timezone=base.timezone,
        secret_key=base.secret_key.get_secret_value(),
        public_base_url=base.public_base_url,
        batch_size=base.batch_size,
    )
    print(t("demo_start", n=customers, w=weeks, db=db))
    upgrade(settings.database_url)
    with using(build_services(settings)):
        result = demo_flow(customers=customers, weeks=weeks, seed=seed, outbox=str(outbox))
    print()
    print(t("demo_summary"))
    # sent: messages out / actions done; deferred: times a send waited (quiet hours, cap, complaint).
    cols = ["journey", "step", "sent", "skipped", "deferred", "failed", "unknown", "skip reasons"]
    widths = [16, 26, 7, 9, 10, 8, 9, 0]
    right = {"sent", "skipped", "deferred", "failed", "unknown"}

    def line(values: list[str]) -> str:
        cells = [
            (v.rjust(w) if c in right else v.ljust(w)) + ("  " if c in right else "")
            for c, v, w in zip(cols, values, widths, strict=True)
        ]
        return "".join(cells).rstrip()

    print(line(cols))
    for row in result["rows"]:
        if any(row[c] for c in right):
            print(line([str(row[c]) for c in cols]))
    by_template: Counter[str] = Counter(p.stem.split("__")[0] for p in outbox.glob("*.eml"))
    print()
    print(t("demo_done", sent=sum(by_template.values()) or result["sent"], outbox=outbox))
    import os

    print(t("demo_ui", home=os.environ.get("PREFECT_HOME", "~/.prefect")))
    sys.stdout.flush()
    return 0

"""The set-based batch path of ``Ingest.apply`` writes exactly what the item-by-item path
(``Ingest.apply_each``, a savepoint per item) writes: the same randomized batches — events about a few
customers and orders, repeated ids, bad items, stale events, entry conditions and cooldowns — go through
both on two PostgreSQL databases (and two SQLite files), and every table the ingest writes is compared
row by row. Plus: duplicates within a batch, a bad item in the middle, a database refusal that sends the
batch back to the item-by-item path, and the number of statements a batch costs."""

from __future__ import annotations

import contextlib
import logging
import random
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, Integer, event, select, text
from sqlalchemy.engine.interfaces import ExecuteStyle
from uc_builders import T0, journey, make_services, order_placed

from app.ingest import runs
from app.services import Services
from infra.db import models as m
from infra.db.testing import fresh_postgres_database, migrated_sqlite_url
from posventa.errors import EventError
from posventa.events import parse_event
from posventa.plan import JourneyPlan

NOW = T0 + timedelta(days=2)
#: What the ingest writes; other tables must not change at all.
WRITTEN = (
    "events",
    "customers",
    "orders",
    "enrollments",
    "support_tickets",
    "feedback_responses",
    "suppressions",
    "referral_conversions",
)
#: Set from the wall clock when a row is written or updated: never equal between two runs.
WALL_CLOCK = {"created_at", "updated_at", "received_at", "opened_at"}

#: Conditions that count orders and complaints, and a per-customer entry rule with a cooldown (the
#: shipped journeys have neither on an event trigger): journey id → (trigger, entry rule).
EXTRA = {
    "repeat": (
        '{event: purchase, when: "customer.orders_count >= 1 and not customer.open_complaint"}',
        "{once_per: customer, cooldown: 30d}",
    ),
    "delivered": ('{event: order.delivered, when: "order.total > 40"}', "{once_per: order}"),
}


def _plans(shipped: dict[str, Any]) -> dict[str, JourneyPlan]:
    step = "{id: hello, type: send, template: thank_you, category: transactional}"
    extra = {
        name: journey(f"name: {name}\ntrigger: {trigger}\nentry: {entry}\nsteps: [{step}]\n", name)
        for name, (trigger, entry) in EXTRA.items()
    }
    return {**shipped, **extra}


def _engine(svc: Services) -> Engine:
    return svc.store.factory.kw["bind"]  # type: ignore[attr-defined,no-any-return]


def _seed(svc: Services) -> None:
    """A referral code whose orders convert (codes are random when a journey makes them)."""
    with svc.store.begin() as tx:
        tx.customers.ensure("c1")
        tx.session.add(m.ReferralCode(code="AMIGO123", customer_id="c1"))  # type: ignore[attr-defined]


# --- the random batches ----------------------------------------------------------------------------------
class Shop:
    """A shop's event stream about a few customers and orders, with the mistakes shops make."""

    def __init__(self, seed: int, customers: int = 6, orders: int = 8) -> None:
        self.r = random.Random(seed)
        self.customers, self.orders = customers, orders
        self.ids: list[str] = []
        self.owner: dict[str, str] = {}

    def customer(self) -> dict[str, Any]:
        r = self.r
        out: dict[str, Any] = {"id": f"c{r.randrange(self.customers)}"}
        for name, values in (
            ("email", ["a@example.com", "b@example.com", " B@Example.com ", None]),
            ("name", ["Ana", "Berta", None]),
            ("locale", ["es", "en"]),
            ("timezone", ["Europe/Madrid", "America/Bogota"]),
            ("consent_email", [True, False]),
            ("birthday", ["1990-05-04"]),
            ("attributes", [{"tier": "gold"}, {"tier": "silver", "pets": 2}, {}]),
        ):
            if r.random() < 0.4:
                out[name] = r.choice(values)
        return out

    def order(self, oid: str) -> dict[str, Any]:
        r = self.r
        out: dict[str, Any] = {"id": oid}
        for name, values in (
            ("total", [19.9, 59.9, 120]),
            ("currency", ["eur", "USD"]),
            ("channel", ["web", "store"]),
            ("promised_delivery_date", ["2026-03-06"]),
            ("items", [[{"sku": "CEP-01", "quantity": 2, "price": 10, "runs_out_in_days": 60}], []]),
            ("referral_code", ["amigo123", "NADIE"]),
            ("tracking_url", ["https://t.example/1"]),
            ("attributes", [{"gift": True}, {"gift": False, "note": "x"}]),
        ):
            if r.random() < 0.4:
                out[name] = r.choice(values)
        return out

    def event(self) -> Any:
        r = self.r
        if r.random() < 0.04:
            return r.choice([None, "not an event", {"id": "bad", "type": "order.teleported"}])
        if self.ids and r.random() < 0.1:
            eid = r.choice(self.ids)  # a retry: same id, maybe another body
        else:
            eid = f"e{len(self.ids)}-{r.randrange(10**6)}"
            self.ids.append(eid)
        kind = r.choice(
            ["order.placed"] * 4
            + ["purchase"] * 2
            + ["order.shipped", "order.delivered", "order.canceled", "order.returned", "return.requested"]
            + ["customer.updated", "ticket.opened", "ticket.resolved", "feedback.submitted"]
            + ["customer.unsubscribed", "email.opened", "referral.clicked"]
        )
        at = NOW - timedelta(hours=r.choice([1, 30, 24 * 9]))  # 9 days: stale for post_purchase
        ev: dict[str, Any] = {"id": eid, "type": kind, "occurred_at": at.isoformat()}
        customer = self.customer()
        if kind in ("order.placed", "customer.updated") or r.random() < 0.3:
            ev["customer"] = customer
        else:
            ev["customer_id"] = customer["id"]
        if kind.startswith(("order.", "return.")) or (kind == "purchase" and r.random() < 0.5):
            oid = f"o{r.randrange(self.orders)}"
            if kind == "order.placed" or r.random() < 0.3:
                ev["order"] = self.order(oid)
            else:
                ev["order_id"] = oid
        data: dict[str, Any] = {}
        if kind == "order.shipped" and r.random() < 0.5:
            data["tracking_url"] = "https://t.example/2"
        elif kind == "order.delivered" and r.random() < 0.5:
            data["delivered_at"] = (at - timedelta(hours=2)).isoformat()
        elif kind == "return.requested":
            data["rma_id"] = f"rma{r.randrange(3)}"
        elif kind.startswith("ticket."):
            data["ticket_id"] = f"t{r.randrange(3)}"
        elif kind == "feedback.submitted":
            data["score"] = r.choice([0, 7, 10, 11])  # 11: rejected
        elif kind == "referral.clicked":
            data["code"] = "AMIGO123"
        if data:
            ev["data"] = data
        return ev

    def batch(self) -> list[Any]:
        return [self.event() for _ in range(self.r.randint(2, 40))]


# --- comparing databases ---------------------------------------------------------------------------------
def dump(svc: Services) -> dict[str, Any]:
    """Every table the ingest writes, as sorted rows without wall-clock columns; serial ids as ranks (the
    sequences of two databases advance differently when a batch falls back). Other tables: row counts."""
    out: dict[str, Any] = {}
    with _engine(svc).connect() as conn:
        for table in m.Base.metadata.sorted_tables:
            if table.name not in WRITTEN:
                out[table.name] = len(conn.execute(select(table)).all())
                continue
            serial = "id" in table.c and isinstance(table.c.id.type, Integer)
            cols = [c for c in table.c if c.name not in WALL_CLOCK]
            rows = conn.execute(select(*cols).order_by(*table.primary_key.columns)).mappings().all()
            listed = [dict(row) for row in rows]
            if serial:
                for rank, row in enumerate(listed):
                    row["id"] = rank
            out[table.name] = sorted(listed, key=repr)
    return out


def both(batch_svc: Services, each_svc: Services, batches: list[list[Any]]) -> int:
    """Apply the batches set-based on one database, item by item on the other, compare; return how many
    events went through set-based runs of more than one event."""
    grouped = 0
    for batch in batches:
        parsed = []
        for n, raw in enumerate(batch):
            with contextlib.suppress(EventError):
                parsed.append((n, parse_event(raw)))
        grouped += sum(len(items) for bulk, items in runs(parsed) if bulk and len(items) > 1)
        got = batch_svc.ingest.apply(batch, "api", NOW, 0)
        want = each_svc.ingest.apply_each(batch, "api", NOW, 0)
        assert (got.accepted, got.duplicates, got.rejected) == (want.accepted, want.duplicates, want.rejected)
    assert dump(batch_svc) == dump(each_svc)
    return grouped


# --- fixtures --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_pair(
    shipped: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Services, Services]]:
    with fresh_postgres_database() as a, fresh_postgres_database() as b:
        tmp = tmp_path_factory.mktemp("ingest-batch")
        made = (
            make_services(a, tmp / "a", _plans(shipped), clock=lambda: NOW),
            make_services(b, tmp / "b", _plans(shipped), clock=lambda: NOW),
        )
        yield made
        for svc in made:
            svc.store.dispose()  # type: ignore[attr-defined]


@pytest.fixture
def pg(pg_pair: tuple[Services, Services]) -> tuple[Services, Services]:
    """The two PostgreSQL databases emptied but for the published journeys and the seed."""
    for svc in pg_pair:
        with _engine(svc).begin() as conn:
            for name in ("referral_conversions", "referral_codes", *reversed(WRITTEN)):
                conn.execute(text(f"DELETE FROM {name}"))
        _seed(svc)
    return pg_pair


@pytest.fixture
def lite(shipped: dict[str, Any], tmp_path: Path) -> Iterator[tuple[Services, Services]]:
    made = tuple(
        make_services(
            migrated_sqlite_url(tmp_path / name), tmp_path / name, _plans(shipped), clock=lambda: NOW
        )
        for name in ("a", "b")
    )
    for svc in made:
        _seed(svc)
    yield made  # type: ignore[misc]
    for svc in made:
        svc.store.dispose()  # type: ignore[attr-defined]


# --- tests -----------------------------------------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.parametrize("seed", range(12))
def test_random_batches_write_what_one_by_one_writes_postgres(
    pg: tuple[Services, Services], seed: int
) -> None:
    shop = Shop(seed)
    both(*pg, [shop.batch() for _ in range(4)])


@pytest.mark.parametrize("seed", range(3))
def test_random_batches_write_what_one_by_one_writes_sqlite(
    lite: tuple[Services, Services], seed: int
) -> None:
    shop = Shop(100 + seed, customers=6 + 100 * seed, orders=8 + 100 * seed)
    assert both(*lite, [shop.batch() for _ in range(3)]) >= 2


def test_runs_keep_events_about_one_customer_or_order_apart() -> None:
    def ev(eid: str, kind: str, cid: str, oid: str | None = None) -> Any:
        raw: dict[str, Any] = {"id": eid, "type": kind, "occurred_at": T0.isoformat(), "customer_id": cid}
        if kind == "ticket.opened":
            raw["data"] = {"ticket_id": "t1"}
        if oid:
            raw["order_id"] = oid
        return parse_event(raw)

    parsed = list(
        enumerate(
            [
                ev("a", "purchase", "c1"),
                ev("b", "purchase", "c2", "o1"),
                ev("a", "purchase", "c3"),  # the same id again: a new run (it is a duplicate there)
                ev("c", "order.shipped", "c4", "o1"),  # o1 is in the first run, not in this one
                ev("d", "ticket.opened", "c5"),  # alone, in its place
                ev("e", "purchase", "c6"),
            ]
        )
    )
    cut = [(bulk, [n for n, _ in items]) for bulk, items in runs(parsed)]
    assert cut == [(True, [0, 1]), (True, [2, 3]), (False, [4]), (True, [5])]


@pytest.mark.postgres
def test_duplicates_within_a_batch_count_once(pg: tuple[Services, Services]) -> None:
    svc, each = pg
    first = order_placed("ana", "o-1")
    batch = [
        first,
        order_placed("eva", "o-2"),
        dict(first),
        {**first, "customer": {"id": "ana", "name": "Otra"}},
    ]
    report = svc.ingest.apply(batch, "api", NOW, 0)
    assert (report.accepted, report.duplicates, report.rejected) == (2, 2, [])
    again = svc.ingest.apply(batch, "api", NOW, 0)
    assert (again.accepted, again.duplicates) == (0, 4)
    each.ingest.apply_each(batch, "api", NOW, 0)
    each.ingest.apply_each(batch, "api", NOW, 0)
    assert dump(svc) == dump(each)
    with _engine(svc).connect() as conn:
        assert conn.execute(text("SELECT name FROM customers WHERE id = 'ana'")).scalar() == "Cliente ana"


@pytest.mark.postgres
def test_a_bad_item_mid_batch_is_rejected_by_position(pg: tuple[Services, Services]) -> None:
    svc, each = pg
    batch: list[Any] = [order_placed(f"k{i}", f"ok{i}") for i in range(6)]
    batch[3] = {**order_placed("bad", "o-bad"), "occurred_at": "yesterday"}
    batch.insert(5, ["not", "an", "object"])
    report = svc.ingest.apply(batch, "api", NOW, 0)
    assert report.accepted == 5 and [n for n, _ in report.rejected] == [3, 5]
    assert report.rejected[0][1].startswith("occurred_at:")
    each.ingest.apply_each(batch, "api", NOW, 0)
    assert dump(svc) == dump(each)


@pytest.mark.postgres
def test_a_database_refusal_sends_the_batch_item_by_item(
    pg: tuple[Services, Services], caplog: pytest.LogCaptureFixture
) -> None:
    """A rule of this database that Posventa's checks do not know: the multi-row upsert is refused as a
    whole, so the batch is applied again item by item, where only the refused item is rolled back."""
    svc, each = pg
    for s in pg:
        with _engine(s).begin() as conn:
            conn.execute(
                text("ALTER TABLE customers ADD CONSTRAINT probe CHECK (name IS DISTINCT FROM 'Refused')")
            )
    try:
        batch = [order_placed(f"k{i}", f"ok{i}") for i in range(5)]
        batch[2]["customer"]["name"] = "Refused"
        with caplog.at_level(logging.INFO, logger="posventa.ingest"):
            report = svc.ingest.apply(batch, "api", NOW, 0)
        assert "applying the batch item by item" in caplog.text
        assert report.accepted == 4 and [n for n, _ in report.rejected] == [2]
        assert report.rejected[0][1].startswith("customer: the database refused this item")
        want = each.ingest.apply_each(batch, "api", NOW, 0)
        assert report.rejected == want.rejected
        assert dump(svc) == dump(each)
        with _engine(svc).connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM events WHERE customer_id = 'k2'")).scalar() == 0
    finally:
        for s in pg:
            with _engine(s).begin() as conn:
                conn.execute(text("ALTER TABLE customers DROP CONSTRAINT probe"))


def test_a_database_refusal_on_sqlite_too(lite: tuple[Services, Services]) -> None:
    svc, each = lite
    for s in lite:
        with _engine(s).begin() as conn:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_probe BEFORE INSERT ON customers WHEN NEW.name = 'Refused' "
                    "BEGIN SELECT RAISE(ABORT, 'probe: name refused'); END"
                )
            )
    batch = [order_placed(f"k{i}", f"ok{i}") for i in range(5)]
    batch[2]["customer"]["name"] = "Refused"
    report = svc.ingest.apply(batch, "api", NOW, 0)
    assert report.accepted == 4 and [n for n, _ in report.rejected] == [2]
    each.ingest.apply_each(batch, "api", NOW, 0)
    assert dump(svc) == dump(each)


@pytest.mark.postgres
def test_a_batch_costs_a_few_statements_not_a_few_per_event(pg: tuple[Services, Services]) -> None:
    svc, _ = pg
    batch = [order_placed(f"n{i}", f"on{i}", at=NOW - timedelta(hours=1)) for i in range(50)]
    round_trips: list[int] = []

    def count(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        # A plain executemany is a round trip per row; insertmanyvalues is one per statement.
        style = getattr(context, "execute_style", None)
        round_trips.append(len(params) if style is ExecuteStyle.EXECUTEMANY else 1)

    event.listen(_engine(svc), "before_cursor_execute", count)
    try:
        report = svc.ingest.apply(batch, "api", NOW, 0)
    finally:
        event.remove(_engine(svc), "before_cursor_execute", count)
    assert report.accepted == 50
    # events, customers, orders, the live journeys, enrollments, wake.
    assert sum(round_trips) <= 8, round_trips
    with _engine(svc).connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM enrollments")).scalar() == 50


@pytest.mark.postgres
def test_a_batch_retried_while_it_is_still_running_applies_once(pg: tuple[Services, Services]) -> None:
    """A client that times out and sends the same batch again while the first is still being applied: the
    second waits for the first (the event ids' unique index), then finds every event a duplicate."""
    svc, each = pg
    batch = [order_placed(f"r{i}", f"or{i}", at=NOW - timedelta(hours=1)) for i in range(40)]
    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: svc.ingest.apply(batch, "api", NOW, 0), range(2)))
    assert sorted((r.accepted, r.duplicates, r.rejected) for r in reports) == [(0, 40, []), (40, 0, [])]
    each.ingest.apply_each(batch, "api", NOW, 0)
    assert dump(svc) == dump(each)


@pytest.mark.postgres
def test_an_event_one_by_one_after_a_run_sees_what_the_run_wrote(pg: tuple[Services, Services]) -> None:
    """A ticket loads the customer, a run changes their address set-based, an unsubscribe one by one
    suppresses the address as it is now, not as the ticket saw it."""
    svc, each = pg
    at = (NOW - timedelta(hours=1)).isoformat()
    first = {
        "id": "cu0",
        "type": "customer.updated",
        "occurred_at": at,
        "customer": {"id": "ana", "email": "old@example.com"},
    }
    batch = [
        {
            "id": "t1",
            "type": "ticket.opened",
            "occurred_at": at,
            "customer_id": "ana",
            "data": {"ticket_id": "T1"},
        },
        {
            "id": "cu1",
            "type": "customer.updated",
            "occurred_at": at,
            "customer": {"id": "ana", "email": "new@example.com"},
        },
        {"id": "cu2", "type": "customer.updated", "occurred_at": at, "customer": {"id": "eva"}},
        {"id": "un1", "type": "customer.unsubscribed", "occurred_at": at, "customer_id": "ana"},
    ]
    assert [bulk for bulk, _ in runs(list(enumerate(parse_event(e) for e in batch)))] == [False, True, False]
    for s in pg:
        s.ingest.apply_each([first], "api", NOW, 0)
    svc.ingest.apply(batch, "api", NOW, 0)
    each.ingest.apply_each(batch, "api", NOW, 0)
    assert dump(svc) == dump(each)
    with _engine(svc).connect() as conn:
        assert conn.execute(text("SELECT email FROM suppressions")).scalars().all() == ["new@example.com"]


def _customer_updated(eid: str, cid: str, **fields: str) -> dict[str, Any]:
    at = (NOW - timedelta(hours=1)).isoformat()
    return {"id": eid, "type": "customer.updated", "occurred_at": at, "customer": {"id": cid, **fields}}


@pytest.mark.postgres
def test_two_batches_that_deadlock_set_based_are_applied_item_by_item(
    pg: tuple[Services, Services], caplog: pytest.LogCaptureFixture
) -> None:
    """Batch A's customer upserts go by shape ((name): c1, c3, then (email): c2), so A locks c3 before c2
    while B locks c2 before c3. Both workers are held until each has its first locks, so they deadlock
    every time: PostgreSQL rolls one back, and that one is applied again item by item — neither client
    sees an error, and every event is applied once. (Found in review: the client got a 500.)"""
    svc, _ = pg
    with svc.store.begin() as tx:
        for cid in ("c1", "c2", "c3"):
            tx.customers.ensure(cid)
    a = [
        _customer_updated("a1", "c1", name="A"),
        _customer_updated("a2", "c2", email="a@example.com"),
        _customer_updated("a3", "c3", name="A"),
    ]
    b = [_customer_updated("b1", "c2", name="B"), _customer_updated("b2", "c3", email="b@example.com")]
    engine = _engine(svc)
    meet = threading.Barrier(2, timeout=5)
    seen = threading.local()

    def hold(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE customers") or (
            statement.startswith("INSERT INTO customers") and "ON CONFLICT" in statement
        ):
            seen.n = getattr(seen, "n", 0) + 1
            if seen.n == 2:  # this worker holds its first customer locks: wait for the other's
                with contextlib.suppress(threading.BrokenBarrierError):
                    meet.wait()

    event.listen(engine, "before_cursor_execute", hold)
    caplog.set_level(logging.INFO, logger="posventa")
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [pool.submit(svc.ingest.apply, batch, "api", NOW, 0) for batch in (a, b)]
            reports = [f.result() for f in futures]
    finally:
        event.remove(engine, "before_cursor_execute", hold)
    assert [(r.accepted, r.rejected) for r in reports] == [(3, []), (2, [])]
    assert "lost a race with another transaction" in caplog.text  # the deadlock did happen
    with engine.connect() as conn:
        names = dict(conn.execute(select(m.Customer.id, m.Customer.name)).all())
        emails = dict(conn.execute(select(m.Customer.id, m.Customer.email)).all())
        applied = conn.execute(select(m.StoredEvent.id).order_by(m.StoredEvent.id)).scalars().all()
    assert names["c1"] == "A" and names["c2"] in ("A", "B") and names["c3"] in ("A", "B")
    assert emails["c2"] == "a@example.com" and emails["c3"] == "b@example.com"
    assert applied == ["a1", "a2", "a3", "b1", "b2"]

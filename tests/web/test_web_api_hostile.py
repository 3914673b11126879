"""POST /v1/events never answers 500 and never loses a batch's good items: each shape reported in issue 11
(a NUL in any string, an instant whose UTC conversion leaves the calendar, an amount beyond NUMERIC(12, 2),
CR/LF in a name) and others is a 207 item error naming its index and field — and so is an item the
database itself refuses (one savepoint per item)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session
from web_builders import ev, order_placed

from app.services import Services
from infra.db import models as m

pytestmark = pytest.mark.postgres


def placed(n: int, **customer: Any) -> dict[str, Any]:
    event = order_placed(f"c{n}", f"o{n}")
    event["customer"].update(customer)
    return event


def with_order(n: int, **order: Any) -> dict[str, Any]:
    event = order_placed(f"c{n}", f"o{n}")
    event["order"].update(order)
    return event


#: name → (bad item, the field its error must name). Each shape of the issue, and more.
BAD: dict[str, tuple[Any, str]] = {
    # a NUL in any string: PostgreSQL text and JSONB cannot hold it
    "NUL in the id": (ev("a\x00b", "purchase"), "id"),
    "NUL in customer_id": (ev("n1", "purchase", customer_id="c\x00"), "customer_id"),
    "NUL in order_id": (ev("n2", "order.shipped", order_id="o\x00"), "order_id"),
    "NUL in the type": (ev("n3", "purchase\x00"), "type"),
    "NUL in a name": (placed(10, name="Ana\x00García"), "customer.name"),
    "NUL in an email": (placed(11, email="ana\x00@example.com"), "customer.email"),
    "NUL in an item name": (with_order(12, items=[{"sku": "A", "name": "x\x00"}]), "order.items.0.name"),
    "NUL in a payload string": (
        ev("n4", "ticket.opened", data={"ticket_id": "T1", "subject": "roto\x00"}),
        "data.subject",
    ),
    "NUL in a comment": (
        ev("n5", "feedback.submitted", data={"score": 5, "comment": "\x00"}),
        "data.comment",
    ),
    "NUL in an attribute key": (placed(13, attributes={"vip\x00": True}), "customer.attributes"),
    "NUL in a nested attribute": (placed(14, attributes={"a": {"b": ["ok", "\x00"]}}), "customer.attributes"),
    # instants whose UTC conversion leaves the representable range
    "year 1 with an offset": (ev("t1", "purchase", occurred_at="0001-01-01T00:00:00+01:00"), "occurred_at"),
    "year 9999 with an offset": (
        ev("t2", "purchase", occurred_at="9999-12-31T23:59:59-01:00"),
        "occurred_at",
    ),
    "year 1850": (ev("t3", "purchase", occurred_at="1850-06-01T00:00:00Z"), "occurred_at"),
    "naive instant": (ev("t4", "purchase", occurred_at="2026-03-02T10:00:00"), "occurred_at"),
    "delivered_at in year 9999": (
        ev("t5", "order.delivered", order_id="o1", data={"delivered_at": "9999-12-31T23:00:00-05:00"}),
        "data.delivered_at",
    ),
    "birthday in year 1": (placed(15, birthday="0001-01-01"), "customer.birthday"),
    "promised date in year 9999": (with_order(16, promised_delivery_date="9999-12-31"), "order"),
    # amounts beyond NUMERIC(12, 2)
    "order total over the column": (with_order(17, total=1e13), "order.total"),
    "order total one cent over": (with_order(18, total=10_000_000_000.00), "order.total"),
    "order total over-precise at the edge": (with_order(19, total=9_999_999_999.999), "order.total"),
    "negative total": (with_order(20, total=-1), "order.total"),
    "price over the column": (with_order(21, items=[{"sku": "A", "price": 1e20}]), "order.items.0.price"),
    "purchase total over": (ev("m1", "purchase", data={"total": 1e300}), "data.total"),
    "refund over": (
        ev("m2", "return.received", order_id="o1", data={"rma_id": "R", "refund_amount": 1e15}),
        "data.refund_amount",
    ),
    "attribute number beyond 2^53": (placed(22, attributes={"n": 2**60}), "customer.attributes"),
    # CR/LF and other controls in single-line text
    "CR/LF in a name": (placed(23, name="Ana\r\nBcc: x@example.com"), "customer.name"),
    "LF in an email": (placed(24, email="a@example.com\nBcc: b@example.com"), "customer.email"),
    "ANSI escape in a name": (placed(25, name="\x1b[31mAna"), "customer.name"),
    "lone surrogate in a name": (placed(26, name="Ana\ud800"), "customer.name"),
    # lengths
    "id of 129 characters": (ev("x" * 129, "purchase"), "id"),
    "name of 201 characters": (placed(27, name="n" * 201), "customer.name"),
    "email of 400 characters": (placed(28, email="a" * 390 + "@example.com"), "customer.email"),
    "attributes 40 levels deep": (
        placed(29, attributes=json.loads('{"a":' * 40 + "1" + "}" * 40)),
        "customer",
    ),
    # other shapes
    "null": (None, "(event)"),
    "a number": (3.5, "(event)"),
    "a string": ("order.placed", "(event)"),
    "a list": ([order_placed("c1", "o1")], "(event)"),
    "no type": ({"id": "z1", "occurred_at": "2026-03-02T10:00:00Z", "customer_id": "c1"}, "type"),
    "type a number": (ev("z2", 7), "type"),  # type: ignore[arg-type]
    "data a list": (ev("z3", "purchase", data=[1]), "data"),
    "customer a string": ({**ev("z4", "purchase"), "customer": "ana"}, "customer"),
    "customer ids that differ": ({**placed(30), "customer_id": "other"}, "customer.id"),
    "score a string": (ev("z5", "feedback.submitted", data={"score": "ten"}), "data.score"),
    "unknown field": ({**ev("z6", "purchase"), "colour": "red"}, "colour"),
    "unknown time zone": (placed(31, timezone="Mars/Olympus"), "customer.timezone"),
}


def good(i: int) -> dict[str, Any]:
    return ev(f"good-{i}", "ticket.opened", customer_id=f"g{i}", data={"ticket_id": f"G{i}"})


def stored_ids(session: Session) -> set[str]:
    session.expire_all()
    return set(session.scalars(select(m.StoredEvent.id)))


def post(client: TestClient, auth: dict[str, str], body: Any) -> Any:
    """JSON with ASCII escapes: a lone surrogate travels as ``\\ud800``, as a shop's JSON library sends it."""
    headers = {**auth, "Content-Type": "application/json"}
    return client.post("/v1/events", content=json.dumps(body).encode(), headers=headers)


def check_interleaved(client: TestClient, auth: dict[str, str], bad: list[tuple[Any, str]]) -> dict[int, Any]:
    """Post good, bad, good, bad… good; every good item is applied, every bad one named by index and
    field. Returns the rejected items by index."""
    batch: list[Any] = [good(0)]
    for n, (item, _) in enumerate(bad, 1):
        batch += [item, good(n)]
    r = post(client, auth, {"events": batch})
    assert r.status_code == 207, r.text
    body = r.json()
    assert (body["accepted"], body["duplicates"]) == (len(bad) + 1, 0), body
    rejected = {item["index"]: item["errors"] for item in body["rejected"]}
    assert sorted(rejected) == [2 * n - 1 for n in range(1, len(bad) + 1)], rejected
    for n, (_, field) in enumerate(bad, 1):
        errors = rejected[2 * n - 1]
        assert any(e.startswith(field) for e in errors), (field, errors)
    return rejected


@pytest.mark.parametrize("name", BAD)
def test_each_bad_shape_is_an_item_error_and_the_good_items_are_kept(
    client: TestClient, auth: dict[str, str], session: Session, name: str
) -> None:
    check_interleaved(client, auth, [BAD[name]])
    assert stored_ids(session) == {"good-0", "good-1"}


def test_all_bad_shapes_in_one_batch(client: TestClient, auth: dict[str, str], session: Session) -> None:
    check_interleaved(client, auth, list(BAD.values()))
    assert stored_ids(session) == {f"good-{i}" for i in range(len(BAD) + 1)}


def test_a_batch_of_only_bad_items_is_422(client: TestClient, auth: dict[str, str]) -> None:
    r = post(client, auth, [item for item, _ in BAD.values()])
    assert r.status_code == 422
    assert [item["index"] for item in r.json()["rejected"]] == list(range(len(BAD)))


# --- the database refuses an item --------------------------------------------------------------------------
REFUSED_NAME = "Refusé Por-la-Base"


@pytest.fixture
def refusing_db(svc: Services, session: Session) -> Iterator[None]:
    """A database that refuses what Posventa's checks let through: a constraint added by hand (an older or
    stricter schema, a DBA's rule, a trigger)."""
    engine = session.get_bind()
    with engine.begin() as conn:
        conn.execute(
            text(f"ALTER TABLE customers ADD CONSTRAINT probe_name CHECK (name <> '{REFUSED_NAME}')")
        )
        conn.execute(
            text("ALTER TABLE orders ADD CONSTRAINT probe_total CHECK (total IS NULL OR total <> 13.13)")
        )
    try:
        yield
    finally:
        session.close()  # its reads hold a lock that ALTER TABLE would wait for
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE customers DROP CONSTRAINT probe_name"))
            conn.execute(text("ALTER TABLE orders DROP CONSTRAINT probe_total"))


def test_an_item_the_database_refuses_is_an_item_error(
    client: TestClient, auth: dict[str, str], session: Session, refusing_db: None
) -> None:
    refused_customer = placed(40, name=REFUSED_NAME, email="refused.person@example.com")
    refused_order = with_order(41, total=13.13)
    rejected = check_interleaved(client, auth, [(refused_customer, "customer"), (refused_order, "order")])
    assert 'constraint "probe_name"' in rejected[1][0] and 'constraint "probe_total"' in rejected[3][0]
    text_ = json.dumps(rejected)
    assert "refused.person" not in text_ and REFUSED_NAME not in text_ and "13.13" not in text_
    assert stored_ids(session) == {"good-0", "good-1", "good-2"}
    session.expire_all()
    assert session.get(m.Customer, "c40") is None and session.get(m.Order, "o41") is None  # rolled back alone
    # and the item goes through once the database accepts it
    placed_again = placed(40, name="Ana", email="refused.person@example.com")
    assert client.post("/v1/events", json=placed_again, headers=auth).json()["accepted"] == 1

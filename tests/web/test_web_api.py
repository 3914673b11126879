"""POST /v1/events and the API's edges: auth, sizes, malformed bodies, duplicates, OpenAPI, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from web_builders import T0, ev, order_placed

from app.services import Services
from infra.db import models as m
from infra.settings import Settings
from posventa.events import EVENT_TYPES
from web.app import create_app
from web.limits import Limits

pytestmark = pytest.mark.postgres

#: One valid example per catalogue type. A new type without an example fails the test below.
EXAMPLES: dict[str, dict[str, Any]] = {
    "order.placed": order_placed("c1", "o1"),
    "order.shipped": ev(
        "e-shipped",
        "order.shipped",
        order_id="o1",
        data={"carrier": "SEUR", "tracking_url": "https://track.example/1"},
    ),
    "order.delivered": ev(
        "e-delivered", "order.delivered", order_id="o1", data={"delivered_at": "2026-03-04T12:00:00+01:00"}
    ),
    "order.canceled": ev("e-canceled", "order.canceled", order_id="o2", data={"reason": "changed mind"}),
    "order.returned": ev(
        "e-returned", "order.returned", order_id="o3", data={"reason": "size", "rma_id": "R1"}
    ),
    "return.requested": ev(
        "e-rreq", "return.requested", order_id="o1", data={"rma_id": "R2", "sku": "TB-01"}
    ),
    "return.received": ev(
        "e-rrec", "return.received", order_id="o1", data={"rma_id": "R2", "refund_amount": 10}
    ),
    "feedback.submitted": ev(
        "e-fb", "feedback.submitted", order_id="o1", data={"score": 8, "comment": "bien"}
    ),
    "ticket.opened": ev("e-topen", "ticket.opened", data={"ticket_id": "T1", "subject": "roto"}),
    "ticket.resolved": ev("e-tres", "ticket.resolved", data={"ticket_id": "T1"}),
    "customer.updated": {
        **ev("e-cu", "customer.updated", customer_id="c2"),
        "customer": {"id": "c2", "email": "c2@example.com", "locale": "en"},
    },
    "customer.unsubscribed": ev(
        "e-unsub", "customer.unsubscribed", customer_id="c2", data={"scope": "promotional", "source": "shop"}
    ),
    "purchase": ev("e-purchase", "purchase", customer_id="c3", data={"total": 12.5}),
    "email.delivered": ev("e-edel", "email.delivered", data={"ledger_key": "x:y:0"}),
    "email.opened": ev("e-eopen", "email.opened", data={"ledger_key": "x:y:0"}),
    "email.clicked": ev(
        "e-eclick", "email.clicked", data={"ledger_key": "x:y:0", "url": "https://a.example"}
    ),
    "email.bounced": ev("e-ebounce", "email.bounced", data={"ledger_key": "x:y:0"}),
    "referral.clicked": ev("e-ref", "referral.clicked", data={"code": "ABCD2345"}),
}


def count(s: Session, model: type[m.Base]) -> int:
    return int(s.scalar(select(func.count()).select_from(model)) or 0)


def test_every_catalogue_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(EVENT_TYPES)


def test_every_event_type_is_accepted(client: TestClient, auth: dict[str, str], session: Session) -> None:
    r = client.post("/v1/events", json={"events": list(EXAMPLES.values())}, headers=auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": len(EXAMPLES), "duplicates": 0, "rejected": []}
    types = set(session.scalars(select(m.StoredEvent.type)))
    assert types == set(EVENT_TYPES)
    # the order.placed enrolled the customer in post_purchase
    assert (
        session.scalar(select(m.Enrollment.journey_id).where(m.Enrollment.customer_id == "c1"))
        == "post_purchase"
    )


def test_one_event_object_and_a_bare_array(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/v1/events", json=order_placed("c9", "o9"), headers=auth)
    assert (r.status_code, r.json()) == (200, {"accepted": 1, "duplicates": 0, "rejected": []})
    r = client.post("/v1/events", json=[ev("a1", "purchase", "c9"), ev("a2", "purchase", "c9")], headers=auth)
    assert r.json()["accepted"] == 2


def test_a_batch_with_bad_items_applies_the_good_ones(
    client: TestClient, auth: dict[str, str], session: Session
) -> None:
    batch = [
        order_placed("c1", "o1"),  # 0 good
        ev("bad-score", "feedback.submitted", data={"score": 11}),  # 1
        ev("bad-order", "order.shipped"),  # 2: no order
        ev("bad-type", "order.shiped", order_id="o1"),  # 3: typo
        42,  # 4: not an object
        {
            "id": "bad-env",
            "type": "purchase",
            "occurred_at": "yesterday",
            "customer_id": "c1",
            "colour": "red",
        },  # 5
        ev("good-2", "ticket.opened", data={"ticket_id": "T9"}),  # 6 good
    ]
    r = client.post("/v1/events", json={"events": batch}, headers=auth)
    assert r.status_code == 207, r.text
    body = r.json()
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    errors = {item["index"]: item["errors"] for item in body["rejected"]}
    assert sorted(errors) == [1, 2, 3, 4, 5]
    assert errors[1] == ["data.score: Input should be less than or equal to 10"]
    assert any(e.startswith("order_id: required for 'order.shipped'") for e in errors[2])
    assert errors[3] == ["type: unknown event type 'order.shiped' (did you mean 'order.shipped'?)"]
    assert errors[4] == ["(event): expected a JSON object, got int"]
    assert any(e.startswith("occurred_at:") for e in errors[5]) and "colour: unknown field" in errors[5]
    assert set(session.scalars(select(m.StoredEvent.id))) == {"placed-o1", "good-2"}


def test_all_items_rejected_is_422(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/v1/events", json=ev("x", "feedback.submitted", data={}), headers=auth)
    assert r.status_code == 422
    assert r.json()["rejected"] == [{"index": 0, "errors": ["data.score: Field required"]}]


def test_duplicates_change_nothing(client: TestClient, auth: dict[str, str], session: Session) -> None:
    batch = {"events": [order_placed("c1", "o1"), ev("t1", "ticket.opened", data={"ticket_id": "T1"})]}
    assert client.post("/v1/events", json=batch, headers=auth).json()["accepted"] == 2
    before = {
        model.__name__: count(session, model)
        for model in (m.StoredEvent, m.Enrollment, m.Customer, m.Order, m.SupportTicket)
    }
    r = client.post("/v1/events", json=batch, headers=auth)
    assert (r.status_code, r.json()) == (200, {"accepted": 0, "duplicates": 2, "rejected": []})
    session.expire_all()
    after = {
        model.__name__: count(session, model)
        for model in (m.StoredEvent, m.Enrollment, m.Customer, m.Order, m.SupportTicket)
    }
    assert after == before


@pytest.mark.parametrize(
    "headers, code",
    [
        ({}, "missing-api-key"),
        ({"Authorization": "Bearer pv_not-a-key"}, "invalid-api-key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "missing-api-key"),
        ({"Authorization": "Bearer "}, "missing-api-key"),
    ],
)
def test_auth_failures(client: TestClient, headers: dict[str, str], code: str, session: Session) -> None:
    r = client.post("/v1/events", json=order_placed("c1", "o1"), headers=headers)
    assert r.status_code == 401
    assert r.json()["error"] == code and r.json()["request_id"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert count(session, m.StoredEvent) == 0


def test_a_revoked_key_is_refused(
    client: TestClient, svc: Services, api_key: str, auth: dict[str, str]
) -> None:
    assert client.post("/v1/events", json=ev("p1", "purchase"), headers=auth).status_code == 200
    with svc.store.begin() as tx:
        assert tx.api_keys.revoke(api_key)
    r = client.post("/v1/events", json=ev("p2", "purchase"), headers=auth)
    assert (r.status_code, r.json()["error"]) == (401, "invalid-api-key")


def test_body_over_one_mib_is_413(client: TestClient, auth: dict[str, str], session: Session) -> None:
    big = ev("big", "ticket.opened", data={"ticket_id": "T1", "subject": "x" * (1024 * 1024)})
    r = client.post("/v1/events", json=big, headers=auth)
    assert (r.status_code, r.json()["error"]) == (413, "too-large")
    # without Content-Length (chunked): the stream is cut at the limit too
    r = client.post(
        "/v1/events",
        content=iter([b"[" + b" " * (600 * 1024), b" " * (600 * 1024) + b"]"]),
        headers={**auth, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    r = client.post(
        "/v1/events", json={"events": [ev(f"e{i}", "purchase") for i in range(1001)]}, headers=auth
    )
    assert r.status_code == 413 and "1000 events" in r.json()["message"]
    assert count(session, m.StoredEvent) == 0


@pytest.mark.parametrize(
    "body, code, words",
    [
        (b"{not json", "invalid-json", "not valid JSON"),
        (b"", "empty-body", "empty"),
        (b"42", "invalid-batch", "event object"),
        (b'"order.placed"', "invalid-batch", "event object"),
        (b'{"events": 5}', "invalid-batch", "no other field"),
        (b'{"events": [], "x": 1}', "invalid-batch", "no other field"),
        (b'{"id": NaN}', "invalid-json", "NaN"),
        (b"\xff\xfe", "invalid-json", "UTF-8"),
    ],
)
def test_malformed_bodies_are_400(
    client: TestClient, auth: dict[str, str], body: bytes, code: str, words: str
) -> None:
    r = client.post("/v1/events", content=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == code and words in r.json()["message"]


def test_openapi_documents_envelope_and_payloads(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for name in EVENT_TYPES:
        typed = schemas["Event_" + name.replace(".", "_")]
        assert typed["allOf"][1]["properties"]["type"] == {"const": name}
    assert schemas["FeedbackSubmitted"]["properties"]["score"]["maximum"] == 10
    assert "occurred_at" in schemas["EventIn"]["properties"]
    body = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["oneOf"] == [
        {"$ref": "#/components/schemas/Event"},
        {"$ref": "#/components/schemas/EventBatch"},
    ]
    assert set(doc["paths"]["/v1/events"]["post"]["responses"]) >= {"200", "207", "400", "401", "413", "429"}
    assert doc["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    refs = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].rsplit("/", 1)[-1])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(doc)
    assert refs <= set(schemas), f"dangling refs: {refs - set(schemas)}"
    assert client.get("/docs").status_code == 200
    types = client.get("/v1/event-types").json()
    assert set(types["types"]) == set(EVENT_TYPES) and "properties" in types["envelope"]


def test_api_rate_limit_per_key(svc: Services, settings: Settings, auth: dict[str, str]) -> None:
    client = TestClient(create_app(svc, settings=settings, limits=Limits(api_rate=0.01, api_burst=2)))
    statuses = [
        client.post("/v1/events", json=ev(f"r{i}", "purchase"), headers=auth).status_code for i in range(3)
    ]
    assert statuses == [200, 200, 429]
    r = client.post("/v1/events", json=ev("r9", "purchase"), headers=auth)
    assert r.json()["error"] == "rate-limited" and int(r.headers["Retry-After"]) >= 1
    # another key has its own bucket
    with svc.store.begin() as tx:
        other = tx.api_keys.create("shop-2")
    assert (
        client.post(
            "/v1/events", json=ev("r10", "purchase"), headers={"Authorization": f"Bearer {other}"}
        ).status_code
        == 200
    )


def test_unexpected_errors_show_no_traceback(
    svc: Services,
    settings: Settings,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database password is hunter2")

    monkeypatch.setattr(svc.ingest, "apply", explode)
    client = TestClient(create_app(svc, settings=settings), raise_server_exceptions=False)
    r = client.post("/v1/events", json=ev("x", "purchase"), headers=auth)
    assert r.status_code == 500
    body = r.json()
    assert body["error"] == "internal" and body["request_id"] == r.headers["X-Request-ID"]
    assert "hunter2" not in r.text and "Traceback" not in r.text
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert any(body["request_id"] in rec.getMessage() for rec in caplog.records)


def test_security_headers_and_request_id(client: TestClient) -> None:
    r = client.get("/v1/event-types", headers={"X-Request-ID": "trace-abc-123"})
    assert r.headers["X-Request-ID"] == "trace-abc-123"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    r = client.get("/v1/event-types", headers={"X-Request-ID": "<script>"})
    assert r.headers["X-Request-ID"] != "<script>"


def test_exactly_the_cap_is_accepted(client: TestClient, auth: dict[str, str]) -> None:
    batch = {"events": [ev(f"p{i}", "purchase", data={"total": -1}) for i in range(1000)]}  # fast to reject
    assert len(json.dumps(batch)) < 1024 * 1024
    r = client.post("/v1/events", json=batch, headers=auth)
    assert r.status_code == 422 and len(r.json()["rejected"]) == 1000
    assert r.json()["rejected"][999] == {
        "index": 999,
        "errors": ["data.total: Input should be greater than or equal to 0"],
    }


def test_event_time_is_kept(client: TestClient, auth: dict[str, str], session: Session) -> None:
    client.post("/v1/events", json=ev("t", "purchase", at=T0), headers=auth)
    assert session.scalar(select(m.StoredEvent.occurred_at).where(m.StoredEvent.id == "t")) == T0

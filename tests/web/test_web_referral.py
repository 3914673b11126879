"""GET /r/<code> and GET /v1/reports/referrals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_builders import T0, Clock, order_placed

from app.services import Services
from infra.db import models as m
from infra.settings import Settings
from web.app import create_app

pytestmark = pytest.mark.postgres


def code_for(svc: Services, cid: str) -> str:
    svc.ingest.apply([order_placed(cid, f"o-{cid}")], "api", T0)
    with svc.store.begin() as tx:
        return tx.referrals.code_for(cid, "post_purchase")


def clicks(s: Session) -> list[tuple[str, dict[str, str]]]:
    s.expire_all()
    return [
        (e.customer_id, dict(e.data))
        for e in s.scalars(select(m.StoredEvent).where(m.StoredEvent.type == "referral.clicked"))
    ]


def test_a_known_code_redirects_with_ref_and_counts_the_click(
    client: TestClient, svc: Services, session: Session, clock: Clock
) -> None:
    code = code_for(svc, "ana")
    r = client.get(f"/r/{code.lower()}", follow_redirects=False)  # read aloud, typed in lower case
    assert r.status_code == 303
    assert r.headers["location"] == f"http://testserver?ref={code}"
    assert r.headers["Referrer-Policy"] == "no-referrer" and r.headers["Cache-Control"] == "no-store"
    assert clicks(session) == [("ana", {"code": code})]
    # the same visitor reloading within the hour is one click; another visitor is another
    client.get(f"/r/{code}", follow_redirects=False)
    assert len(clicks(session)) == 1
    client.get(f"/r/{code}", follow_redirects=False, headers={"User-Agent": "another browser"})
    clock.set(T0 + timedelta(hours=2))
    client.get(f"/r/{code}", follow_redirects=False)
    assert len(clicks(session)) == 3


@pytest.mark.parametrize("code", ["NOPE2345", "a", "%2E%2E", "X" * 100])
def test_an_unknown_code_still_reaches_the_shop(client: TestClient, session: Session, code: str) -> None:
    r = client.get(f"/r/{code}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "http://testserver"
    assert clicks(session) == []


def test_the_shop_url_keeps_its_query(svc: Services, settings: Settings, clock: Clock) -> None:
    code = code_for(svc, "ana")
    client = TestClient(
        create_app(svc, settings=settings, clock=clock, shop_url="https://shop.example/es/?utm=mail&ref=old")
    )
    r = client.get(f"/r/{code}", follow_redirects=False)
    assert r.headers["location"] == f"https://shop.example/es/?utm=mail&ref={code}"


def test_attribution_report(client: TestClient, svc: Services, auth: dict[str, str]) -> None:
    ana, luis = code_for(svc, "ana"), code_for(svc, "luis")
    client.get(f"/r/{ana}", follow_redirects=False)
    friends = [
        order_placed("bea", "o-bea", referral_code=ana.lower()),
        order_placed("carl", "o-carl", referral_code=ana),
        order_placed("dani", "o-dani", referral_code=luis),
        order_placed("ana", "o-ana-2", referral_code=ana),  # self-referral: not counted
        order_placed("eva", "o-eva", referral_code="NOSUCH23"),
    ]  # unknown code: ignored
    r = client.post("/v1/events", json={"events": friends}, headers=auth)
    assert r.json()["accepted"] == 5
    report = client.get("/v1/reports/referrals", headers=auth)
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["total"] == {"codes": 2, "clicks": 1, "conversions": 3, "revenue": 179.7}
    assert body["journeys"] == [
        {"journey_id": "post_purchase", "codes": 2, "clicks": 1, "conversions": 3, "revenue": 179.7}
    ]
    assert body["referrers"][0] == {
        "customer_id": "ana",
        "code": ana,
        "journey_id": "post_purchase",
        "clicks": 1,
        "conversions": 2,
        "revenue": 119.8,
    }
    assert body["referrers"][1]["customer_id"] == "luis" and body["referrers"][1]["conversions"] == 1
    assert len(client.get("/v1/reports/referrals?limit=1", headers=auth).json()["referrers"]) == 1
    assert client.get("/v1/reports/referrals").status_code == 401
    assert client.get("/v1/reports/referrals?limit=0", headers=auth).status_code == 422

"""GET /r/<code> and GET /v1/reports/referrals."""

from __future__ import annotations

import re
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


def code_in_page(html: str) -> str | None:
    """The code the referral page shows, or None."""
    found = re.search(r'id="referral-code">[^<]*? (?:es|is) ([A-Z0-9]+)\.', html)
    return found.group(1) if found else None


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


SHOP = "https://shop.example"


@pytest.fixture
def shop(svc: Services, settings: Settings, clock: Clock) -> TestClient:
    """The web app of an installation whose shop is at :data:`SHOP` (``POSVENTA_SHOP_URL``)."""
    return TestClient(create_app(svc, settings=settings, clock=clock, shop_url=SHOP))


def test_a_known_code_redirects_with_ref_and_counts_the_click(
    shop: TestClient, svc: Services, session: Session, clock: Clock
) -> None:
    client = shop
    code = code_for(svc, "ana")
    r = client.get(f"/r/{code.lower()}", follow_redirects=False)  # read aloud, typed in lower case
    assert r.status_code == 303
    assert r.headers["location"] == f"{SHOP}?ref={code}"
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
def test_an_unknown_code_still_reaches_the_shop(shop: TestClient, session: Session, code: str) -> None:
    r = shop.get(f"/r/{code}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == SHOP
    assert clicks(session) == []


def test_without_a_shop_url_the_link_shows_the_code_instead_of_the_servers_root(
    client: TestClient, svc: Services, session: Session
) -> None:
    """Posventa's root is no shop (it answers 404): with no POSVENTA_SHOP_URL the friend gets a page
    with the code to give when ordering, in their language, and the click still counts."""
    assert client.get("/", follow_redirects=False).status_code == 404  # what a redirect there would reach
    code = code_for(svc, "ana")
    r = client.get(f"/r/{code.lower()}", follow_redirects=False, headers={"Accept-Language": "es-ES"})
    assert r.status_code == 200 and "location" not in r.headers
    assert f"Tu código de recomendación es {code}" in r.text and code_in_page(r.text) == code
    assert clicks(session) == [("ana", {"code": code})]
    r = client.get(f"/r/{code}?lang=en", follow_redirects=False)
    assert f"Your referral code is {code}" in r.text
    r = client.get("/r/NOPE2345?lang=en", follow_redirects=False)
    assert r.status_code == 200 and "recognise this code" in r.text and code_in_page(r.text) is None


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

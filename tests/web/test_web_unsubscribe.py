"""GET/POST /u/<token>: a confirmation page, RFC 8058 one-click, and deliveries honouring it at once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_builders import T0, Clock, ledger, promoter_id, survey_link, unsubscribe_token, walk_to_survey

from app.services import Services
from infra.db import models as m
from infra.db.store import SqlTx

pytestmark = pytest.mark.postgres

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


def customer(svc: Services, cid: str = "c1", locale: str = "es") -> None:
    svc.ingest.apply(
        [
            {
                "id": f"cu-{cid}",
                "type": "customer.updated",
                "occurred_at": T0.isoformat(),
                "customer": {"id": cid, "email": f"{cid}@example.com", "locale": locale},
            }
        ],
        "api",
        T0,
    )


def unsubscribed_events(s: Session) -> list[str]:
    s.expire_all()
    return list(s.scalars(select(m.StoredEvent.id).where(m.StoredEvent.type == "customer.unsubscribed")))


def test_the_page_asks_and_the_button_confirms(client: TestClient, svc: Services, session: Session) -> None:
    customer(svc)
    token = unsubscribe_token()
    r = client.get(f"/u/{token}")
    assert r.status_code == 200
    assert r.headers["Content-Security-Policy"].startswith(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"
    )
    assert "¿Quieres darte de baja?" in r.text and "Tienda Olivo" in r.text
    assert "c***@example.com" in r.text and "c1@example.com" not in r.text  # masked
    # the journey the email came from, named in the page's language (journeys' `names:`)
    assert "«Seguimiento de tu compra»" in r.text and "Post-purchase" not in r.text
    assert "“Post-purchase follow-up”" in client.get(f"/u/{token}?lang=en").text
    assert f'action="/u/{token}"' in r.text and 'name="List-Unsubscribe" value="One-Click"' in r.text
    # looking is not unsubscribing (link scanners open links)
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=True) is None
    assert unsubscribed_events(session) == []

    r = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert r.status_code == 200 and "Baja confirmada" in r.text
    assert "Ya no recibirás correos promocionales de Tienda Olivo en c***@example.com." in r.text
    assert "dado de baja" not in r.text and "dada de baja" not in r.text  # gender-neutral
    session.expire_all()
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=True) == "unsubscribed"
    assert (
        SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=False) is None
    )  # orders still reach them
    assert unsubscribed_events(session) == ["unsubscribe:1:referral_ask:0"]
    [sup] = SqlTx(session).suppressions.for_customer("c1")
    assert (sup.reason, sup.scope, sup.customer_id) == ("unsubscribed", "promotional", "c1")
    # the link now shows the confirmation, without a button to press again
    again = client.get(f"/u/{token}").text
    assert "Baja confirmada" in again and "Ya no recibirás correos promocionales" in again
    assert "<form" not in again and "confirm-unsubscribe" not in again and "dado de baja" not in again
    # a second confirmation (a one-click client) changes nothing
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert unsubscribed_events(session) == ["unsubscribe:1:referral_ask:0"]
    assert len(SqlTx(session).suppressions.for_customer("c1")) == 1


def test_rfc8058_one_click_post(client: TestClient, svc: Services, session: Session) -> None:
    customer(svc, locale="en")
    r = client.post(f"/u/{unsubscribe_token()}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert r.status_code == 200 and "Unsubscribe confirmed" in r.text
    assert "You will no longer receive promotional emails from Tienda Olivo" in r.text
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=True) == "unsubscribed"
    # mail clients may send it as multipart/form-data: the token is what counts
    r = client.post(
        f"/u/{unsubscribe_token(key='2:content_tip:0')}", files={"List-Unsubscribe": (None, "One-Click")}
    )
    assert r.status_code == 200


def test_the_address_in_the_link_is_suppressed(client: TestClient, svc: Services, session: Session) -> None:
    """The customer changed address since the email: the address the mail went to is the one to stop."""
    customer(svc)
    client.post(
        f"/u/{unsubscribe_token(email='Old.Address@Example.com')}",
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    assert (
        SqlTx(session).suppressions.is_suppressed("old.address@example.com", promotional=True)
        == "unsubscribed"
    )


def test_a_pending_promotional_send_is_skipped_at_once(
    client: TestClient, svc: Services, clock: Clock, session: Session
) -> None:
    cid = promoter_id()
    j = walk_to_survey(svc, cid)
    now = clock.set(j.survey_at + timedelta(hours=1))
    assert client.get(survey_link(j.survey_html.read_text(encoding="utf-8"), 10)).status_code == 200
    svc.advance.run(now)  # the review request is decided (pending) but not delivered yet
    [promo] = [step for step in ledger(svc, cid) if step == "review_request"]
    assert ledger(svc, cid)[promo] == ("pending", None)

    r = client.post(
        f"/u/{unsubscribe_token(cid, f'{cid}@example.com', key=f'{j.enrollment_id}:{promo}:0')}",
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    assert r.status_code == 200
    svc.deliver.run(now)
    assert ledger(svc, cid)[promo] == ("skipped", "suppressed:unsubscribed")
    # and the journey, which exits on customer.unsubscribed, ends: no more promotional content
    for days in (1, 40, 80, 120):
        svc.sweep(now + timedelta(days=days))
    session.expire_all()
    status = session.scalar(select(m.Enrollment.status).where(m.Enrollment.id == j.enrollment_id))
    assert status == "exited"
    sent_promos = session.scalars(
        select(m.LedgerEntry.step_id).where(
            m.LedgerEntry.customer_id == cid,
            m.LedgerEntry.category == "promotional",
            m.LedgerEntry.status == "sent",
        )
    ).all()
    assert sent_promos == []


def test_unsubscribing_before_the_survey_ends_the_journey(
    client: TestClient, svc: Services, clock: Clock, session: Session
) -> None:
    cid = promoter_id("early")
    j = walk_to_survey(svc, cid)
    now = clock.set(j.survey_at + timedelta(minutes=5))
    client.post(
        f"/u/{unsubscribe_token(cid, f'{cid}@example.com', key=f'{j.enrollment_id}:thank_you:0')}",
        content=b"List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
    )
    client.get(survey_link(j.survey_html.read_text(encoding="utf-8"), 10))
    for days in (0, 40, 80):
        svc.sweep(now + timedelta(days=days, hours=1))
    steps = ledger(svc, cid)
    assert not any(step.startswith(("referral_ask", "content_tip")) for step in steps), steps
    session.expire_all()
    assert session.scalar(select(m.Enrollment.status).where(m.Enrollment.id == j.enrollment_id)) == "exited"


@pytest.mark.parametrize(
    "make, status, words",
    [
        (lambda: unsubscribe_token()[:-2] + "xx", 400, "Este enlace no es válido"),
        (lambda: unsubscribe_token(secret="z" * 40), 400, "Este enlace no es válido"),
        (lambda: unsubscribe_token(now=T0 - timedelta(days=401)), 410, "Este enlace ha caducado"),
    ],
)
def test_bad_links_change_nothing(
    client: TestClient, svc: Services, session: Session, make: object, status: int, words: str
) -> None:
    customer(svc)
    token = make()  # type: ignore[operator]
    r = client.get(f"/u/{token}")
    assert r.status_code == status and words in r.text
    r = client.post(f"/u/{token}", content=b"List-Unsubscribe=One-Click", headers=ONE_CLICK)
    assert r.status_code == status
    assert SqlTx(session).suppressions.for_customer("c1") == [] and unsubscribed_events(session) == []

"""GET/POST /s/<token>: a click is the answer; answering again updates it; bad links get a polite page."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_builders import T0, Clock, ledger, links_in, promoter_id, survey_link, survey_token, walk_to_survey

from app.services import Services
from infra.db import models as m
from infra.settings import Settings
from web.app import create_app
from web.limits import Limits

pytestmark = pytest.mark.postgres

CSP = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'"


def feedback(s: Session, customer_id: str = "c1") -> list[tuple[int, str | None]]:
    s.expire_all()
    return [
        (f.score, f.comment)
        for f in s.scalars(select(m.FeedbackResponse).where(m.FeedbackResponse.customer_id == customer_id))
    ]


def survey_events(s: Session) -> list[dict[str, Any]]:
    s.expire_all()
    return [
        dict(e.data)
        for e in s.scalars(select(m.StoredEvent).where(m.StoredEvent.type == "feedback.submitted"))
    ]


def assert_page(r: Any) -> None:
    assert r.headers["content-type"].startswith("text/html")
    assert r.headers["Content-Security-Policy"].startswith(CSP)
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["Cache-Control"] == "no-store"
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in r.text
    assert "<script" not in r.text and "Traceback" not in r.text


def test_a_valid_link_records_the_score_at_once(client: TestClient, session: Session) -> None:
    r = client.get(f"/s/{survey_token(score=9)}")
    assert r.status_code == 200
    assert_page(r)
    assert "¡Gracias por tu respuesta!" in r.text and "Tu respuesta: 9 de 10." in r.text
    assert feedback(session) == [(9, None)]
    assert survey_events(session) == [{"score": 9, "survey": "nps"}]
    event = session.get(m.StoredEvent, "survey:1:nps_survey:0")
    assert event is not None and (event.customer_id, event.order_id, event.occurred_at) == ("c1", "o1", T0)
    # the page offers the whole scale again (the current answer marked) and a comment form
    scale = [text for href, text in links_in(r.text) if href.startswith("/s/") and text.isdigit()]
    assert scale == [str(i) for i in range(11)]
    assert re.search(r'id="score-9"[^>]*aria-current="true"', r.text)
    assert re.search(r'<form method="post" action="/s/[^"]+"', r.text) and 'name="comment"' in r.text


def test_answering_twice_updates_the_answer(client: TestClient, session: Session) -> None:
    first = client.get(f"/s/{survey_token(score=3)}")
    # the customer taps 9 on the page's scale
    nine = next(href for href, text in links_in(first.text) if text == "9")
    r = client.get(nine)
    assert r.status_code == 200 and "Tu respuesta: 9 de 10." in r.text
    assert feedback(session) == [(9, None)]
    # one event; the journey has not consumed it yet, so it carries the corrected score
    assert survey_events(session) == [{"score": 9, "survey": "nps"}]
    assert client.get(f"/s/{survey_token(score=9)}").status_code == 200  # same answer again: no change
    assert feedback(session) == [(9, None)] and len(survey_events(session)) == 1


def test_links_on_the_page_keep_the_expiry(client: TestClient, clock: Clock) -> None:
    page = client.get(f"/s/{survey_token(score=5, ttl=timedelta(days=1))}")
    seven = next(href for href, text in links_in(page.text) if text == "7")
    clock.set(T0 + timedelta(days=1, seconds=1))
    assert client.get(seven).status_code == 410


def test_a_changed_answer_after_the_journey_branched(
    client: TestClient, svc: Services, session: Session, clock: Clock
) -> None:
    cid = promoter_id()
    j = walk_to_survey(svc, cid)
    clock.set(j.survey_at + timedelta(hours=1))
    nine = survey_link(j.survey_html.read_text(encoding="utf-8"), 9)
    assert client.get(nine).status_code == 200
    svc.sweep(clock.now)
    steps = ledger(svc, cid)
    assert "review_request" in steps  # the promoter branch: a product review first, the referral ask later
    # the customer changes their mind: the stored feedback follows, the journey's branch stands
    two = survey_link(j.survey_html.read_text(encoding="utf-8"), 2)
    assert client.get(two).status_code == 200
    assert feedback(session, cid) == [(2, None)]
    assert survey_events(session) == [{"score": 9, "survey": "nps"}]
    svc.sweep(clock.now + timedelta(hours=1))
    assert "flag_detractor" not in ledger(svc, cid)


def test_a_comment_is_saved_with_the_answer(client: TestClient, session: Session) -> None:
    token = survey_token(score=6)
    client.get(f"/s/{token}")
    r = client.post(f"/s/{token}", data={"comment": "  El envío tardó demasiado.\r\nPero bien.  "})
    assert r.status_code == 200
    assert_page(r)
    assert "Hemos recibido tu comentario" in r.text and "El envío tardó demasiado." in r.text
    assert feedback(session) == [(6, "El envío tardó demasiado.\nPero bien.")]
    # another tap keeps the comment
    client.get(f"/s/{survey_token(score=7)}")
    assert feedback(session) == [(7, "El envío tardó demasiado.\nPero bien.")]


def test_a_comment_before_any_click(client: TestClient, session: Session) -> None:
    r = client.post(f"/s/{survey_token(score=10)}", data={"comment": "¡Genial!"})
    assert r.status_code == 200
    assert feedback(session) == [(10, "¡Genial!")]
    assert survey_events(session) == [{"score": 10, "survey": "nps", "comment": "¡Genial!"}]


def test_comment_form_edges(client: TestClient, session: Session) -> None:
    token = survey_token(score=8)
    r = client.post(f"/s/{token}", content=b'{"comment": "x"}', headers={"Content-Type": "application/json"})
    assert r.status_code == 415 and r.headers["content-type"].startswith("text/html")
    r = client.post(f"/s/{token}", data={"comment": "x" * 5001})
    assert r.status_code == 400 and "demasiado largo" in r.text
    assert feedback(session) == [(8, None)]
    r = client.post(
        f"/s/{token}",
        content=b"comment=" + b"x" * 70_000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 413 and "Traceback" not in r.text


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-3] + ("AAA" if not t.endswith("AAA") else "BBB"),  # signature altered
        lambda t: ("e" if t[0] != "e" else "f") + t[1:],  # payload altered
        lambda t: survey_token(score=9, secret="y" * 40),  # signed with another key
        lambda t: "not-a-token",
        lambda t: "a" * 3000,
    ],
)
def test_forged_links_get_a_polite_400(client: TestClient, session: Session, mangle: Any) -> None:
    r = client.get(f"/s/{mangle(survey_token(score=9))}")
    assert r.status_code == 400
    assert_page(r)
    assert "Este enlace no es válido" in r.text
    assert feedback(session) == [] and survey_events(session) == []
    assert client.post(f"/s/{mangle(survey_token())}", data={"comment": "x"}).status_code == 400


def test_an_expired_link_gets_410(client: TestClient, clock: Clock, session: Session) -> None:
    token = survey_token(score=9, ttl=timedelta(days=30))
    clock.set(T0 + timedelta(days=31))
    r = client.get(f"/s/{token}", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert r.status_code == 410
    assert "This link has expired" in r.text and "hola@posventa.example" in r.text
    assert feedback(session) == []


def test_language_from_customer_and_override(client: TestClient, svc: Services) -> None:
    svc.ingest.apply(
        [
            {
                "id": "cu",
                "type": "customer.updated",
                "occurred_at": T0.isoformat(),
                "customer": {"id": "c1", "locale": "en", "name": "Ann Lee"},
            }
        ],
        "api",
        T0,
    )
    r = client.get(f"/s/{survey_token(score=10)}")
    assert '<html lang="en">' in r.text and "Your answer: 10 out of 10." in r.text
    assert "Tienda Olivo" in r.text  # the brand
    r = client.get(f"/s/{survey_token(score=10)}?lang=es")
    assert '<html lang="es">' in r.text and "Tu respuesta: 10 de 10." in r.text
    # the override sticks to the page's links and form
    scale = [href for href, text in links_in(r.text) if href.startswith("/s/") and text.isdigit()]
    assert len(scale) == 11 and all(href.endswith("?lang=es") for href in scale)
    assert any(href.endswith("?lang=en") and text == "English" for href, text in links_in(r.text))
    assert re.search(r'action="/s/[^"]+\?lang=es"', r.text)


def test_public_pages_are_rate_limited(svc: Services, settings: Settings, clock: Clock) -> None:
    client = TestClient(
        create_app(svc, settings=settings, clock=clock, limits=Limits(public_rate=0.01, public_burst=2))
    )
    codes = [client.get(f"/s/{survey_token(score=9)}").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    r = client.get("/r/ABCDEFGH", follow_redirects=False)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1
    assert "Demasiadas solicitudes" in r.text


def test_an_unexpected_error_is_a_polite_page(
    svc: Services, settings: Settings, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("connection to 10.0.0.5 refused")

    monkeypatch.setattr(svc.clicks, "answer", explode)
    client = TestClient(create_app(svc, settings=settings, clock=clock), raise_server_exceptions=False)
    r = client.get(f"/s/{survey_token()}")
    assert r.status_code == 500
    assert "Algo ha fallado" in r.text and r.headers["X-Request-ID"] in r.text
    assert "10.0.0.5" not in r.text and "Traceback" not in r.text


def test_survey_email_links_point_at_the_app(svc: Services) -> None:
    j = walk_to_survey(svc, promoter_id("mail"))
    link = survey_link(j.survey_html.read_text(encoding="utf-8"), 0)
    assert urlsplit(link).netloc == "testserver" and urlsplit(link).path.startswith("/s/")


def test_the_reminder_link_keeps_the_comment(client: TestClient, session: Session) -> None:
    client.post(f"/s/{survey_token(score=8)}", data={"comment": "Muy bien"})
    client.get(f"/s/{survey_token(score=9, key='1:nps_reminder:0')}")  # the same survey, from the reminder
    assert feedback(session) == [(9, "Muy bien")]

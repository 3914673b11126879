"""Signed links are scoped: a token works only on the page of its purpose, legacy tokens (signed before
purposes existed) only where their payload shape says they belong, and a validly signed token with an
unexpected payload is the friendly "invalid link" page (400), never a 500 or "expired"."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from web_builders import SECRET, T0, order_placed, survey_token, unsubscribe_token

from app.links import SURVEY, UNSUBSCRIBE, verify_survey, verify_unsubscribe
from app.services import Services
from infra.db import models as m
from infra.db.store import SqlTx
from posventa import tokens

pytestmark = pytest.mark.postgres

FORM = {"List-Unsubscribe": "One-Click"}


def raw_token(body: Any, secret: str = SECRET) -> str:
    """A token over any JSON ``body`` (or raw bytes), validly signed: what a leaked key or an old format
    could produce."""
    raw = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    mac = hmac.new(secret.encode(), raw, hashlib.sha256).digest()[:18]

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    return f"{b64(raw)}.{b64(mac)}"


def legacy_survey(score: int = 9) -> str:
    """A survey token as sent before tokens carried a purpose (exact payload of those releases)."""
    return raw_token(
        {"c": "c1", "j": "post_purchase", "k": "1:nps_survey:0", "o": "o1", "s": score, "x": EXP}
    )


def legacy_unsubscribe() -> str:
    return raw_token({"c": "c1", "e": "c1@example.com", "j": "post_purchase", "k": "1:tip:0", "x": EXP})


EXP = int((T0 + timedelta(days=20)).timestamp())


def suppressed(session: Session) -> str | None:
    session.expire_all()
    return SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=True)


def events(session: Session, type_: str) -> list[str]:
    session.expire_all()
    return list(session.scalars(select(m.StoredEvent.id).where(m.StoredEvent.type == type_)))


@pytest.fixture
def customer(svc: Services) -> None:
    assert svc.ingest.apply([order_placed("c1", "o1")], "api", T0).accepted == 1


def is_invalid_page(r: Any) -> bool:
    return (
        r.status_code == 400
        and "Este enlace no es válido" in r.text
        and "text/html" in r.headers["content-type"]
    )


# --- a token only opens its own page ---------------------------------------------------------------------
@pytest.mark.parametrize("token", [survey_token, legacy_survey], ids=["survey", "legacy-survey"])
def test_a_survey_token_posted_to_unsubscribe_unsubscribes_nobody(
    client: TestClient, session: Session, customer: None, token: Any
) -> None:
    t = token()
    assert is_invalid_page(client.post(f"/u/{t}", data=FORM))
    assert is_invalid_page(client.get(f"/u/{t}"))
    assert suppressed(session) is None
    assert events(session, "customer.unsubscribed") == []
    # the same token still answers its survey
    assert client.get(f"/s/{t}").status_code == 200
    assert events(session, "feedback.submitted") == ["survey:1:nps_survey:0"]


@pytest.mark.parametrize("token", [unsubscribe_token, legacy_unsubscribe], ids=["unsubscribe", "legacy"])
def test_an_unsubscribe_token_answers_no_survey(
    client: TestClient, session: Session, customer: None, token: Any
) -> None:
    t = token()
    assert is_invalid_page(client.get(f"/s/{t}"))
    assert is_invalid_page(client.post(f"/s/{t}", data={"comment": "x"}))
    assert events(session, "feedback.submitted") == []
    assert client.post(f"/u/{t}", data=FORM).status_code == 200
    assert suppressed(session) == "unsubscribed"


def test_links_the_app_sends_carry_their_purpose(svc: Services) -> None:
    survey = svc.links.survey("1:nps_survey:0", "c1", "o1", "post_purchase", 7, T0).rsplit("/", 1)[1]
    unsub = svc.links.unsubscribe("1:tip:0", "c1", "c1@example.com", "post_purchase", T0).rsplit("/", 1)[1]
    assert tokens.verify(survey, SECRET, purpose=SURVEY, now=T0)["p"] == "survey"
    assert tokens.verify(unsub, SECRET, purpose=UNSUBSCRIBE, now=T0)["p"] == "unsubscribe"
    link = verify_survey(survey, SECRET, T0)
    assert verify_survey(link.for_score(3, SECRET, T0), SECRET, T0).score == 3
    for wrong, verify in ((survey, verify_unsubscribe), (unsub, verify_survey)):
        with pytest.raises(tokens.TokenError) as exc:
            verify(wrong, SECRET, T0)  # type: ignore[operator]
        assert exc.value.reason == "wrong-purpose"


def test_a_purpose_the_app_does_not_know_is_refused(client: TestClient, customer: None) -> None:
    other = tokens.sign(
        {"c": "c1", "e": "c1@example.com", "j": "post_purchase", "k": "1:tip:0"},
        SECRET,
        purpose="referral",
        now=T0,
        ttl=timedelta(days=1),
    )
    assert is_invalid_page(client.post(f"/u/{other}", data=FORM))


def test_legacy_tokens_keep_working_until_they_expire(
    client: TestClient, session: Session, customer: None
) -> None:
    assert client.get(f"/s/{legacy_survey(4)}").status_code == 200
    assert client.post(f"/u/{legacy_unsubscribe()}", data=FORM).status_code == 200
    assert suppressed(session) == "unsubscribed"
    late = raw_token({"c": "c1", "j": "post_purchase", "k": "1:nps_survey:0", "o": "o1", "s": 9, "x": 1})
    assert client.get(f"/s/{late}").status_code == 410


def test_an_expired_token_of_the_wrong_purpose_is_invalid_not_expired(
    client: TestClient, customer: None
) -> None:
    old = survey_token(now=T0 - timedelta(days=90))
    assert client.get(f"/s/{old}").status_code == 410
    assert is_invalid_page(client.post(f"/u/{old}", data=FORM))


# --- validly signed, unexpected payloads -----------------------------------------------------------------
SURVEY_OK = {
    "c": "c1",
    "j": "post_purchase",
    "k": "1:nps_survey:0",
    "o": "o1",
    "s": 9,
    "p": "survey",
    "x": EXP,
}
UNSUB_OK = {
    "c": "c1",
    "e": "c1@example.com",
    "j": "post_purchase",
    "k": "1:tip:0",
    "p": "unsubscribe",
    "x": EXP,
}

ODD_PAYLOADS: dict[str, Any] = {
    "a list": [1, 2, 3],
    "a string": "survey",
    "null": None,
    "not JSON": b"\xff\xfe{",
    "not UTF-8 JSON": b'{"x": "\xff"}',
    "nested lists": b"[" * 700 + b"]" * 700,
    "expiry missing": {**SURVEY_OK, "x": None},
    "expiry a string": {**SURVEY_OK, "x": "tomorrow"},
    "expiry a float": {**SURVEY_OK, "x": 1e300},
    "expiry a bool": {**SURVEY_OK, "x": True},
    "expiry an object": {**SURVEY_OK, "x": {"a": 1}},
    "purpose a number": {**SURVEY_OK, "p": 5},
    "score a string": {**SURVEY_OK, "s": "9"},
    "score out of range": {**SURVEY_OK, "s": 11},
    "score huge": {**SURVEY_OK, "s": 10**40},
    "customer missing": {k: v for k, v in SURVEY_OK.items() if k != "c"},
    "customer a number": {**SURVEY_OK, "c": 12},
    "customer empty": {**SURVEY_OK, "c": ""},
    "customer too long": {**SURVEY_OK, "c": "c" * 129},
    "customer with NUL": {**SURVEY_OK, "c": "c\x001"},
    "customer with CR/LF": {**SURVEY_OK, "c": "c\r\n1"},
    "key a list": {**SURVEY_OK, "k": ["1"]},
    "key too long": {**SURVEY_OK, "k": "k" * 300},
    "order an object": {**SURVEY_OK, "o": {"id": "o1"}},
    "order with NUL": {**SURVEY_OK, "o": "o\x00"},
    "journey a number": {**SURVEY_OK, "j": 3},
}
ODD_UNSUBSCRIBE: dict[str, Any] = {
    "address a number": {**UNSUB_OK, "e": 5},
    "address too long": {**UNSUB_OK, "e": "a" * 400 + "@example.com"},
    "address with LF": {**UNSUB_OK, "e": "c1@example.com\nBcc: x@example.com"},
    "customer too long": {**UNSUB_OK, "c": "c" * 200},
    "key an object": {**UNSUB_OK, "k": {}},
    "legacy shape with an extra key": {k: v for k, v in {**UNSUB_OK, "z": 1}.items() if k != "p"},
}


@pytest.mark.parametrize("body", ODD_PAYLOADS.values(), ids=ODD_PAYLOADS.keys())
def test_a_signed_survey_token_with_an_odd_payload_is_an_invalid_link(
    client: TestClient, session: Session, customer: None, body: Any
) -> None:
    t = raw_token(body)
    for r in (
        client.get(f"/s/{t}"),
        client.post(f"/s/{t}", data={"comment": "hola"}),
        client.post(f"/u/{t}"),
    ):
        assert is_invalid_page(r), (r.status_code, r.text[:200])
    assert events(session, "feedback.submitted") == []


@pytest.mark.parametrize("body", ODD_UNSUBSCRIBE.values(), ids=ODD_UNSUBSCRIBE.keys())
def test_a_signed_unsubscribe_token_with_an_odd_payload_is_an_invalid_link(
    client: TestClient, session: Session, customer: None, body: Any
) -> None:
    t = raw_token(body)
    for r in (client.get(f"/u/{t}"), client.post(f"/u/{t}", data=FORM)):
        assert is_invalid_page(r), (r.status_code, r.text[:200])
    assert suppressed(session) is None


def test_the_verifier_raises_nothing_but_token_errors() -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b"\x00", b"1e999999", b'{"x": NaN}'):
        with pytest.raises(tokens.TokenError):
            tokens.verify(raw_token(body), SECRET, purpose=SURVEY, now=T0)
    for token in ("", ".", "no-dot", "é.é", "a.b.c", "%%%.%%%", "A" * 5000 + "." + "B" * 30):
        with pytest.raises(tokens.TokenError):
            tokens.verify(token, SECRET, purpose=SURVEY, now=T0)


def test_the_good_payloads_above_are_accepted(client: TestClient, session: Session, customer: None) -> None:
    """The odd payloads differ from these in one field only: this is what they would have been."""
    assert client.get(f"/s/{raw_token(SURVEY_OK)}").status_code == 200
    assert client.post(f"/u/{raw_token(UNSUB_OK)}", data=FORM).status_code == 200
    assert suppressed(session) == "unsubscribed"


def test_a_comment_with_control_characters_is_kept_without_them(
    client: TestClient, svc: Services, customer: None
) -> None:
    """Found while hardening: a NUL or an escape in the comment box was a 500 (the event refuses them)."""
    r = client.post(f"/s/{survey_token()}", data={"comment": "muy\x00 bien\x1b[31m\r\ngracias"})
    assert r.status_code == 200, r.text[:300]
    with svc.store.read() as tx:
        answer = tx.feedback.get("c1", "o1", "nps")
    assert answer is not None and answer.comment == "muy bien[31m\ngracias"

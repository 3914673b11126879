"""POST /webhooks/sendgrid: signature checks on the raw bytes, dedupe by sg_event_id, and the effects."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from web_builders import T0, Clock, ledger, order_placed, promoter_id, survey_link, walk_to_survey

from app.services import Services
from infra.db import models as m
from infra.db.store import SqlTx
from infra.email.fake_sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER, FakeSendGrid
from infra.settings import Settings, make_settings
from web.app import create_app

pytestmark = pytest.mark.postgres

Post = Callable[..., Any]


def sg_event(kind: str, email: str, key: str | None, at: datetime, **extra: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "email": email,
        "timestamp": int(at.timestamp()),
        "event": kind,
        "sg_event_id": secrets.token_urlsafe(16),
        "sg_message_id": "msg123.filter0001",
        "category": ["post_purchase"],
        **extra,
    }
    if key is not None:
        event["posventa_key"] = key
    return event


@pytest.fixture
def post(client: TestClient, signer: FakeSendGrid, clock: Clock) -> Post:
    def send(events: list[dict[str, Any]], *, at: datetime | None = None) -> Any:
        body, headers = signer.signed_webhook_request(events, timestamp=int((at or clock.now).timestamp()))
        return client.post("/webhooks/sendgrid", content=body, headers=headers)

    return send


@pytest.fixture
def sent(svc: Services, clock: Clock) -> tuple[str, str]:
    """A customer whose thank-you email went out: (customer id, its ledger key)."""
    svc.ingest.apply([order_placed("c1", "o1")], "api", T0)
    svc.sweep(T0)
    with svc.store.factory() as s:
        key = s.scalar(select(m.LedgerEntry.key).where(m.LedgerEntry.step_id == "thank_you"))
    assert key is not None
    clock.set(T0 + timedelta(minutes=10))
    return "c1", key


def row(s: Session, key: str) -> m.LedgerEntry:
    s.expire_all()
    return s.scalars(select(m.LedgerEntry).where(m.LedgerEntry.key == key)).one()


def set_status(svc: Services, key: str, status: str) -> None:
    with svc.store.factory.begin() as s:
        s.execute(update(m.LedgerEntry).where(m.LedgerEntry.key == key).values(status=status))


def recorded(s: Session) -> tuple[int, int]:
    s.expire_all()
    return (
        int(s.scalar(select(func.count()).select_from(m.WebhookEvent)) or 0),
        int(
            s.scalar(select(func.count()).select_from(m.StoredEvent).where(m.StoredEvent.source == "webhook"))
            or 0
        ),
    )


def test_delivered_resolves_an_unknown_send(
    post: Post, svc: Services, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    cid, key = sent
    set_status(svc, key, "unknown")  # the provider call timed out: did it go?
    r = post([sg_event("delivered", "c1@example.com", key, clock.now)])
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 1 and r.json()["actions"] == {"email.delivered": 1, "ledger_sent": 1}
    entry = row(session, key)
    assert (entry.status, entry.provider_message_id) == ("sent", "msg123")
    [stat] = session.scalars(select(m.StoredEvent).where(m.StoredEvent.type == "email.delivered")).all()
    assert stat.customer_id == cid and stat.order_id == "o1" and stat.data == {"ledger_key": key}
    assert stat.id.startswith("sg:")


def test_statuses_only_move_forward(
    post: Post, svc: Services, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    _, key = sent
    assert row(session, key).status == "sent"
    post([sg_event("bounce", "c1@example.com", key, clock.now, reason="550 no such user")])
    assert row(session, key).status == "sent"  # a sent row is not unsent; the bounce is a statistic
    set_status(svc, key, "unknown")
    post([sg_event("dropped", "c1@example.com", key, clock.now, reason="Bounced Address")])
    assert row(session, key).status == "failed"
    post([sg_event("processed", "c1@example.com", key, clock.now)])
    assert row(session, key).status == "failed"


@pytest.mark.parametrize(
    "tamper",
    [
        "changed-byte",
        "wrong-key",
        "missing-signature",
        "missing-timestamp",
        "stale",
        "future",
        "garbage-signature",
    ],
)
def test_unverified_requests_are_refused_and_record_nothing(
    client: TestClient,
    signer: FakeSendGrid,
    sent: tuple[str, str],
    session: Session,
    clock: Clock,
    tamper: str,
) -> None:
    _, key = sent
    events = [sg_event("spamreport", "c1@example.com", key, clock.now)]
    now = int(clock.now.timestamp())
    body, headers = signer.signed_webhook_request(events, timestamp=now)
    if tamper == "changed-byte":
        body = body.replace(b"spamreport", b"spamreporT")
    elif tamper == "wrong-key":
        body, headers = FakeSendGrid().signed_webhook_request(events, timestamp=now)
    elif tamper == "missing-signature":
        del headers[SIGNATURE_HEADER]
    elif tamper == "missing-timestamp":
        del headers[TIMESTAMP_HEADER]
    elif tamper == "stale":
        body, headers = signer.signed_webhook_request(events, timestamp=now - 3600)
    elif tamper == "future":
        body, headers = signer.signed_webhook_request(events, timestamp=now + 3600)
    elif tamper == "garbage-signature":
        headers[SIGNATURE_HEADER] = "not base64!"
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    expected = 401 if tamper.startswith(("missing", "garbage")) else 403
    assert r.status_code == expected, r.text
    assert "Traceback" not in r.text
    assert recorded(session) == (0, 0)
    assert SqlTx(session).suppressions.for_customer("c1") == []


def test_the_body_is_verified_as_received(
    post: Post, signer: FakeSendGrid, client: TestClient, sent: tuple[str, str], clock: Clock
) -> None:
    """Re-serialising (dropping SendGrid's trailing CRLF) would break the signature: we never do."""
    _, key = sent
    body, headers = signer.signed_webhook_request(
        [sg_event("open", "c1@example.com", key, clock.now)], timestamp=int(clock.now.timestamp())
    )
    assert body.endswith(b"\r\n")
    assert client.post("/webhooks/sendgrid", content=body.rstrip(), headers=headers).status_code == 403
    assert client.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 200


def test_without_a_configured_key_everything_is_refused(
    svc: Services,
    settings: Settings,
    signer: FakeSendGrid,
    clock: Clock,
    session: Session,
    sent: tuple[str, str],
) -> None:
    unsigned = make_settings(
        **{**settings.model_dump(), "sendgrid_webhook_public_key": None, "secret_key": "x" * 40}
    )
    client = TestClient(create_app(svc, settings=unsigned, clock=clock))
    body, headers = signer.signed_webhook_request(
        [sg_event("bounce", "c1@example.com", sent[1], clock.now)], timestamp=int(clock.now.timestamp())
    )
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "not-configured"
    assert recorded(session) == (0, 0)


def test_redelivered_events_are_applied_once(
    post: Post, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    _, key = sent
    events = [sg_event(kind, "c1@example.com", key, clock.now) for kind in ("delivered", "open", "click")]
    first = post(events).json()
    assert (first["applied"], first["duplicates"]) == (3, 0)
    before = recorded(session)
    again = post(events).json()  # SendGrid retries the whole batch
    assert (again["applied"], again["duplicates"]) == (0, 3)
    assert recorded(session) == before == (3, 3)
    # a batch mixing old and new events applies only the new ones
    mixed = post([events[0], sg_event("open", "c1@example.com", key, clock.now)]).json()
    assert (mixed["applied"], mixed["duplicates"]) == (1, 1)


def test_bounce_suppresses_the_address(
    post: Post, svc: Services, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    cid, key = sent
    set_status(svc, key, "sending")
    r = post(
        [sg_event("bounce", "C1@Example.com", key, clock.now, reason="550 5.1.1 no such user", type="bounce")]
    )
    assert r.json()["actions"] == {"email.bounced": 1, "ledger_failed": 1, "suppressed_bounced": 1}
    session.expire_all()
    [sup] = SqlTx(session).suppressions.for_customer(cid)
    assert (sup.email, sup.reason, sup.scope, sup.customer_id, sup.source) == (
        "c1@example.com",
        "bounced",
        "all",
        cid,
        "sendgrid",
    )
    assert "no such user" in (sup.detail or "")
    assert row(session, key).status == "failed"
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=False) == "bounced"


def test_a_blocked_bounce_is_temporary(
    post: Post, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    cid, key = sent
    post([sg_event("bounce", "c1@example.com", key, clock.now, type="blocked", reason="try later")])
    assert SqlTx(session).suppressions.for_customer(cid) == []


def test_spam_reports_and_unsubscribes(
    post: Post, svc: Services, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    cid, key = sent
    r = post([sg_event("group_unsubscribe", "c1@example.com", key, clock.now, asm_group_id=42)])
    assert r.json()["actions"] == {"customer.unsubscribed": 1, "suppressed_unsubscribed": 1}
    session.expire_all()
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=True) == "unsubscribed"
    assert SqlTx(session).suppressions.is_suppressed("c1@example.com", promotional=False) is None
    unsub = session.scalars(select(m.StoredEvent).where(m.StoredEvent.type == "customer.unsubscribed")).one()
    assert unsub.data == {"scope": "promotional", "source": "sendgrid"} and unsub.source == "webhook"
    # the journey exits on customer.unsubscribed
    svc.sweep(clock.now)
    session.expire_all()
    assert session.scalar(select(m.Enrollment.status).where(m.Enrollment.customer_id == cid)) == "exited"

    post([sg_event("spamreport", "c1@example.com", key, clock.now)])
    session.expire_all()
    reasons = {(s.reason, s.scope) for s in SqlTx(session).suppressions.for_customer(cid)}
    assert reasons == {("unsubscribed", "promotional"), ("spam_report", "all")}


def test_unknown_addresses_are_ignored_but_the_batch_is_accepted(
    post: Post, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    _, key = sent
    r = post(
        [
            sg_event("bounce", "stranger@example.com", None, clock.now),
            sg_event("open", "stranger@example.com", "999:nope:0", clock.now),
            sg_event("deferred", "c1@example.com", key, clock.now),
            sg_event("delivered", "c1@example.com", None, clock.now),
        ]
    )  # matched by address
    assert r.status_code == 200
    assert (r.json()["applied"], r.json()["ignored"]) == (2, 2)
    session.expire_all()
    assert session.scalars(select(m.Suppression)).all() == []
    assert recorded(session) == (4, 1)


def test_a_malformed_but_signed_body_is_400(
    client: TestClient, signer: FakeSendGrid, clock: Clock, session: Session
) -> None:
    body, headers = signer.signed_webhook_request([{"event": "open"}], timestamp=int(clock.now.timestamp()))
    r = client.post("/webhooks/sendgrid", content=body, headers=headers)
    assert r.status_code == 400 and r.json()["error"] == "malformed-payload"
    assert recorded(session) == (0, 0)


def test_a_click_on_a_survey_link_is_the_answer(
    post: Post, client: TestClient, svc: Services, session: Session, clock: Clock
) -> None:
    cid = promoter_id("click")
    j = walk_to_survey(svc, cid)
    html = j.survey_html.read_text(encoding="utf-8")
    clicked_at = clock.set(j.survey_at + timedelta(minutes=30))
    r = post([sg_event("click", f"{cid}@example.com", j.survey_key, clicked_at, url=survey_link(html, 9))])
    assert r.json()["actions"] == {"email.clicked": 1, "survey_answered": 1}
    session.expire_all()
    fb = session.scalars(select(m.FeedbackResponse).where(m.FeedbackResponse.customer_id == cid)).one()
    assert fb.score == 9
    answer = session.get(m.StoredEvent, f"survey:{j.survey_key}")
    assert answer is not None and answer.source == "webhook" and answer.data["score"] == 9
    # the page opened by the same click finds the answer already there: one event, same score
    assert client.get(survey_link(html, 9)).status_code == 200
    # the customer changes it on the page; a late webhook copy of an older click does not undo that
    client.get(survey_link(html, 4))
    post([sg_event("click", f"{cid}@example.com", j.survey_key, clicked_at, url=survey_link(html, 10))])
    session.expire_all()
    assert (
        session.scalars(select(m.FeedbackResponse.score).where(m.FeedbackResponse.customer_id == cid)).one()
        == 4
    )
    svc.sweep(clock.now)
    assert "flag_detractor" in ledger(svc, cid)  # not yet consumed when changed: the journey saw the 4


def test_a_click_on_another_link_is_only_a_statistic(
    post: Post, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    _, key = sent
    for url in ("https://shop.example/s/abc", "http://testserver/s/forged.token", "http://testserver/track"):
        post([sg_event("click", "c1@example.com", key, clock.now, url=url)])
    session.expire_all()
    assert session.scalars(select(m.FeedbackResponse)).all() == []
    clicked = session.scalars(select(m.StoredEvent.data).where(m.StoredEvent.type == "email.clicked")).all()
    assert {d["url"] for d in clicked} == {
        "https://shop.example/s/abc",
        "http://testserver/s/forged.token",
        "http://testserver/track",
    }


def test_an_event_that_cannot_be_stored_does_not_block_the_batch(
    post: Post, sent: tuple[str, str], session: Session, clock: Clock
) -> None:
    _, key = sent
    poison = sg_event("open", "c1@example.com", key, clock.now)
    poison["timestamp"] = 10**20  # no datetime can hold it
    r = post([poison, sg_event("delivered", "c1@example.com", key, clock.now)])
    assert r.status_code == 200
    assert (r.json()["failed"], r.json()["applied"]) == (1, 1)

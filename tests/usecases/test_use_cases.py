"""Each use case on SQLite, the embedded default: fast, with the real store, the file outbox and httpx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uc_builders import SECRET, T0, journey, ledger, make_services, order_placed

from app.links import verify_survey, verify_unsubscribe
from app.reports import customer_report
from app.services import Services
from app.webhook_events import WebhookEvent
from posventa import tokens


def test_an_order_enrolls_once_and_the_sweep_sends_the_thank_you_once(svc: Services, tmp_path: Path) -> None:
    report = svc.ingest.apply([order_placed("ana"), order_placed("ana"), {"type": "nope"}], "api", T0)
    assert (report.accepted, report.duplicates, [n for n, _ in report.rejected]) == (1, 1, [3])
    stats = svc.sweep(T0 + timedelta(minutes=1))
    assert stats.total("sent") == 1 and stats.enrollments == 1
    assert stats.rows[("post_purchase", "thank_you", "due")] == 1
    [row] = ledger(svc, step_id="thank_you")
    assert row.status == "sent" and row.key.endswith(":thank_you:0")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1
    # Sweeping again, at the same time, changes nothing.
    assert svc.sweep(T0 + timedelta(minutes=2)).total("sent") == 0
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 1


PROMO = """
name: Promotion
trigger: {event: order.placed}
entry: {once_per: order}
policy:
  quiet_hours: {start: "21:00", end: "09:00"}
steps:
  - {id: tip, type: send, template: content_tip, category: promotional}
"""


def test_deferrals_are_counted_from_the_engines_data(sqlite_url: str, tmp_path: Path) -> None:
    plan = journey(PROMO, "promo")
    late = datetime(2026, 3, 2, 21, 30, tzinfo=UTC)  # 22:30 in Madrid: quiet hours
    svc = make_services(sqlite_url, tmp_path, {plan.id: plan})
    svc.ingest.apply([order_placed("ana", at=late), order_placed("luis", at=late)], "api", late)
    with svc.store.begin() as tx:  # luis has an open complaint: held, not deferred
        tx.tickets.open("t1", "luis", None, "Roto", "complaint", "external")
    stats = svc.advance.run(late)
    assert stats.rows[("promo", "tip", "deferred")] == 1 and stats.rows[("promo", "tip", "held")] == 1
    [row] = [r for r in stats.table() if r["step"] == "tip"]
    assert (row["due"], row["deferred"], row["sent"]) == (2, 2, 0)
    svc.store.dispose()  # type: ignore[attr-defined]


def test_scheduled_birthday_enrolls_once_per_birthday(
    sqlite_url: str, tmp_path: Path, shipped: dict[str, Any]
) -> None:
    svc = make_services(sqlite_url, tmp_path, {"birthday": shipped["birthday"]})
    svc.ingest.apply([order_placed("ana", birthday="1990-03-01")], "api", T0)
    first = svc.enroll.scheduled(T0)
    again = svc.enroll.scheduled(T0 + timedelta(hours=1))
    assert first.rows[("birthday", "(entry)", "enrolled")] == 1
    assert again.rows[("birthday", "(entry)", "enrolled")] == 0
    assert svc.advance.count_due(T0) == 1
    svc.store.dispose()  # type: ignore[attr-defined]


def test_links_are_signed_and_verified_in_one_place(svc: Services) -> None:
    url = svc.links.survey("1:nps_survey:0", "ana", "o-ana", "post_purchase", 9, T0)
    token = url.removeprefix("https://pv.example/s/")
    link = verify_survey(token, SECRET, T0 + timedelta(days=1))
    assert (link.ledger_key, link.customer_id, link.order_id, link.score) == (
        "1:nps_survey:0",
        "ana",
        "o-ana",
        9,
    )
    assert verify_survey(link.for_score(3, SECRET, T0), SECRET, T0).score == 3
    with pytest.raises(tokens.TokenError, match="expired"):
        verify_survey(token, SECRET, T0 + timedelta(days=31))
    with pytest.raises(tokens.TokenError, match="forged"):
        verify_survey(token, "another-secret-" * 3, T0)
    unsub = svc.links.unsubscribe("1:tip:0", "ana", "ana@example.com", "post_purchase", T0)
    u = verify_unsubscribe(unsub.removeprefix("https://pv.example/u/"), SECRET, T0)
    assert (u.customer_id, u.email, u.journey) == ("ana", "ana@example.com", "post_purchase")


def test_a_survey_click_answers_and_a_second_click_changes_the_answer(svc: Services) -> None:
    svc.ingest.apply([order_placed("ana")], "api", T0)
    url = svc.links.survey("1:nps_survey:0", "ana", "o-ana", "post_purchase", 4, T0)
    link = verify_survey(url.rsplit("/", 1)[1], SECRET, T0)
    first = svc.clicks.answer(link, T0, comment="tarde")
    changed = svc.clicks.answer(verify_survey(link.for_score(9, SECRET, T0), SECRET, T0), T0)
    assert (first.first, first.score, first.first_name) == (True, 4, "Cliente")
    assert (changed.first, changed.score, changed.comment) == (False, 9, "tarde")
    with svc.store.read() as tx:
        assert tx.events.data("survey:1:nps_survey:0") == {"score": 9, "survey": "nps", "comment": "tarde"}


def test_unsubscribing_suppresses_promotional_mail_and_records_the_event(svc: Services) -> None:
    svc.ingest.apply([order_placed("ana")], "api", T0)
    link = verify_unsubscribe(
        svc.links.unsubscribe("1:tip:0", "ana", "ana@example.com", "post_purchase", T0).rsplit("/", 1)[1],
        SECRET,
        T0,
    )
    before = svc.clicks.unsubscribe_view(link)
    view = svc.clicks.unsubscribe(link, T0)
    again = svc.clicks.unsubscribe(link, T0)
    assert (before.already, view.already, again.already) == (False, False, True)
    assert view.masked_email == "a***@example.com" and view.journey_name == "Seguimiento de tu compra"  # es
    assert view.journey_in("en") == "Post-purchase follow-up"
    report = customer_report(svc.store, "ana")
    assert report is not None
    assert [(x["reason"], x["scope"]) for x in report["suppressions"]] == [("unsubscribed", "promotional")]
    assert customer_report(svc.store, "nobody") is None


def test_provider_evidence_settles_an_ambiguous_send(svc: Services) -> None:
    svc.ingest.apply([order_placed("ana")], "api", T0)
    svc.sweep(T0)
    [row] = ledger(svc, step_id="thank_you")
    with svc.store.factory.begin() as s:  # type: ignore[attr-defined]
        s.get(type(row), row.id).status = "unknown"  # as if the provider call had timed out
    evidence = WebhookEvent("sg-1", "processed", "ana@example.com", int(T0.timestamp()), row.key, "msg-1.x")
    result = svc.webhook_events.apply([evidence, evidence], T0)
    assert (result["applied"], result["duplicates"], result["actions"]) == (1, 1, {"ledger_sent": 1})
    [row] = ledger(svc, step_id="thank_you")
    assert (row.status, row.provider_message_id) == ("sent", "msg-1")


def test_reconcile_keeps_unknown_messages_unknown_unless_opted_in(
    svc: Services, sqlite_url: str, tmp_path: Path, shipped: dict[str, Any]
) -> None:
    svc.ingest.apply([order_placed("ana")], "api", T0)
    svc.advance.run(T0)
    with svc.store.begin() as tx:  # a worker claimed the row and died mid-call
        tx.ledger.claim_pending(T0, 10, None, lease_until=T0 + timedelta(minutes=10))
    assert svc.reconcile.run(T0 + timedelta(minutes=5)) == {"marked_unknown": 0, "released": 0, "unknown": 0}
    assert svc.reconcile.run(T0 + timedelta(minutes=20)) == {"marked_unknown": 1, "released": 0, "unknown": 1}
    assert svc.sweep(T0 + timedelta(minutes=30)).total("sent") == 0  # unknown: never resent blindly
    # Without evidence it stays unknown, however long: SendGrid may have it.
    assert svc.reconcile.run(T0 + timedelta(days=3)) == {"marked_unknown": 0, "released": 0, "unknown": 1}
    assert svc.sweep(T0 + timedelta(days=3)).total("sent") == 0
    # An installation that opted in to the resend timer releases it once the window passed.
    plans = {"post_purchase": shipped["post_purchase"]}
    opted = make_services(sqlite_url, tmp_path, plans, resend_unknown_after_minutes=60)
    assert opted.reconcile.run(T0 + timedelta(days=3, minutes=1))["released"] == 1
    assert opted.sweep(T0 + timedelta(days=3, minutes=2)).total("sent") == 1
    assert [r.status for r in ledger(svc)] == ["sent"]
    opted.store.dispose()  # type: ignore[attr-defined]

"""The use cases on real PostgreSQL with the real SendGrid client and the loopback fake: exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import ROOT, T0, event, make_services, order_placed
from sqlalchemy import func, select

from app.services import Services
from infra.db import models as m
from infra.email.fake_sendgrid import FakeSendGrid
from posventa.engine import State

pytestmark = pytest.mark.postgres


def sent_keys(fake: FakeSendGrid) -> Counter[str]:
    return Counter(msg.custom_args["posventa_key"] for msg in fake.messages)


def ledger(svc: Services, **where: Any) -> list[m.LedgerEntry]:
    with svc.store.factory() as s:
        q = select(m.LedgerEntry)
        for k, v in where.items():
            q = q.where(getattr(m.LedgerEntry, k) == v)
        return list(s.scalars(q))


def test_order_placed_sends_thank_you_once(svc: Services, fake: FakeSendGrid) -> None:
    rep = svc.ingest.apply([order_placed(1)], "api", now=T0)
    assert (rep.accepted, rep.duplicates, rep.rejected) == (1, 0, [])
    stats = svc.sweep(T0 + timedelta(minutes=1))
    assert stats.total("sent") == 1
    assert [m.to for m in fake.messages] == ["cliente1@example.com"]
    msg = fake.messages[0]
    assert msg.custom_args["posventa_key"].endswith(":thank_you:0")
    assert "post_purchase" in msg.categories
    # A second sweep at the same time, and a replay of the event, change nothing.
    svc.sweep(T0 + timedelta(minutes=2))
    assert svc.ingest.apply([order_placed(1)], "api", now=T0).duplicates == 1
    svc.sweep(T0 + timedelta(minutes=3))
    assert len(fake.messages) == 1
    [row] = ledger(svc, step_id="thank_you")
    assert row.status == "sent" and row.provider_message_id


def test_duplicate_and_out_of_order_events_change_nothing_twice(svc: Services, fake: FakeSendGrid) -> None:
    delivered = event("order.delivered", 2, T0 + timedelta(days=2))
    # Delivery arrives before the order itself, and twice.
    assert svc.ingest.apply([delivered, delivered], "api", now=T0).duplicates == 1
    svc.ingest.apply([order_placed(2)], "api", now=T0)
    svc.ingest.apply([order_placed(2)], "api", now=T0)
    with svc.store.factory() as s:
        assert s.scalar(select(func.count()).select_from(m.Enrollment)) == 1
        assert s.get(m.Order, "o2").status == "delivered"  # placed after delivered does not move it back
    for day in (2, 3, 4, 5):  # delivery_check: one day after delivery, at 10:00 Madrid time
        svc.sweep(T0 + timedelta(days=day, hours=1))
    steps = [r.step_id for r in ledger(svc)]
    assert "late_apology" not in steps  # the early delivery event counted
    assert steps.count("thank_you") == 1 and steps.count("delivery_check") == 1


def test_late_delivery_and_detractor_never_get_promotions(svc: Services, fake: FakeSendGrid) -> None:
    svc.ingest.apply([order_placed(3)], "api", now=T0)
    svc.sweep(T0)
    svc.sweep(T0 + timedelta(days=5, hours=2))  # past promised date + 1 day: apology
    assert [r.step_id for r in ledger(svc, status="sent")][-1] == "late_apology"
    svc.ingest.apply([event("order.delivered", 3, T0 + timedelta(days=6))], "api", now=T0 + timedelta(days=6))
    for day in range(6, 16):
        svc.sweep(T0 + timedelta(days=day, hours=2))
    assert any(r.step_id == "nps_survey" for r in ledger(svc, status="sent"))
    at = T0 + timedelta(days=16)
    svc.ingest.apply([event("feedback.submitted", 3, at, score=2, comment="tarde y mal")], "api", now=at)
    for day in range(16, 120, 3):
        svc.sweep(T0 + timedelta(days=day, hours=2))
    rows = ledger(svc)
    assert {"flag_detractor", "detractor_ticket", "detractor_apology"} <= {r.step_id for r in rows}
    assert not [r for r in rows if r.category == "promotional"]
    with svc.store.factory() as s:
        ticket = s.scalars(select(m.SupportTicket)).one()
        assert ticket.category == "complaint" and ticket.source == "journey"
        assert s.get(m.Customer, "c3").attributes["nps_segment"] == "detractor"


def test_suppressed_address_is_never_sent_to(svc: Services, fake: FakeSendGrid) -> None:
    with svc.store.begin() as tx:
        tx.customers.ensure("c4")
        tx.suppressions.suppress("cliente4@example.com", "bounced", source="test")
    svc.ingest.apply([order_placed(4)], "api", now=T0)
    svc.sweep(T0)
    assert fake.messages == []
    [row] = ledger(svc, step_id="thank_you")
    assert (row.status, row.reason) == ("skipped", "suppressed:bounced")
    # Ops can see why, per customer.
    from app.reports import customer_report

    report = customer_report(svc.store, "c4")
    assert report is not None
    assert [(x["reason"], x["scope"]) for x in report["suppressions"]] == [("bounced", "all")]
    assert [(r["step"], r["status"], r["reason"]) for r in report["messages"]] == [
        ("thank_you", "skipped", "suppressed:bounced")
    ]


def test_two_workers_sweeping_concurrently_send_each_step_once(
    pg_url: str, svc: Services, fake: FakeSendGrid, plans: dict[str, Any], tmp_path: Path
) -> None:
    n = 400
    svc.ingest.apply([order_placed(i) for i in range(100, 100 + n)], "api", now=T0)
    workers = [make_services(pg_url, fake, plans, tmp_path / str(w), batch_size=25) for w in range(2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(worker: Services) -> None:
        try:
            start.wait()
            worker.sweep(T0 + timedelta(minutes=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    keys = sent_keys(fake)
    assert len(keys) == n and set(keys.values()) == {1}
    assert len(ledger(svc, step_id="thank_you", status="sent")) == n


WORKER = """
import sys
from infra.email.sendgrid_sender import SendGridSender
from infra.settings import make_settings
from infra.wiring import build_services
from posventa.compile import compile_file
from datetime import datetime
url, fake_url, journeys, now = sys.argv[1:5]
settings = make_settings(database_url=url, journeys_dir=journeys, secret_key="k" * 40, batch_size=20,
                         outbox_dir="/tmp/unused-outbox")
sender = SendGridSender("SG.test", settings.email_from, host=fake_url, timeout=5)
svc = build_services(settings, sender=sender,
                     plans={"post_purchase": compile_file(journeys + "/post_purchase.yaml")})
print("ready", flush=True)
svc.sweep(datetime.fromisoformat(now))
print("finished", flush=True)
"""


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(
    pg_url: str, svc: Services, fake: FakeSendGrid
) -> None:
    n = 200
    svc.ingest.apply([order_placed(i) for i in range(500, 500 + n)], "api", now=T0)
    fake.slow_next(0.4, count=1000)  # every request takes a while: the kill lands mid-delivery
    now = (T0 + timedelta(minutes=1)).isoformat()
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, pg_url, fake.url, str(ROOT / "journeys"), now],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 60
    while fake.request_count < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    killed_at = len(fake.messages)
    assert 0 < killed_at < n
    before = sent_keys(fake)
    fake.reset()  # forget the slow-response fault (and the record, kept in `before`)
    # The next run: 'sending' rows whose lease ran out become 'unknown' (never resent blindly), the rest
    # goes out.
    later = T0 + timedelta(minutes=30)
    svc.reconcile.run(later)
    svc.sweep(later)
    keys = before + sent_keys(fake)
    assert set(keys.values()) == {1}, "a message was sent twice"
    rows = ledger(svc, step_id="thank_you")
    assert len(rows) == n, "an enrollment was lost"
    statuses = Counter(r.status for r in rows)
    assert set(statuses) <= {"sent", "unknown"}
    assert statuses["sent"] + statuses["unknown"] == n
    # Every 'sent' row really reached the provider.
    assert {r.key for r in rows if r.status == "sent"} <= set(keys)


def test_ambiguous_send_is_reconciled_not_resent_blindly(svc: Services, fake: FakeSendGrid) -> None:
    from app.records import RequeueFilter

    svc.ingest.apply([order_placed(7)], "api", now=T0)
    fake.fail_next(503, store=True)  # SendGrid may have queued it: the outcome is unknown
    svc.sweep(T0)
    [row] = ledger(svc, step_id="thank_you")
    assert row.status == "unknown"
    # Without evidence no timer resends it, inside the old window or long after it.
    for minutes in (10, 30, 61 + 30, 3 * 24 * 60):
        svc.reconcile.run(T0 + timedelta(minutes=minutes))
        svc.sweep(T0 + timedelta(minutes=minutes))
    assert len(fake.messages) == 1
    # An operator's explicit decision (posventa retry --unknown) sends it once more.
    later = T0 + timedelta(days=4)
    with svc.store.begin() as tx:
        assert tx.ledger.requeue(RequeueFilter(status="unknown"), later, "test") == 1
    svc.sweep(later)
    [row] = ledger(svc, step_id="thank_you")
    assert row.status == "sent" and len(fake.messages) == 2


def test_rate_limited_send_is_retried_after_reset(svc: Services, fake: FakeSendGrid) -> None:
    svc.ingest.apply([order_placed(8)], "api", now=T0)
    fake.fail_next(429, headers={"X-RateLimit-Reset": str(int(T0.timestamp()) + 30)})
    svc.sweep(T0)
    [row] = ledger(svc, step_id="thank_you")
    assert row.status == "pending" and row.not_before is not None and fake.messages == []
    svc.sweep(row.not_before + timedelta(seconds=1))
    assert len(fake.messages) == 1
    assert ledger(svc, step_id="thank_you")[0].status == "sent"


def test_one_customers_failure_is_recorded_and_does_not_fail_the_batch(
    svc: Services, fake: FakeSendGrid
) -> None:
    from sqlalchemy import update

    svc.ingest.apply([order_placed(i) for i in (20, 21, 22)], "api", now=T0)
    with svc.store.factory.begin() as s:  # a state that no longer fits its plan (a step that does not exist)
        s.execute(
            update(m.Enrollment)
            .where(m.Enrollment.customer_id == "c21")
            .values(state={**State.start(svc.plans["post_purchase"], T0).to_json(), "step": "gone"})
        )
    stats = svc.sweep(T0 + timedelta(minutes=1))
    assert stats.total("sent") == 2 and stats.total("failed") == 1
    assert sorted(m.to for m in fake.messages) == ["cliente20@example.com", "cliente22@example.com"]
    with svc.store.factory() as s:
        broken = s.scalars(select(m.Enrollment).where(m.Enrollment.customer_id == "c21")).one()
        assert broken.attempts == 1 and "gone" in (broken.last_error or "")
        assert broken.status == "active" and broken.next_due_at > T0 + timedelta(minutes=1)  # backs off


def test_promoter_gets_a_persisted_referral_code_in_the_referral_ask(
    svc: Services, fake: FakeSendGrid
) -> None:
    from posventa.engine import bucket

    i = next(i for i in range(30, 200) if bucket("post_purchase", f"c{i}", "referral_split") >= 10)
    svc.ingest.apply([order_placed(i)], "api", now=T0)
    svc.sweep(T0)
    at = T0 + timedelta(days=2)
    svc.ingest.apply([event("order.delivered", i, at)], "api", now=at)
    for day in range(2, 12):
        svc.sweep(T0 + timedelta(days=day, hours=2))
    at = T0 + timedelta(days=12)
    svc.ingest.apply([event("feedback.submitted", i, at, score=10)], "api", now=at)
    # past quiet hours, whatever the hour; the referral ask comes 3 days after the review request
    for hours in (1, 13, 25, 73, 85, 97, 109):
        svc.sweep(at + timedelta(hours=hours))
    with svc.store.factory() as s:
        code = s.scalars(select(m.ReferralCode.code).where(m.ReferralCode.customer_id == f"c{i}")).one()
    asks = [
        msg for msg in fake.messages if msg.custom_args["posventa_key"].split(":")[1].startswith("referral")
    ]
    assert len(asks) == 1
    assert code in (asks[0].html or "") and f"/r/{code}" in (asks[0].text or "")
    assert asks[0].headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # Only the referral mail created a code: the other messages did not.
    with svc.store.factory() as s:
        assert s.scalar(select(func.count()).select_from(m.ReferralCode)) == 1


CAPPED = """
name: Capped promotions
trigger: {event: order.placed}
entry: {once_per: order}
policy:
  frequency_cap: {max: 1, per: 7d}
steps:
  - {id: tip, type: send, template: content_tip, category: promotional}
"""


@pytest.mark.parametrize("workers", [1, 2])
def test_frequency_cap_counts_a_customers_other_enrollments(
    pg_url: str, svc: Services, fake: FakeSendGrid, tmp_path: Path, workers: int
) -> None:
    """Two enrollments of one customer due together: the cap (1 per 7 days) lets one through, whether
    they are in one batch or claimed by two workers at once."""
    from posventa.compile import compile_checked
    from posventa.validate import check_text

    plan = compile_checked(check_text(CAPPED, "journeys/capped.yaml", ROOT / "journeys" / "templates"))
    size = 1 if workers == 2 else 500  # two workers: one enrollment each; one worker: both in one batch
    rts = [
        make_services(pg_url, fake, {plan.id: plan}, tmp_path / str(w), batch_size=size)
        for w in range(workers)
    ]
    second = {**order_placed(40), "id": "evt-placed-40b", "order": {"id": "o40b"}}
    rts[0].ingest.apply([order_placed(40), second], "api", now=T0)
    if workers == 1:
        rts[0].sweep(T0)
    else:
        start = threading.Barrier(2)

        def work(worker: Services) -> None:
            start.wait()
            worker.sweep(T0)

        threads = [threading.Thread(target=work, args=(rt,)) for rt in rts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert len(fake.messages) == 1
    with svc.store.factory() as s:
        waiting = s.scalars(select(m.Enrollment).where(m.Enrollment.status == "waiting")).one()
        assert waiting.next_due_at == T0 + timedelta(days=7)

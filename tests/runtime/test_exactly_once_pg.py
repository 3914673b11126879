"""Exactly once where it used to break (issue 9), on PostgreSQL with the real SendGrid client and the
loopback fake, and no Event Webhook: a slow provider with a concurrent reconcile, an ambiguous batch
followed by later ticks, and a worker killed again and again at random points of delivery."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rt_helpers import ROOT, T0, make_services, order_placed
from sqlalchemy import select

from app.services import Services
from infra.db import models as m
from infra.email.fake_sendgrid import FakeSendGrid

pytestmark = pytest.mark.postgres


def accepted(fake: FakeSendGrid, step: str = "thank_you") -> Counter[str]:
    """How many times the fake accepted each ledger key of ``step``."""
    keys = (msg.custom_args["posventa_key"] for msg in fake.messages)
    return Counter(k for k in keys if k.split(":")[1] == step)


def statuses(svc: Services, step: str = "thank_you") -> dict[str, str]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        q = select(m.LedgerEntry.key, m.LedgerEntry.status).where(m.LedgerEntry.step_id == step)
        return {key: status for key, status in s.execute(q)}


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def later_ticks(svc: Services, start: datetime, hours: tuple[float, ...]) -> None:
    """What the scheduler does afterwards: reconcile and sweep, at each of these later times."""
    for h in hours:
        at = start + timedelta(hours=h)
        svc.reconcile.run(at)
        svc.sweep(at)


def test_a_slow_batch_with_a_concurrent_reconcile_is_sent_once_and_stays_sent(
    pg_url: str, svc: Services, fake: FakeSendGrid, plans: dict[str, Any], tmp_path: Path
) -> None:
    """Worker A sends a batch to a provider answering each request 0.15 s late. Meanwhile another run
    reconciles: first 20 minutes later on its clock (A's lease, sized for the batch, still runs), then
    3 hours later (the lease ran out while A still waits: the unanswered rows become unknown). A's 202s
    still win, and later ticks send nothing again."""
    n = 30
    svc.ingest.apply([order_placed(i) for i in range(n)], "api", now=T0)
    svc.advance.run(T0)
    # A sends one request at a time with a 30 s client timeout: its lease covers 30 × 30 s, twice over.
    worker = make_services(pg_url, fake, plans, tmp_path / "a", sendgrid_timeout=30.0, sendgrid_concurrency=1)
    fake.delay_every(0.15)
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            worker.deliver.run(T0)
        except BaseException as exc:
            errors.append(exc)

    a = threading.Thread(target=deliver)
    a.start()
    wait_for(lambda: fake.request_count >= 3)
    during_lease = svc.reconcile.run(T0 + timedelta(minutes=20))
    wait_for(lambda: fake.request_count >= 12)
    past_lease = svc.reconcile.run(T0 + timedelta(hours=3))
    a.join(60)
    assert not a.is_alive() and not errors
    fake.delay_every(0)
    later_ticks(svc, T0, (4, 6, 30))
    keys = accepted(fake)
    assert len(keys) == n and set(keys.values()) == {1}, f"accepted twice: {keys.most_common(3)}"
    assert set(statuses(svc).values()) == {"sent"}, "a definitive answer was thrown away"
    assert during_lease["marked_unknown"] == 0, "the reconciler touched a live attempt"
    # A records its answers when the batch returns: every row was still waiting for one.
    assert past_lease["marked_unknown"] == n
    # Each row's history tells the story: claimed, presumed lost, then A's own answer, one attempt.
    with svc.store.read() as tx:
        for key in keys:
            history = tx.ledger.history(key)
            assert [(h.status, h.actor) for h in history] == [
                ("sending", "deliver"),
                ("unknown", "reconcile"),
                ("sent", "deliver"),
            ]
            assert len({h.attempt_id for h in history}) == 1
    worker.store.dispose()  # type: ignore[attr-defined]


def test_an_ambiguous_batch_without_the_webhook_is_never_resent_by_later_ticks(
    svc: Services, fake: FakeSendGrid
) -> None:
    """Every request answers 500, and the provider had in fact accepted half of them. No Event Webhook is
    configured, so no evidence ever comes: later ticks, past the old 60-minute window, send nothing."""
    n = 20
    svc.ingest.apply([order_placed(i) for i in range(100, 100 + n)], "api", now=T0)
    fake.fail_next(500, count=n // 2, store=True)  # queued, then answered 500
    fake.fail_next(500, count=n // 2)  # not queued
    svc.sweep(T0)
    assert sum(accepted(fake).values()) == n // 2
    assert set(statuses(svc).values()) == {"unknown"}
    later_ticks(svc, T0, (1.1, 3, 24, 48))
    keys = accepted(fake)
    assert set(keys.values()) == {1} and len(keys) == n // 2, "an ambiguous send was resent"
    assert set(statuses(svc).values()) == {"unknown"}
    with svc.store.read() as tx:
        assert tx.ledger.count_by_status(kind="message").get("unknown") == n
        [group] = [g for g in tx.ledger.unknown_summary() if g.step_id == "thank_you"]
        assert (group.count, group.reason) == (n, "500: Internal Server Error")


# A process that imports everything once, then forks a fresh worker per line it reads (the worker's
# pid is its answer), so that the loop below can kill a worker every few hundred milliseconds without
# paying an interpreter start each time. It starts no thread and opens no connection before forking.
FORKSERVER = """
import os, signal, sys
from datetime import datetime
from infra.settings import make_settings
from infra.wiring import build_services
from posventa.compile import compile_file
import infra.email.sendgrid_sender, psycopg2  # loaded once, before forking

url, fake_url, journeys = sys.argv[1:4]
plans = {"post_purchase": compile_file(journeys + "/post_purchase.yaml")}
signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # finished workers are reaped by the kernel
print("ready", flush=True)
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        settings = make_settings(
            database_url=url, journeys_dir=journeys, secret_key="k" * 40, batch_size=10,
            outbox_dir="/tmp/unused-outbox", sendgrid_api_key="SG.test", sendgrid_host=fake_url,
            sendgrid_timeout=5, sendgrid_concurrency=2,
        )
        svc = build_services(settings, plans=plans)
        now = datetime.fromisoformat(line.strip())
        svc.sweep(now)
        svc.reconcile.run(now)
        os._exit(0)
    print(pid, flush=True)
"""


def test_a_worker_killed_again_and_again_without_the_webhook_never_duplicates_or_loses(
    pg_url: str, svc: Services, fake: FakeSendGrid
) -> None:
    """At least 20 SIGKILLs at random points of delivery (claim, render, provider call, recording),
    each worker's successor 15 minutes later on the clock; no Event Webhook. No ledger key reaches the
    provider twice, and every message ends sent or unknown — none is lost or silently dropped."""
    n = 300
    svc.ingest.apply([order_placed(i) for i in range(1000, 1000 + n)], "api", now=T0)
    while svc.advance.run(T0).enrollments:  # the messages are due: the kills land in delivery
        pass
    fake.delay_every(0.03)
    server = subprocess.Popen(
        [sys.executable, "-c", FORKSERVER, pg_url, fake.url, str(ROOT / "journeys")],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert server.stdin is not None and server.stdout is not None
    rng = random.Random(20260302)
    kills, tick, deadline = 0, 0, time.monotonic() + 45
    try:
        assert server.stdout.readline().strip() == "ready"
        while kills < 24 and time.monotonic() < deadline:
            tick += 1
            # A random point: after 0–4 of this worker's requests reached the provider, plus a little.
            requests = fake.request_count + rng.randint(0, 4)
            server.stdin.write((T0 + timedelta(minutes=15 * tick)).isoformat() + "\n")
            server.stdin.flush()
            pid = int(server.stdout.readline())
            until = time.monotonic() + 2
            while fake.request_count < requests and time.monotonic() < until:
                time.sleep(0.005)
            time.sleep(rng.uniform(0, 0.06))
            try:
                os.kill(pid, signal.SIGKILL)
                kills += 1
            except ProcessLookupError:  # it finished first
                pass
    finally:
        server.kill()
        server.wait(10)
    assert kills >= 20, f"only {kills} kills in the time allowed"
    assert 0 < sum(accepted(fake).values()) < n, "the kills did not land during delivery"
    # The scheduler goes on without further deaths: expired leases become unknown, the rest is sent.
    fake.delay_every(0)
    later_ticks(svc, T0 + timedelta(minutes=15 * (tick + 1)), (0, 1, 2, 24))
    keys = accepted(fake)
    assert set(keys.values()) == {1}, f"accepted twice: {keys.most_common(3)}"
    final = statuses(svc)
    assert len(final) == n, "an enrollment's message was lost"
    outcome = Counter(final.values())
    assert set(outcome) <= {"sent", "unknown"}, outcome
    assert {k for k, st in final.items() if st == "sent"} <= set(keys)  # every 'sent' reached the provider
    assert outcome["unknown"] > 0  # some kills landed between the provider's answer and its recording


def test_a_worker_renews_its_lease_while_the_provider_is_slow(
    pg_url: str, svc: Services, fake: FakeSendGrid, plans: dict[str, Any], tmp_path: Path
) -> None:
    svc.ingest.apply([order_placed(i) for i in range(200, 204)], "api", now=T0)
    svc.advance.run(T0)
    worker = make_services(pg_url, fake, plans, tmp_path / "a", sendgrid_concurrency=1)
    worker.deliver.renew_every = 0.05  # every 30 s in production; here the batch lasts about a second
    fake.delay_every(0.25)

    def lease() -> datetime | None:
        with svc.store.factory() as s:  # type: ignore[attr-defined]
            q = select(m.LedgerEntry.sending_until).where(m.LedgerEntry.status == "sending")
            return s.scalars(q).first()

    a = threading.Thread(target=worker.deliver.run, args=(T0,))
    a.start()
    wait_for(lambda: fake.request_count >= 1)
    first = lease()
    wait_for(lambda: fake.request_count >= 3)
    second = lease()
    a.join(30)
    assert first is not None and second is not None and second > first
    assert set(statuses(svc).values()) == {"sent"}
    with svc.store.read() as tx:
        assert tx.ledger.count_by_status().get("sending") is None  # no lease left behind
    worker.store.dispose()  # type: ignore[attr-defined]

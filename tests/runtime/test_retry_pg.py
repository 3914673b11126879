"""``posventa retry`` against the loopback fake SendGrid on PostgreSQL: a revoked key gives 401 on every
message; once it is fixed, the failed sends are requeued and each is sent once — and only those the
provider rejected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from rt_helpers import T0, order_placed
from sqlalchemy import select

from app.services import Services
from app.webhook_events import WebhookEvent
from infra.db import models as m
from infra.email.fake_sendgrid import FakeSendGrid
from infra.settings import get_settings
from posventa.cli import main

pytestmark = pytest.mark.postgres


Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def posventa(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Run]:
    """``posventa …`` on the test database: returns (exit code, stdout, stderr)."""
    monkeypatch.setenv("POSVENTA_DATABASE_URL", pg_url)
    monkeypatch.setenv("POSVENTA_TIMEZONE", "Europe/Madrid")
    get_settings.cache_clear()

    def run(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(argv) if argv[0] == "--lang" else ["--lang", "en", *argv])
        out, err = capsys.readouterr()
        return code, out, err

    yield run
    get_settings.cache_clear()


def statuses(svc: Services) -> Counter[str]:
    with svc.store.factory() as s:  # type: ignore[attr-defined]
        q = select(m.LedgerEntry.status).where(m.LedgerEntry.step_id == "thank_you")
        return Counter(s.scalars(q))


def accepted(fake: FakeSendGrid) -> Counter[str]:
    return Counter(msg.custom_args["posventa_key"] for msg in fake.messages)


def test_retry_after_a_revoked_key_sends_each_rejected_message_once(
    svc: Services, fake: FakeSendGrid, posventa: Run
) -> None:
    run = posventa
    n = 12
    # One message goes out while the key works, is accepted, and then bounces (reported by the webhook).
    svc.ingest.apply([order_placed(99)], "api", now=T0)
    fake.fail_next(500, store=True)  # accepted, but the answer was lost: unknown…
    svc.sweep(T0)
    [bounced] = fake.messages
    bounce = fake.webhook_events("bounce")[0]
    event = WebhookEvent(
        bounce["sg_event_id"], "bounce", bounced.to, int(T0.timestamp()), bounce["posventa_key"]
    )
    assert svc.webhook_events.apply([event], T0)["actions"]["ledger_failed"] == 1  # …then it bounced
    # The key is revoked: SendGrid answers 401 to every request.
    fake.api_key = "SG.revoked-and-replaced"
    svc.ingest.apply([order_placed(i) for i in range(n)], "api", now=T0)
    stats = svc.sweep(T0 + timedelta(minutes=1))
    assert stats.total("failed") == n and len(fake.messages) == 1
    assert statuses(svc) == Counter({"failed": n + 1})
    # The key is fixed. A dry run shows what would be requeued, and changes nothing.
    fake.api_key = "SG.test"
    code, out, _ = run("retry", "--dry-run")
    assert code == 0
    assert "post_purchase" in out and "thank_you" in out and f"{n:>6}" in out
    assert "401: The provided authorization grant is invalid, expired, or revoked" in out
    assert f"{n} failed sends would be requeued" in out
    assert "bounce" not in out  # it reached the provider: never requeued
    assert statuses(svc) == Counter({"failed": n + 1})
    # Requeued once, then sent once each by the next delivery.
    code, out, _ = run("retry", "--reason", "401", "--since", "2026-03-02")
    assert (code, out.splitlines()[-1]) == (
        0,
        f"{n} failed sends requeued: the next tick sends them (or now: posventa tick)",
    )
    assert svc.sweep(T0 + timedelta(minutes=5)).total("sent") == n
    keys = accepted(fake)
    assert len(keys) == n + 1 and set(keys.values()) == {1}
    assert statuses(svc) == Counter({"sent": n, "failed": 1})
    # A second retry finds nothing (exit 1), and later sweeps send nothing more.
    code, out, _ = run("retry")
    assert (code, out.strip()) == (1, "nothing to requeue: no failed send matches")
    svc.sweep(T0 + timedelta(minutes=10))
    assert len(fake.messages) == n + 1
    # The history shows each attempt and the operator's decision.
    key = next(k for k in keys if k != bounce["posventa_key"])
    with svc.store.read() as tx:
        history = tx.ledger.history(key)
    assert [(h.status, h.actor) for h in history] == [
        ("sending", "deliver"),
        ("failed", "deliver"),
        ("pending", "operator"),
        ("sending", "deliver"),
        ("sent", "deliver"),
    ]
    assert history[1].reason is not None and history[1].reason.startswith("401: ")
    assert history[2].reason is not None and history[2].reason.startswith(
        "posventa retry --reason 401 --since 2026-03-02 by "
    )
    assert history[0].attempt_id != history[3].attempt_id


def test_retry_unknown_only_when_asked_and_with_a_warning(
    svc: Services, fake: FakeSendGrid, posventa: Run
) -> None:
    run = posventa
    svc.ingest.apply([order_placed(i) for i in range(3)], "api", now=T0)
    fake.fail_next(503, count=3)  # not queued by the provider, but the answer cannot tell
    svc.sweep(T0)
    assert statuses(svc) == Counter({"unknown": 3})
    assert run("retry")[0] == 1  # failed only, by default
    code, out, err = run("retry", "--unknown", "--step", "thank_you", "--dry-run")
    assert code == 0 and "3 unknown sends would be requeued" in out
    assert "may arrive twice" in err
    assert run("retry", "--unknown", "--journey", "birthday")[0] == 1
    code, out, err = run("retry", "--unknown")
    assert code == 0 and "may arrive twice" in err
    svc.sweep(T0 + timedelta(minutes=1))
    assert statuses(svc) == Counter({"sent": 3}) and len(fake.messages) == 3


def test_retry_usage_errors_exit_2(posventa: Run) -> None:
    run = posventa
    code, _, err = run("retry", "--since", "last tuesday")
    assert code == 2 and "'last tuesday' is neither a duration (90m, 6h, 2d) nor an ISO date or time" in err
    assert run("retry", "--bogus")[0] == 2


def test_retry_shows_local_times_with_their_zone_and_translated_statuses(
    svc: Services, fake: FakeSendGrid, posventa: Run
) -> None:
    """The oldest row's time is in POSVENTA_TIMEZONE and says so; statuses follow --lang; columns align
    whatever the lengths of the values."""
    svc.ingest.apply([order_placed(i) for i in range(3)], "api", now=T0)
    fake.fail_next(401, count=3)
    svc.sweep(T0)
    code, out, _ = posventa("retry", "--dry-run")
    header, row, total = out.splitlines()
    assert header.split() == ["journey", "step", "count", "oldest", "(Europe/Madrid)", "reason"]
    assert "2026-03-02 11:00 CET" in row  # T0 is 10:00 UTC
    assert header.index("count") + len("count") == row.index(" 3 ") + 2  # right-aligned under its header
    assert header.index("oldest") == row.index("2026-03-02")
    assert total == "3 failed sends would be requeued (dry run: nothing changed)"
    code, out, _ = posventa("--lang", "es", "retry", "--dry-run")
    header, _, total = out.splitlines()
    assert header.split()[:4] == ["recorrido", "paso", "total", "más"] and "(Europe/Madrid)" in header
    assert total == "se reencolarían 3 envíos fallidos (simulacro: no se cambió nada)"
    code, out, _ = posventa("--lang", "es", "retry", "--unknown")
    assert (code, out.strip()) == (1, "nada que reencolar: ningún envío sin confirmar coincide")

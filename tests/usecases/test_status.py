"""``posventa status`` on SQLite and PostgreSQL, without a Prefect API: the due backlog and its age, the
sends awaiting reconciliation and the failed ones, the exit status, JSON and Spanish."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from uc_builders import make_services, order_placed

from app.records import Move
from infra.settings import get_settings
from posventa.cli import main

AGO = timedelta(hours=2)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest) -> str:
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    found: str = request.getfixturevalue(name)
    return found


@pytest.fixture
def shop(url: str, tmp_path: Path, shipped: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Three customers who ordered two hours ago: one advanced whose thank-you failed (a bad key), two
    still due."""
    from infra.db.testing import clear_tables

    then = datetime.now(UTC) - AGO
    svc = make_services(url, tmp_path, {"post_purchase": shipped["post_purchase"]}, clock=lambda: then)
    clear_tables(svc.store.factory.kw["bind"])  # type: ignore[attr-defined]
    svc.plans.publish()
    svc.ingest.apply([order_placed(c, at=then) for c in ("a", "b", "c")], "api", now=then)
    svc.advance.run(then, customer="a", force=True)
    with svc.store.begin() as tx:
        [work] = tx.ledger.claim_pending(then, 10, "a")
        tx.ledger.mark_many([Move(work.key, "failed", "401: invalid key")], ("sending",), now=then)
    svc.store.dispose()  # type: ignore[attr-defined]
    for name in ("PREFECT_API_URL", "POSVENTA_PREFECT_API_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("POSVENTA_DATABASE_URL", url)
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_an_old_backlog_is_unhealthy(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "en", "status"]) == 1
    out = capsys.readouterr().out
    assert "✓ due now: 2 enrollments" in out
    assert "✗ oldest due enrollment: waiting 2 h" in out and "(limit 60 min)" in out
    assert "! scheduler: no Prefect API configured" in out
    assert "✓ sends awaiting reconciliation (unknown): 0" in out
    assert "! failed sends: 1 — 401: invalid key ×1" in out
    assert out.rstrip().endswith("NOT healthy: backlog_too_old")


def test_a_backlog_within_the_limit_is_healthy_json(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--format", "json", "--max-backlog-minutes", "180"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] is True and report["problems"] == []
    assert report["backlog"]["due"] == 2
    assert AGO.total_seconds() - 60 < report["backlog"]["oldest_age_seconds"] < AGO.total_seconds() + 600
    assert report["sends"] == {
        "unknown": 0,
        "failed": 1,
        "failed_reasons": [{"reason": "401: invalid key", "n": 1}],
        # it failed two hours ago: its 401 is not judged any more
        "recent": {"unknown": 0, "failed": 0, "auth_rejected": 0, "window_seconds": 3600},
        "limits": {"failed": 10, "unknown": 10},
    }
    assert report["prefect"] == {"configured": False}


def test_status_speaks_spanish(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "es", "status"]) == 1
    out = capsys.readouterr().out
    assert "pendientes ahora: 2 inscripciones" in out
    assert "NO saludable" in out


def test_an_unreachable_prefect_api_is_unhealthy(
    shop: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("POSVENTA_PREFECT_API_URL", f"http://127.0.0.1:{port}/api")
    get_settings.cache_clear()
    assert main(["--lang", "en", "status", "--max-backlog-minutes", "180"]) == 1
    out = capsys.readouterr().out
    assert f"✗ scheduler: Prefect API http://127.0.0.1:{port}/api unreachable" in out
    assert out.rstrip().endswith("NOT healthy: prefect_unreachable")


def _fail_now(
    url: str, tmp_path: Path, shipped: dict[str, Any], status: str, n: int, reason: str | None = None
) -> None:
    """``n`` customers whose thank-you just ended ``status`` (a rejected address; an ambiguous answer)."""
    now = datetime.now(UTC)
    svc = make_services(url, tmp_path, {"post_purchase": shipped["post_purchase"]}, clock=lambda: now)
    ids = [f"{status}-{i}" for i in range(n)]
    svc.ingest.apply([order_placed(c, at=now) for c in ids], "api", now=now)
    reason = reason or ("400: invalid address" if status == "failed" else "500: oops")
    for c in ids:
        svc.advance.run(now, customer=c, force=True)
        with svc.store.begin() as tx:
            [work] = tx.ledger.claim_pending(now, 10, c)
            tx.ledger.mark_many([Move(work.key, status, reason)], ("sending",), now=now)
    svc.store.dispose()  # type: ignore[attr-defined]


def test_sends_failing_now_are_unhealthy_with_the_reason(
    shop: str, tmp_path: Path, shipped: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """Sends rejected a moment ago. Over the limit within the window: not healthy, and the line says how
    many, in which window, against which limit, and why."""
    _fail_now(shop, tmp_path, shipped, "failed", 12)
    assert main(["--lang", "en", "status", "--max-backlog-minutes", "180"]) == 1
    out = capsys.readouterr().out
    assert "✗ failed sends: 13 (12 in the last 60 min, limit 10) — 400: invalid address ×12" in out
    assert out.rstrip().endswith("NOT healthy: failed_sends")
    # A higher limit (or a shorter window that no longer holds them) is healthy again.
    assert main(["status", "--max-backlog-minutes", "180", "--max-failed-sends", "12"]) == 0
    capsys.readouterr()
    assert main(["--lang", "es", "status", "--max-backlog-minutes", "180"]) == 1
    out = capsys.readouterr().out
    assert "✗ envíos fallidos: 13 (12 en los últimos 60 min, límite 10)" in out


def test_sends_left_unknown_now_are_unhealthy(
    shop: str, tmp_path: Path, shipped: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    _fail_now(shop, tmp_path, shipped, "unknown", 3)
    assert (
        main(["status", "--format", "json", "--max-backlog-minutes", "180", "--max-unknown-sends", "2"]) == 1
    )
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == ["unknown_sends"]
    assert report["sends"]["recent"] == {
        "unknown": 3,
        "failed": 0,
        "auth_rejected": 0,
        "window_seconds": 3600,
    }


@pytest.mark.parametrize("code", ["401", "403"])
def test_one_auth_rejection_now_is_unhealthy_whatever_the_limit(
    shop: str, tmp_path: Path, shipped: dict[str, Any], capsys: pytest.CaptureFixture[str], code: str
) -> None:
    """A revoked key (401) or a lost Mail Send permission (403) fails every send: one such failure within
    the window is unhealthy, far below --max-failed-sends, with the reason in the locale."""
    _fail_now(shop, tmp_path, shipped, "failed", 1, reason=f"{code}: The provided authorization grant")
    assert main(["--lang", "en", "status", "--max-backlog-minutes", "180"]) == 1
    out = capsys.readouterr().out
    assert "✗ the email provider rejected 1 sends as unauthorized (401/403) in the last 60 min" in out
    assert "POSVENTA_SENDGRID_API_KEY" in out
    assert out.rstrip().endswith("NOT healthy: provider_auth_rejected")
    assert main(["--lang", "es", "status", "--max-backlog-minutes", "180"]) == 1
    assert "✗ el proveedor de correo rechazó 1 envíos por falta de autorización" in capsys.readouterr().out
    assert main(["status", "--format", "json", "--max-backlog-minutes", "180"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problems"] == ["provider_auth_rejected"]
    assert report["sends"]["recent"]["auth_rejected"] == 1
    # the same failure outside the window (a shorter one) is history, not a judgement
    assert main(["status", "--max-backlog-minutes", "180", "--sends-window-minutes", "0"]) == 0


def test_a_send_accepted_after_the_auth_rejection_clears_it(
    shop: str, tmp_path: Path, shipped: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """The key was fixed (rotated): a send the provider accepted after the last 401 means sends work again,
    so the old rejection is reported, not judged. The same send *before* the rejection changes nothing."""
    _fail_now(shop, tmp_path, shipped, "sent", 1)
    _fail_now(shop, tmp_path, shipped, "failed", 1, reason="401: The provided authorization grant")
    assert main(["status", "--format", "json", "--max-backlog-minutes", "180"]) == 1
    assert json.loads(capsys.readouterr().out)["problems"] == ["provider_auth_rejected"]

    now = datetime.now(UTC)
    svc = make_services(shop, tmp_path, {"post_purchase": shipped["post_purchase"]}, clock=lambda: now)
    svc.ingest.apply([order_placed("after-fix", at=now)], "api", now=now)
    svc.advance.run(now, customer="after-fix", force=True)
    with svc.store.begin() as tx:
        [work] = tx.ledger.claim_pending(now, 10, "after-fix")
        tx.ledger.mark_many([Move(work.key, "sent", None)], ("sending",), now=now)
    svc.store.dispose()  # type: ignore[attr-defined]
    assert main(["status", "--format", "json", "--max-backlog-minutes", "180"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["healthy"] and report["sends"]["recent"]["auth_rejected"] == 0
    assert report["sends"]["failed"] >= 1  # still reported (the fixture has one of its own)

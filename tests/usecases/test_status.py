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
    }
    assert report["prefect"] == {"configured": False}


def test_status_speaks_spanish(shop: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--lang", "es", "status"]) == 1
    out = capsys.readouterr().out
    assert "vencidas ahora: 2 inscripciones" in out
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

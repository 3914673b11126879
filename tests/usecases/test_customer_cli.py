"""``posventa customer ID`` on SQLite: aligned columns whatever the values' lengths, times in the business's
time zone with its abbreviation, statuses in the CLI's language (the JSON keeps the stored values)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from uc_builders import T0, make_services, order_placed

from app.records import Move
from infra.settings import get_settings
from posventa.cli import main

LONG_REASON = "400: The to.email field is not a valid address for this account"


@pytest.fixture
def customer(
    sqlite_url: str, tmp_path: Path, shipped: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """Customer a: advanced at T0, their thank-you rejected with a long reason, then unsubscribed."""
    svc = make_services(sqlite_url, tmp_path, {"post_purchase": shipped["post_purchase"]})
    svc.plans.publish()
    svc.ingest.apply([order_placed("a", at=T0)], "api", now=T0)
    svc.advance.run(T0, customer="a", force=True)
    with svc.store.begin() as tx:
        [work] = tx.ledger.claim_pending(T0, 10, "a")
        tx.ledger.mark_many([Move(work.key, "failed", LONG_REASON)], ("sending",), now=T0)
        tx.suppressions.suppress("a@example.com", "unsubscribed", "promotional", "a", "web")
    svc.store.dispose()  # type: ignore[attr-defined]
    monkeypatch.setenv("POSVENTA_DATABASE_URL", sqlite_url)
    monkeypatch.setenv("POSVENTA_TIMEZONE", "Europe/Madrid")
    get_settings.cache_clear()
    yield "a"
    get_settings.cache_clear()


def _section(out: str, title: str) -> list[str]:
    lines = out.splitlines()
    start = lines.index(title) + 1
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("  ")), len(lines))
    return lines[start:end]


def test_customer_columns_align_and_times_are_local(
    customer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--lang", "en", "customer", customer]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "Customer a · a@example.com · es · Europe/Madrid (times in Europe/Madrid)"
    header, row = _section(out, "Messages:")
    assert header.split() == ["journey", "step", "status", "reason", "at"]
    for word in ("step", "status", "reason", "at"):
        column = header.index(f" {word}") + 1
        assert row[column - 2 : column] == "  " and row[column] != " ", (word, header, row)
    assert row.split()[:3] == ["post_purchase", "thank_you", "failed"]
    assert row.endswith(f"{LONG_REASON}  2026-03-02 11:00 CET")  # T0 is 10:00 UTC
    header, row = _section(out, "Journeys:")
    assert header.split() == ["journey", "status", "step", "or", "reason", "next", "due"]
    assert row.split() == ["post_purchase", "waiting", "await_delivery", "2026-03-07", "10:00", "CET"]
    header, row = _section(out, "Suppressions:")
    assert row.split()[:3] == ["unsubscribed", "promotional", "web"]  # the date is now


def test_customer_speaks_spanish_and_json_keeps_stored_values(
    customer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--lang", "es", "customer", customer]) == 0
    out = capsys.readouterr().out
    header, row = _section(out, "Mensajes:")
    assert header.split() == ["recorrido", "paso", "estado", "motivo", "fecha"]
    assert row.split()[2] == "fallido"
    assert main(["customer", customer, "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [m["status"] for m in report["messages"]] == ["failed"]

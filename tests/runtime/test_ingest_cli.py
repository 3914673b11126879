"""`posventa ingest`: idempotent, every bad line reported with its number, never stops at the first."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rt_helpers import ROOT

GOOD = {
    "id": "e1",
    "type": "order.placed",
    "occurred_at": "2026-03-02T10:00:00+00:00",
    "customer": {"id": "c1", "email": "ana@example.com", "locale": "es"},
    "order": {"id": "o1", "total": 10},
}


def run(args: list[str], db: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "POSVENTA_DATABASE_URL": f"sqlite:///{db}",
        "POSVENTA_JOURNEYS_DIR": str(ROOT / "journeys"),
        "PATH": "/usr/bin:/bin",
        "POSVENTA_LANG": "en",
    }
    return subprocess.run(
        [sys.executable, "-m", "posventa", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ingest_reports_bad_lines_and_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run(["db", "upgrade"], db).returncode == 0
    lines = [
        json.dumps(GOOD),
        "not json",
        json.dumps(
            {
                "id": "e2",
                "type": "feedback.submitted",
                "occurred_at": "2026-03-02T10:00:00+00:00",
                "customer_id": "c1",
                "data": {"score": 11},
            }
        ),
        "[1, 2]",
        json.dumps(
            {
                "id": "e3",
                "type": "order.shiped",
                "occurred_at": "2026-03-02T10:00:00+00:00",
                "customer_id": "c1",
                "order_id": "o1",
            }
        ),
        json.dumps(
            {
                **GOOD,
                "id": "e4",
                "type": "order.delivered",
                "customer": None,
                "customer_id": "c1",
                "order": None,
                "order_id": "o1",
            }
        ),
    ]
    src = tmp_path / "events.jsonl"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    first = run(["ingest", str(src)], db)
    assert first.returncode == 1
    assert "2 accepted, 0 duplicates, 4 rejected" in first.stdout
    err = first.stderr
    assert f"{src}:2: rejected: not JSON" in err
    assert f"{src}:3: rejected: data.score" in err
    assert f"{src}:4: rejected: each line must be a JSON object" in err
    assert (
        f"{src}:5: rejected: type: unknown event type 'order.shiped' (did you mean 'order.shipped'?)" in err
    )
    assert "Traceback" not in err
    again = run(["ingest", str(src)], db)
    assert "0 accepted, 2 duplicates, 4 rejected" in again.stdout


def test_ingest_csv_with_line_numbers(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    assert run(["db", "upgrade"], db).returncode == 0
    src = tmp_path / "events.csv"
    src.write_text(
        "id,type,occurred_at,customer_id,order_id,data\n"
        'c-1,ticket.opened,2026-03-02T10:00:00+00:00,c9,,"{""ticket_id"": ""t1""}"\n'
        "c-2,ticket.opened,2026-03-02T10:00:00+00:00,c9,,{}\n",
        encoding="utf-8",
    )
    out = run(["ingest", str(src)], db)
    assert "1 accepted, 0 duplicates, 1 rejected" in out.stdout
    assert f"{src}:3: rejected: data.ticket_id" in out.stderr

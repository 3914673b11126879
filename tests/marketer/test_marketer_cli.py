"""The marketer's loop from a fresh clone on SQLite, as the README walks it: preview, plan, publish, an
edit, plan naming the change and the customers it touches, pause, resume; migrate, stop, send-test,
environment, doctor and the time walk's refusal on production — through the ``posventa`` command."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import pytest
from mk_builders import ROOT, edit

from posventa.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


#: Orders placed yesterday (09:15 UTC), promised for yesterday: recent enough to enroll (journeys ignore
#: events older than their ``stale_after``), late by today. Dates are relative to the real clock so the
#: tests do not age.
PLACED = (datetime.now(UTC) - timedelta(days=1)).replace(hour=9, minute=15, second=0, microsecond=0)
#: A virtual time for ``run --at``: the thank-you (it expires two days after the order) is still due,
#: the parcel is late.
WALK_TO = (PLACED + timedelta(days=1, hours=23)).replace(minute=0)


def _events(path: Path, *customers: str) -> Path:
    lines = [
        {
            "id": f"placed-{c}",
            "type": "order.placed",
            "occurred_at": PLACED.isoformat(),
            "customer": {"id": c, "email": f"{c}@example.com", "name": "Ana Pérez", "locale": "es"},
            "order": {
                "id": f"o-{c}",
                "total": 59.9,
                "currency": "EUR",
                "promised_delivery_date": PLACED.date().isoformat(),
            },
        }
        for c in customers
    ]
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_the_marketers_loop(capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: Path) -> None:
    journeys = Path(env["POSVENTA_JOURNEYS_DIR"])
    # A fresh clone: no database yet. The preview needs none.
    code, out, err = run(
        capsys, "preview", "post_purchase", "thank_you", "--sample", "--locale", "es", "-o", "x.html"
    )
    assert code == 0, err
    assert "Subject: ¡Gracias por tu pedido, Ana! Ya estamos con él" in out
    assert "X-Posventa-Key: preview:post_purchase:thank_you:0" in out
    assert "¡Gracias por tu pedido, Ana!" in (tmp_path / "x.html").read_text(encoding="utf-8")

    code, out, err = run(capsys, "plan")
    assert code == 2 and "+ post_purchase  new (never published)" in out and "not migrated" in err
    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, _ = run(capsys, "publish")
    assert code == 0 and "published post_purchase: — → " in out
    code, out, _ = run(capsys, "plan")
    assert code == 0 and "No changes" in out

    assert run(capsys, "ingest", str(_events(tmp_path / "ev.jsonl", "c1", "c2")))[0] == 0  # both at thank_you
    edit(journeys / "templates" / "es" / "thank_you.j2", "con cariño", "con mucho cariño")
    edit(journeys / "post_purchase.yaml", "duration: 6d", "duration: 9d")
    code, out, _ = run(capsys, "plan")
    assert code == 2, out
    assert "~ post_purchase  changed  (live " in out
    assert "    ~ thank_you  [2 here now]\n        template content thank_you[es]\n" in out
    assert "    ~ wait_before_survey  [0 here now]\n        duration: 6d → 9d\n" in out
    assert "2 live enrollments inside" in out and "Plan: 1 journey to publish" in out
    code, out, _ = run(capsys, "plan", "--format", "json", "post_purchase")
    [d] = json.loads(out)["journeys"]
    assert code == 2 and d["status"] == "changed" and d["enrollments"] == {d["live_version"]: 2}

    code, out, _ = run(capsys, "pause", "post_purchase", "--reason", "checking the coupon")
    assert code == 0 and "post_purchase: paused" in out
    code, out, _ = run(capsys, "customer", "c1")
    assert "[paused]" in out
    code, out, _ = run(capsys, "pause", "post_purchase")  # again: said, nothing changed, no traceback
    assert code == 0 and out.startswith("post_purchase: already paused since ")
    assert out.rstrip().endswith("(checking the coupon) — nothing changed")
    code, out, _ = run(capsys, "--lang", "es", "resume", "post_purchase")
    assert code == 0 and "post_purchase: en marcha" in out
    code, out, _ = run(capsys, "--lang", "es", "resume", "post_purchase")
    assert (code, out.strip()) == (0, "post_purchase: ya estaba en marcha; no se cambia nada")
    assert "[paused]" not in run(capsys, "customer", "c1")[1]

    code, out, _ = run(capsys, "publish")
    assert code == 0 and "posventa migrate post_purchase --to live --dry-run" in out
    code, out, _ = run(capsys, "migrate", "post_purchase", "--to", "live", "--dry-run")
    assert (
        code == 0
        and "(dry run: nothing changed)" in out
        and "thank_you → thank_you" in out
        and "c1, c2" in out
    )
    code, out, _ = run(capsys, "migrate", "post_purchase", "--to", "live")
    assert code == 0 and "2 enrollments moved" in out
    code, out, _ = run(capsys, "stop", "post_purchase", "--exit", "--reason", "season over")
    assert code == 0 and "stopped (season over) — enrollments ended: 2" in out


def test_preview_outputs(capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: Path) -> None:
    code, _, _ = run(capsys, "preview", "post_purchase", "content_tip", "--locale", "en", "-o", "m.eml")
    assert code == 0
    eml = message_from_bytes((tmp_path / "m.eml").read_bytes(), policy=default)
    assert eml["List-Unsubscribe"].startswith("<http://127.0.0.1:8000/u/")  # signed, promotional
    assert eml["Content-Language"] == "en" and eml.get_body(("html",)) is not None
    code, out, _ = run(capsys, "preview", "post_purchase", "nps_survey", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["locale"] == "es" and data["html"].count("/s/") >= 11
    code, _, err = run(capsys, "preview", "post_purchase", "thank_you", "-o", "x.pdf")
    assert code == 1 and "-o takes a .html or .eml file" in err
    code, _, err = run(capsys, "preview", "post_purchase", "thank_you", "--customer", "c1")
    assert code == 1 and "posventa db upgrade" in err
    code, _, err = run(capsys, "preview", "post_purchase", "by_score")
    assert code == 1 and "is not a send step" in err


def test_send_test_command(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.settings import get_settings

    assert run(capsys, "db", "upgrade")[0] == 0
    code, _, err = run(capsys, "send-test", "post_purchase", "thank_you", "--to", "qa@tienda.example")
    assert code == 1 and "POSVENTA_TEST_RECIPIENTS" in err
    monkeypatch.setenv("POSVENTA_TEST_RECIPIENTS", "@tienda.example")
    monkeypatch.setenv("POSVENTA_TEST_SEND_LIMIT", "1")
    get_settings.cache_clear()
    code, out, err = run(capsys, "send-test", "post_purchase", "thank_you", "--to", "qa@tienda.example")
    assert code == 0 and "test message sent to q***@tienda.example through outbox" in out, err
    assert "1 of 1 test sends this hour" in out
    [eml] = (tmp_path / "outbox").glob("test_*.eml")
    assert "[PRUEBA]" in str(message_from_bytes(eml.read_bytes(), policy=default)["Subject"])
    code, _, err = run(capsys, "send-test", "post_purchase", "thank_you", "--to", "qa@tienda.example")
    assert code == 1 and "1 test messages in the last hour already" in err


def test_invalid_journeys_exit_1(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    edit(
        Path(env["POSVENTA_JOURNEYS_DIR"]) / "post_purchase.yaml",
        "goto: review_request",
        "goto: reveiw_request",
    )
    code, _, err = run(capsys, "plan")
    assert code == 1 and "error[unknown-step]" in err


def test_time_travel_is_refused_on_production(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from infra.settings import get_settings

    assert run(capsys, "db", "upgrade")[0] == 0
    code, out, _ = run(capsys, "environment", "production")
    assert (
        code == 0
        and "environment: production (POSVENTA_ENVIRONMENT=development; database mark: production)" in out
    )
    code, _, err = run(capsys, "run", "--customer", "c1", "--at", "2026-12-06T10:00")
    assert code == 1 and "production database" in err
    code, _, err = run(capsys, "environment", "development")
    assert code == 1 and "--yes" in err
    assert run(capsys, "environment", "development", "--yes")[0] == 0
    monkeypatch.setenv("POSVENTA_ENVIRONMENT", "production")
    get_settings.cache_clear()
    code, _, err = run(capsys, "run", "--customer", "c1", "--advance", "7d")
    assert code == 1 and "production database" in err
    code, _, err = run(capsys, "run", "--customer", "c1", "--at", "2026-12-06T10:00", "--advance", "1d")
    assert code == 2  # one or the other


def test_a_database_behind_the_code_is_named_by_doctor_and_db(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    """A database one migration behind: doctor fails on it and says what to run, as the commands that
    refuse it do; ``db current`` says the same; ``db upgrade REV`` stops at a revision (found by a
    new-user run: doctor printed ✓ for a database that plan refused)."""
    from infra.db.migrate import head

    newest = head()
    older = f"{int(newest) - 1:04d}"
    code, out, _ = run(capsys, "db", "upgrade", older)
    assert code == 0 and f"revision {older}; this Posventa needs {newest}: run posventa db upgrade" in out
    code, out, _ = run(capsys, "doctor")
    assert code == 1
    assert "✗ database sqlite:///" in out and f"revision {older}, this Posventa needs {newest}" in out
    code, out, _ = run(capsys, "db", "current")
    assert code == 0 and f"this Posventa needs {newest}" in out
    events = Path(env["POSVENTA_JOURNEYS_DIR"]).parent / "events.jsonl"
    events.write_text("")
    code, _, err = run(capsys, "ingest", str(events))  # the runtime refuses it too, before any write
    assert code == 1 and f"the database is at revision {older}, this Posventa needs {newest}" in err
    code, out, _ = run(capsys, "db", "upgrade")
    assert code == 0 and out.strip() == f"database at revision {newest}"
    code, out, _ = run(capsys, "doctor")
    assert "✓ database sqlite:///" in out and f"revision {newest}" in out


def test_doctor_names_placeholders_and_unpublished_journeys(
    capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    journeys = Path(env["POSVENTA_JOURNEYS_DIR"])
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "publish")[0] == 0
    assert run(capsys, "pause", "returns")[0] == 0
    edit(journeys / "post_purchase.yaml", "duration: 6d", "duration: 9d")
    _, out, _ = run(capsys, "doctor")
    assert f"! shop policy {journeys / 'templates' / 'es' / '_shop.j2'}: REFERRAL_REWARD_FRIEND, " in out
    assert "! POSVENTA_EMAIL_FROM is the shipped placeholder (hola@posventa.example)" in out
    assert "! POSVENTA_PUBLIC_BASE_URL is http://127.0.0.1:8000" in out
    assert "! journeys with unpublished changes: post_purchase (posventa plan)" in out
    assert "! journeys not running: returns (paused)" in out
    # Referral links go to the shop only when POSVENTA_SHOP_URL says where it is.
    assert "! POSVENTA_SHOP_URL is not set: referral links send friends to http://127.0.0.1:8000" in out
    assert "never published" not in out


def test_doctor_names_journeys_never_published(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A production start with POSVENTA_AUTO_PUBLISH_FIRST_RUN=false, or a new journey file: nobody enters
    a journey until it is published, and doctor says which."""
    from infra.settings import get_settings

    journeys = Path(env["POSVENTA_JOURNEYS_DIR"])
    assert run(capsys, "db", "upgrade")[0] == 0
    names = "birthday, post_purchase, replenishment, returns, warranty"
    # A fresh database with auto-publish on (the default): the first process will publish them.
    _, out, _ = run(capsys, "doctor")
    assert f"! journeys not published yet: {names} — the first process" in out
    assert "never published" not in out
    _, out, _ = run(capsys, "--lang", "es", "doctor")
    assert f"! recorridos aún sin publicar: {names} — el primer proceso" in out
    # Auto-publish off: nobody enters them until someone publishes.
    monkeypatch.setenv("POSVENTA_AUTO_PUBLISH_FIRST_RUN", "false")
    get_settings.cache_clear()
    _, out, _ = run(capsys, "doctor")
    assert f"! journeys never published: {names} — nobody enters them" in out
    monkeypatch.delenv("POSVENTA_AUTO_PUBLISH_FIRST_RUN")
    get_settings.cache_clear()
    assert run(capsys, "publish", "post_purchase")[0] == 0
    (journeys / "welcome.yaml").write_text(
        (journeys / "returns.yaml").read_text(encoding="utf-8"), encoding="utf-8"
    )
    monkeypatch.setenv("POSVENTA_SHOP_URL", "https://tienda.example")
    get_settings.cache_clear()
    _, out, _ = run(capsys, "--lang", "es", "doctor")
    assert "! recorridos nunca publicados: birthday, replenishment, returns, warranty, welcome" in out
    assert " siguen con el ejemplo (escribe la tuya" in out  # several names: plural
    assert "✓ configuración: correcto" in out and "✓ recorridos: 6 válidos en " in out
    assert "✓ correo: sin clave de SendGrid" in out
    assert "POSVENTA_SHOP_URL" not in out


@pytest.mark.prefect
def test_run_walks_one_customer_through_time(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks import steps

    monkeypatch.setenv(
        "PREFECT_HOME", os.environ.get("PREFECT_HOME") or str(ROOT / ".posventa" / "prefect-test")
    )
    assert run(capsys, "db", "upgrade")[0] == 0
    assert run(capsys, "ingest", str(_events(tmp_path / "ev.jsonl", "c1")))[0] == 0
    steps._from_settings.cache_clear()  # the flow's services: this test's database
    try:
        code, out, err = run(capsys, "run", "--customer", "c1", "--at", WALK_TO.strftime("%Y-%m-%dT%H:%M"))
        assert code == 0, err
        assert f"customer c1 advanced at virtual time {WALK_TO.isoformat()}" in out
        assert "messages sent: 2" in out  # the thank-you, and the apology: the parcel is late by then
    finally:
        steps._from_settings.cache_clear()
    earlier = WALK_TO - timedelta(hours=1)
    code, _, err = run(capsys, "run", "--customer", "c1", "--at", earlier.strftime("%Y-%m-%dT%H:%M"))
    assert code == 1 and "time only moves forward" in err
    _, out, _ = run(capsys, "customer", "c1", "--format", "json")
    messages = [(x["step"], x["status"], x["at"][:10]) for x in json.loads(out)["messages"]]
    day = WALK_TO.date().isoformat()
    assert messages == [("thank_you", "sent", day), ("late_apology", "sent", day)]


def test_a_database_behind_the_code_is_named(capsys: pytest.CaptureFixture[str], env: dict[str, str]) -> None:
    from infra.db.migrate import upgrade

    upgrade(env["POSVENTA_DATABASE_URL"], "0003")
    code, _, err = run(capsys, "plan")
    assert code == 1 and "revision 0003" in err and "posventa db upgrade" in err

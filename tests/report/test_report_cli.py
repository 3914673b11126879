"""``posventa report`` through the real command line (``posventa.cli.main``, the entry point group), on
SQLite and PostgreSQL: the JSON's plain keys with the fixture's hand-computed numbers, the table in both
languages, CSV and HTML to a file, and clear one-line errors (no traceback, no file) for bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from report_builders import World, sample_world
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from infra.settings import get_settings
from posventa.cli import main
from posventa.plan import JourneyPlan

FUNNEL_KEYS = ("sent", "delivered", "opened", "clicked", "converted", "revenue")


@pytest.fixture
def db(
    engine: Engine, session: Session, plans: dict[str, JourneyPlan], monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """The sample world in the database ``posventa report`` is pointed at (POSVENTA_DATABASE_URL)."""
    sample_world(World(session, plans))
    session.commit()
    url = engine.url.render_as_string(hide_password=False)
    for key in ("POSVENTA_LANG", "LANG", "LC_ALL"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("POSVENTA_DATABASE_URL", url)
    monkeypatch.setenv("POSVENTA_TIMEZONE", "UTC")
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def report_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["report", "--format", "json", *args]) == 0
    found: dict = json.loads(capsys.readouterr().out)
    return found


def test_json_has_the_plain_keys_with_the_fixture_numbers(
    db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = report_json(capsys)
    for key in ("nps", "on_time_delivery", "repeat_purchase", "churn", "referral", "funnel"):
        assert key in out, key
    # 10, 9 promoters; 8 passive; 6 detractor → (2 − 1) / 4 = 25.0
    assert out["nps"]["overall"]["nps"] == 25.0 and out["nps"]["overall"]["responses"] == 4
    assert out["referral"]["codes_sent"] == 1 and out["referral"]["orders"] == 1
    assert out["referral"]["revenue"] == 30.0
    journeys = {j["journey_id"]: j for j in out["funnel"]}
    assert set(journeys) == {"post_purchase", "warranty"}
    pp = journeys["post_purchase"]
    thanks = [s for s in pp["steps"] if s["step_id"] == "thank_you"]
    for step in thanks:
        assert set(FUNNEL_KEYS) <= set(step), step
    # thank-you of enrollment i gets the first 4 − i % 3 of (delivered, open, click): 1, 3, 4 all three;
    # 2 delivered and open
    assert sum(s["sent"] for s in thanks) == 4
    assert sum(s["delivered"] for s in thanks) == 4
    assert sum(s["opened"] for s in thanks) == 4
    assert sum(s["clicked"] for s in thanks) == 3
    # ana converted (variant plain) with her 40.00 order after entering
    assert sum(s["converted"] for s in thanks) == 1 and sum(s["revenue"] for s in thanks) == 40.0
    assert pp["entered"] == 4 and pp["converted"] == 1


def test_one_journey_and_a_period(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = report_json(capsys, "--journey", "warranty")
    assert [j["journey_id"] for j in out["funnel"]] == ["warranty"]
    assert out["journey"] == "warranty"
    # the sample's post-purchase enrollments entered on 2026-03-02 09:00 UTC, the warranty one a day later
    out = report_json(capsys, "--since", "2026-03-03", "--until", "2026-03-04")
    entered = {j["journey_id"]: j["entered"] for j in out["funnel"]}
    assert entered["warranty"] == 1 and entered.get("post_purchase", 0) == 0
    out = report_json(capsys, "--since", "2030-01-01")  # nobody: every count zero, every key there
    assert all(j["entered"] == 0 and j["steps"] == [] for j in out["funnel"])


def test_table_in_both_languages(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--lang", "en"]) == 0
    en = capsys.readouterr().out
    assert en.startswith("Posventa — results report") and "NPS 25.0 · 4 answers" in en
    assert main(["--lang", "es", "report"]) == 0
    es = capsys.readouterr().out
    assert es.startswith("Posventa — informe de resultados") and "NPS 25,0 · 4 respuestas" in es


def test_csv_and_html_to_a_file(db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = tmp_path / "r.csv"
    assert main(["report", "--format", "csv", "-o", str(csv_path)]) == 0
    assert str(csv_path) in capsys.readouterr().err
    lines = csv_path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "section,journey_id,step_id,variant,group,metric,value"
    assert "nps,,,,,nps,25.0" in lines
    html = tmp_path / "r.html"
    assert main(["report", "--format", "html", "-o", str(html), "--lang", "en"]) == 0
    page = html.read_text(encoding="utf-8")
    assert "<h1>Posventa — results report</h1>" in page and "<svg" in page
    assert "http://" not in page.replace("http://www.w3.org/", "")  # nothing fetched from elsewhere


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday' is neither a day"),
        (["--until", "2026-02-30"], "--until '2026-02-30' is neither a day"),
        (["--since", "2026-03-01T10:00"], "is neither a day"),  # no offset: ambiguous
        (["--since", "2026-04-01", "--until", "2026-03-01"], "the period is empty"),
        (["--journey", "nope"], "unknown journey 'nope' (known: post_purchase, warranty"),
    ],
)
def test_bad_requests_are_one_clear_line(
    db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    out = tmp_path / "never.json"
    assert main(["--lang", "en", "report", *args, "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: ") and message in captured.err, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()


def test_an_unknown_format_is_a_usage_error(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--format", "pdf"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'pdf'" in err and "Traceback" not in err


def test_a_database_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("POSVENTA_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.db'}")
    get_settings.cache_clear()
    try:
        assert main(["--lang", "en", "report"]) == 1
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert err.startswith("error: database sqlite:///") and "posventa db upgrade" in err
    assert "Traceback" not in err

"""The renderers on a report built from ``sample_world`` (SQLite: the metrics have their own tests on
both backends): JSON names every key, CSV parses, the table speaks the locale, the HTML page is one
self-contained file with its charts as inline SVG."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import Counter
from collections.abc import Iterator

import pytest
from report_builders import World, at, sample_world
from sqlalchemy import Engine

from infra.db.session import session_factory
from infra.report import charts
from infra.report.assemble import build_report
from infra.report.model import Report, ReportError
from infra.report.render import FORMATS, render
from infra.report.render_text import CSV_COLUMNS
from posventa.plan import JourneyPlan

FUNNEL_KEYS = {
    "entered",
    "due",
    "sent",
    "delivered",
    "bounced",
    "opened",
    "clicked",
    "unsubscribed",
    "spam_reports",
    "converted",
    "revenue",
    "median_time_to_step_s",
    "deferred",
}
TOP_KEYS = {
    "funnel",
    "splits",
    "nps",
    "on_time_delivery",
    "repeat_purchase",
    "churn",
    "referral",
    "complaints",
    "deferred",
    "notes",
    "period",
    "journey",
    "generated_at",
}


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, plans: dict[str, JourneyPlan]) -> Iterator[Report]:
    from infra.db.session import make_engine
    from infra.db.testing import migrated_sqlite_url

    engine: Engine = make_engine(migrated_sqlite_url(tmp_path_factory.mktemp("report")))
    try:
        with session_factory(engine)() as s:
            sample_world(World(s, plans))
            s.commit()
            yield build_report(s, now=at(30), plans=plans)
    finally:
        engine.dispose()


def test_json_names_every_key(report: Report) -> None:
    data = json.loads(render(report, "json"))
    assert set(data) >= TOP_KEYS
    pp = next(j for j in data["funnel"] if j["journey_id"] == "post_purchase")
    assert pp["entered"] == 4 and pp["steps"]
    for step in pp["steps"]:
        assert set(step) >= FUNNEL_KEYS, step
    thank_you = [s for s in pp["steps"] if s["step_id"] == "thank_you"]
    assert sum(s["sent"] for s in thank_you) == 4 and sum(s["opened"] for s in thank_you) > 0
    assert data["deferred"] == 1 and data["notes"] == []
    tip = next(s for s in pp["steps"] if s["deferred"])
    assert tip["step_id"] == "referral_ask" and tip["deferred_by"] == {
        "quiet_hours": 1,
        "frequency_cap": 0,
        "complaint_hold": 0,
    }
    assert {"nps", "responses", "promoters", "passives", "detractors"} <= set(data["nps"]["overall"])
    assert data["nps"]["overall"]["responses"] == 4
    assert {"on_time_rate", "delivered", "late"} <= set(data["on_time_delivery"]["overall"])
    assert [w["days"] for w in data["repeat_purchase"]["windows"]] == [30, 60, 90, 180]
    assert {"rate", "customers", "churned", "window_days"} <= set(data["churn"])
    assert data["referral"] == data["referral"] | {"codes_sent": 1, "clicks": 1, "orders": 1, "revenue": 30.0}
    assert data["complaints"]["overall"]["opened"] == 2
    [split] = data["splits"]
    assert split["holdout"]["variant"] == "holdout" and {"difference", "ci_low", "ci_high"} <= set(
        split["variants"][0]
    )


def test_csv_parses_one_number_per_row(report: Report) -> None:
    text = render(report, "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert tuple(rows[0]) == CSV_COLUMNS
    sections = Counter(r["section"] for r in rows)
    assert {
        "journey",
        "step",
        "split",
        "nps",
        "nps_by_week",
        "on_time_delivery",
        "repeat_purchase",
        "churn",
        "referral",
        "tickets",
    } <= set(sections)
    for r in rows:
        assert r["value"] == "" or float(r["value"]) == float(r["value"])  # a number or unknown
    sent = sum(
        float(r["value"])
        for r in rows
        if (r["section"], r["step_id"], r["metric"]) == ("step", "thank_you", "sent")
    )
    assert sent == 4


def test_table_speaks_the_locale(report: Report) -> None:
    es, en = render(report, "table", "es"), render(report, "table", "en")
    assert es.startswith("Posventa — informe de resultados") and "Embudo por recorrido y paso" in es
    assert en.startswith("Posventa — results report") and "Funnel by journey and step" in en
    assert "thank_you" in es and "referral_split" in es and "¡Genial!" in es
    with pytest.raises(ReportError, match="unknown format 'xml'"):
        render(report, "xml")
    assert set(FORMATS) == {"table", "json", "csv", "html", "summary", "markdown"}


def _self_contained(page: str) -> None:
    assert not re.search(r"<script|<link|<iframe|<img|<object|<embed|@import", page, re.I)
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page, re.I)
    assert not re.search(r"url\(\s*['\"]?\s*(https?:)?//", page, re.I)
    ids = re.findall(r"""\sid="([^"]+)\"""", page)
    assert len(ids) == len(set(ids)), Counter(ids).most_common(3)


def test_html_is_one_self_contained_page_with_svg_charts(report: Report) -> None:
    page = render(report, "html", "es")
    _self_contained(page)
    assert page.startswith("<!doctype html>") and '<html lang="es">' in page
    assert page.count("<svg") >= 5  # a funnel per journey with numbers, NPS and on-time charts, diagrams
    for css in ("funnel-chart", "nps-chart", "on-time-chart", "diagram"):
        assert f'class="chart {css}"' in page or f'class="{css}"' in page, css
    assert "Embudo por recorrido y paso" in page and "Diagrama con recuentos" in page
    assert "results report" in render(report, "html", "en")


def test_the_diagram_needs_graphviz() -> None:
    assert shutil.which("dot"), "Graphviz dot not found: apt-get install graphviz (the diagrams need it)"


def test_without_graphviz_the_diagram_is_a_table(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charts.shutil, "which", lambda name: None)
    page = render(report, "html", "en")
    _self_contained(page)
    assert "Graphviz (dot) is not installed" in page and 'class="diagram-table"' in page
    assert '<div class="diagram">' not in page
    pp = next(j for j in report.funnel if j.journey_id == "post_purchase")
    assert charts.diagram_svg(pp, "en") is None
    assert charts.diagram_svg(pp, "en", dot="/nonexistent/dot") is None


def test_diagram_labels_steps_with_their_counts(report: Report) -> None:
    pp = next(j for j in report.funnel if j.journey_id == "post_purchase")
    source = charts.diagram_dot(pp, "en")
    assert '"thank_you" [label="thank_you\\nsend: thank_you\\nreached 4"' in source
    assert '"content_wait" [label="content_wait\\nwait\\nhere now 2"' in source
    assert (
        '"by_score" -> "review_request" [label="condition 1", tooltip="event.data.score >= 9", '
        'labeltooltip="event.data.score >= 9"]'
    ) in source  # a branch case by number, its condition on hover
    svg = charts.diagram_svg(pp, "en")
    assert svg is not None and svg.startswith("<svg") and "reached 4" in svg and ' id="' not in svg


def test_kpi_summary_and_markdown(report: Report) -> None:
    # 10 messages sent (4 thank-yous, 4 surveys, a referral ask, a warranty notice); the thank-yous were
    # all delivered and opened, three clicked; the referral ask waited through three quiet-hours sweeps
    en = render(report, "summary", "en")
    assert en.splitlines()[0] == "KPI summary"
    assert "10 sent · 4 delivered (40.0%) · 4 opened (100.0%) · 3 clicked (75.0%) · 1 deferred" in en
    assert "NPS 25.0 · 4 answers" in en and "Referrals" in en and "30 d: 20.0% (1/5)" in en
    es = render(report, "summary", "es")
    assert es.splitlines()[0] == "Resumen de KPI" and "4 entregados (40,0 %)" in es
    md = render(report, "markdown", "en")
    assert md.startswith("# Posventa — results report\n") and "## KPI summary" in md
    assert "| referral_ask | plain | 1 | 1 | 1 | 0 | 0 | 0 | 1 | 40.00 |" in md
    assert "### birthday (Birthday greeting)\n\nno data" in md

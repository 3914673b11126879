"""``posventa demo`` end to end, as ``make demo`` runs it (the installed command, in a fresh folder, the real
Prefect engine in embedded mode, SendGrid's signed events posted to the real webhook endpoint): its
summary, the KPI summary, ``report.html`` (opened in headless Chromium: the charts draw), and ``posventa
report --format json`` on the demo's database with every key and non-zero funnel counts.

One demo run for the module (a few minutes on a busy machine); each test reads what it left behind.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.prefect, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
POSVENTA = Path(sys.executable).parent / "posventa"
FUNNEL = ("sent", "delivered", "opened", "clicked", "converted", "revenue")


@dataclass(frozen=True)
class Demo:
    folder: Path
    out: str
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.folder / ".posventa" / "demo" / "demo.db"

    def report(self, *args: str) -> dict[str, Any]:
        env = self.env | {"POSVENTA_DATABASE_URL": f"sqlite:///{self.db}"}
        done = subprocess.run(
            [str(POSVENTA), "report", "--format", "json", *args],
            cwd=self.folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        found: dict[str, Any] = json.loads(done.stdout)
        return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    folder = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSVENTA_", "PREFECT_"))}
    env |= {
        "POSVENTA_JOURNEYS_DIR": str(ROOT / "journeys"),
        "PREFECT_HOME": str(folder / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        [str(POSVENTA), "--lang", "en", "demo", "--customers", "150", "--weeks", "8"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield Demo(folder, done.stdout, env)


def summary_rows(out: str) -> dict[tuple[str, str], dict[str, Any]]:
    lines = out.split("Summary per journey step\n", 1)[1].split("\n\n", 1)[0].splitlines()
    head = re.split(r"\s{2,}", lines[0].strip())
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        row = dict(zip(head, cells, strict=False))
        rows[(row["journey"], row["step"])] = row
    return rows


def test_the_summary_counts_actions_apart_and_deferrals_per_message(demo: Demo) -> None:
    rows = summary_rows(demo.out)
    assert set(next(iter(rows.values()))) >= {"sent", "actions", "deferred", "delivered", "opened", "clicked"}
    # actions are no emails: the detractor's ticket and attribute are actions, never "sent"
    for step in ("flag_detractor", "detractor_ticket"):
        row = rows[("post_purchase", step)]
        assert row["sent"] == "0" and int(row["actions"]) > 0, row
    # the warranty journey has customers (bought two years ago) and its notice went out
    assert int(rows[("warranty", "warranty_notice")]["sent"]) > 0
    # deferred counts messages: never more than the step's messages (the old count was per sweep)
    report = demo.report()
    for (journey, step), row in rows.items():
        if int(row["deferred"]):
            steps = [
                s
                for j in report["funnel"]
                if j["journey_id"] == journey
                for s in j["steps"]
                if s["step_id"] == step
            ]
            assert int(row["deferred"]) == sum(s["deferred"] for s in steps)
    assert report["deferred"] == sum(int(r["deferred"]) for r in rows.values())
    assert 0 < report["deferred"] < sum(int(r["sent"]) for r in rows.values())


def test_signed_webhook_events_went_through_the_endpoint(demo: Demo) -> None:
    found = re.search(r"SendGrid Event Webhook: (\d+) signed events posted .* (\d+) applied", demo.out)
    assert found, demo.out[-2000:]
    posted, applied = int(found.group(1)), int(found.group(2))
    assert posted > 100 and applied == posted


def test_the_kpi_summary_and_report_html(demo: Demo) -> None:
    out = demo.out
    kpis = out.split("KPI summary\n", 1)[1]
    for name in ("Messages", "NPS", "On-time delivery", "Repeat purchase", "Churn", "Referrals", "Journeys"):
        assert re.search(rf"^  {name}\s", kpis, re.M), name
    messages = re.search(
        r"Messages\s+(\d+) sent · (\d+) delivered .* · (\d+) opened .* · (\d+) clicked", kpis
    )
    assert messages and all(int(n) > 0 for n in messages.groups()), kpis
    page = Path(re.search(r"Report \(charts, works offline\): (\S+)", out).group(1))  # type: ignore[union-attr]
    assert page == demo.folder / ".posventa" / "demo" / "report.html"
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") >= 5 and "<script src" not in html and "<link" not in html


def test_report_json_on_the_demo_database(demo: Demo) -> None:
    report = demo.report()
    for key in ("nps", "on_time_delivery", "repeat_purchase", "churn", "referral", "funnel"):
        assert report[key], key
    steps = [s for j in report["funnel"] for s in j["steps"]]
    for key in FUNNEL:
        assert all(key in s for s in steps), key
        assert sum(s[key] for s in steps) > 0, key
    assert report["nps"]["overall"]["responses"] > 0
    assert report["on_time_delivery"]["overall"]["delivered"] > 0
    # friends opened referral links on the demo's server (GET /r/<code>): clicks counted for the referrers
    assert report["referral"]["codes_sent"] > 0 and report["referral"]["clicks"] > 0
    assert {j["journey_id"] for j in report["funnel"] if j["entered"]} >= {
        "post_purchase",
        "returns",
        "warranty",
    }


@pytest.mark.browser
def test_report_html_charts_draw_in_chromium(demo: Demo, tmp_path: Path) -> None:
    from chromium import chromium
    from selenium.webdriver.common.by import By

    with chromium(tmp_path / "chromium-profile", page_load_timeout=60) as browser:
        browser.get((demo.folder / ".posventa" / "demo" / "report.html").as_uri())
        assert browser.find_element(By.TAG_NAME, "h1").text == "Posventa — results report"
        for css in (".funnel-chart svg", ".nps-chart svg", ".on-time-chart svg", ".diagram svg"):
            chart = browser.find_element(By.CSS_SELECTOR, css)
            assert chart.is_displayed() and chart.size["width"] > 50 and chart.size["height"] > 50, css
        assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        height = int(browser.execute_script("return document.body.scrollHeight"))
        browser.set_window_size(1280, min(height + 40, 12000))
        browser.save_screenshot(str(artifacts / "demo-report-en.png"))

"""The HTML report opened from a file in real headless Chromium: every chart draws, nothing is fetched
from anywhere (the page works offline), and a screenshot lands in ``test-artifacts/``.

Chromium is started by ``tests/chromium.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import chromium
from report_builders import ROOT, World, at, sample_world
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from infra.db.session import make_engine, session_factory
from infra.db.testing import migrated_sqlite_url
from infra.report.assemble import build_report
from infra.report.render import render
from posventa.plan import JourneyPlan

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def test_report_html_opens_offline_with_its_charts(
    browser: WebDriver, tmp_path: Path, plans: dict[str, JourneyPlan]
) -> None:
    locale = "es"  # the English page differs only in its labels (tests/report/test_render.py)
    engine = make_engine(migrated_sqlite_url(tmp_path))
    try:
        with session_factory(engine)() as s:
            sample_world(World(s, plans))
            s.commit()
            report = build_report(s, now=at(30), plans=plans)
    finally:
        engine.dispose()
    page = tmp_path / "report.html"
    page.write_text(render(report, "html", locale), encoding="utf-8")

    browser.get(page.as_uri())
    heading = browser.find_element(By.TAG_NAME, "h1").text
    assert heading == ("Posventa — informe de resultados" if locale == "es" else "Posventa — results report")
    # every inline SVG is laid out with a real size: the charts and diagrams draw
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg')).map(s => s.getBoundingClientRect())"
        ".map(r => [Math.round(r.width), Math.round(r.height)])"
    )
    assert len(sizes) >= 5 and all(w > 50 and h > 50 for w, h in sizes), sizes
    for css in (".funnel-chart svg", ".nps-chart svg", ".on-time-chart svg", ".diagram svg"):
        assert browser.find_element(By.CSS_SELECTOR, css).is_displayed(), css
    # nothing was fetched: no script, stylesheet, font or image from anywhere
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    nps = browser.find_element(By.CSS_SELECTOR, "#kpi-nps b").text
    assert nps == ("25,0" if locale == "es" else "25.0")  # 10, 9 promoters; 8 passive; 6 detractor: (2−1)/4
    ARTIFACTS.mkdir(exist_ok=True)
    browser.set_window_size(1280, int(browser.execute_script("return document.body.scrollHeight")) + 40)
    browser.save_screenshot(str(ARTIFACTS / f"report-{locale}.png"))

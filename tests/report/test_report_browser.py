"""The HTML report opened from a file in real headless Chromium: every chart draws, nothing is fetched
from anywhere (the page works offline), and a screenshot lands in ``test-artifacts/``.

Chromium and chromedriver are Debian packages (``make browser-deps``); missing ones fail the test with that
instruction, as in ``tests/web/test_browser.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from report_builders import ROOT, World, at, sample_world
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from infra.db.session import make_engine, session_factory
from infra.db.testing import migrated_sqlite_url
from infra.report.assemble import build_report
from infra.report.render import render
from posventa.plan import JourneyPlan

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make browser-deps`", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


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

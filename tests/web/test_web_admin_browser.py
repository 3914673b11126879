"""The /admin area in real headless Chromium against the live server: signing in through the form, the
journeys dashboard with its counts, a journey page whose Graphviz diagram draws with the counts on its
steps, the report page whose charts draw under the admin bar, a customer's timeline. Screenshots go to the
test's tmp dir (``screenshots/``); nothing is fetched from anywhere else; scripts cannot read the session
cookie (HttpOnly)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_builders import ADMIN, PASSWORD, World, admin_world
from chromium import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = [pytest.mark.browser, pytest.mark.postgres]


@pytest.fixture
def world(db_url: str, tmp_path: Path) -> Iterator[World]:
    with admin_world(db_url, tmp_path) as built:
        yield built


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile", window="1280,900", lang="es-ES") as driver:
        yield driver


def shot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot (Chromium's DevTools capture beyond the viewport)."""
    folder = tmp_path / "screenshots"
    folder.mkdir(exist_ok=True)
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]  # type: ignore[attr-defined]
    clip = {"x": 0, "y": 0, "width": size["width"], "height": min(size["height"], 16000), "scale": 1}
    png = driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": clip}
    )
    path = folder / f"{name}.png"
    path.write_bytes(base64.b64decode(png["data"]))
    assert path.stat().st_size > 10_000  # a real picture, not a blank page
    return path


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def svg_sizes(driver: WebDriver, css: str) -> list[list[int]]:
    return list(
        driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(s => s.getBoundingClientRect())"
            ".map(r => [Math.round(r.width), Math.round(r.height)])",
            css,
        )
    )


def sign_in(driver: WebDriver, base: str, target: str) -> None:
    driver.get(base + target)
    wait_for(driver, "form input[name=password]")
    assert driver.current_url.startswith(base + "/admin/login?next=")
    driver.find_element(By.ID, "username").send_keys(ADMIN)
    driver.find_element(By.ID, "password").send_keys(PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "button.primary").click()
    wait_for(driver, "nav.admin")


def test_dashboard_journey_and_report_in_chromium(world: World, browser: WebDriver, tmp_path: Path) -> None:
    base = world.live.base
    sign_in(browser, base, "/admin")
    assert browser.current_url == base + "/admin"
    # the dashboard: the journey's live counts
    row = browser.find_element(By.CSS_SELECTOR, 'tr[data-journey="post_purchase"]')
    assert row.find_element(By.CSS_SELECTOR, "td.entered").text == "2"
    assert row.find_element(By.CSS_SELECTOR, "td.live").text == "2"
    assert browser.find_element(By.TAG_NAME, "h1").text == "Recorridos"
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script reads the session
    shot(browser, tmp_path, "admin-dashboard")

    # a journey: its diagram draws, with the counts on the steps
    row.find_element(By.CSS_SELECTOR, "a").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/admin/journeys/"))
    wait_for(browser, "#diagram svg")
    assert browser.current_url == base + "/admin/journeys/post_purchase"
    diagram = browser.find_element(By.CSS_SELECTOR, "#diagram svg")
    assert diagram.is_displayed()
    assert all(w > 100 and h > 100 for w, h in svg_sizes(browser, "#diagram svg"))
    labels = [t.text for t in diagram.find_elements(By.TAG_NAME, "text")]
    assert "thank_you" in labels and "nps_survey" in labels
    assert labels.count("llegaron 2") >= 2
    reached = browser.find_element(By.CSS_SELECTOR, 'tr[data-step="nps_survey"] td.reached').text
    assert reached == "2"
    assert browser.find_element(By.CSS_SELECTOR, "#funnel svg").is_displayed()
    shot(browser, tmp_path, "admin-journey")

    # the report: the admin bar on top, every chart drawn, nothing fetched from anywhere
    browser.find_element(By.LINK_TEXT, "Informe").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/admin/report"))
    wait_for(browser, "#kpis")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Posventa — informe de resultados"
    assert browser.find_element(By.CSS_SELECTOR, "nav.admin").is_displayed()
    for css in (".funnel-chart svg", ".nps-chart svg", ".diagram svg"):
        assert browser.find_element(By.CSS_SELECTOR, css).is_displayed(), css
    sizes = svg_sizes(browser, ".chart svg, .diagram svg")
    assert len(sizes) >= 3 and all(w > 50 and h > 50 for w, h in sizes), sizes
    assert browser.find_element(By.CSS_SELECTOR, "#kpi-nps b").text == "100,0"
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    shot(browser, tmp_path, "admin-report")

    # the filters: this journey only, in English
    browser.find_element(By.CSS_SELECTOR, 'select#journey option[value="post_purchase"]').click()
    browser.find_element(By.CSS_SELECTOR, "form.filters button").click()
    WebDriverWait(browser, 20).until(ec.url_contains("journey=post_purchase"))
    wait_for(browser, "#kpis")
    browser.find_element(By.LINK_TEXT, "English").click()
    WebDriverWait(browser, 20).until(ec.url_contains("lang=en"))
    wait_for(browser, "#kpis")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Posventa — results report"
    assert "journey=post_purchase" in browser.current_url


def test_customer_timeline_in_chromium(world: World, browser: WebDriver, tmp_path: Path) -> None:
    base = world.live.base
    sign_in(browser, base, "/admin/customers")
    field = browser.find_element(By.ID, "id")
    field.send_keys(world.answered)
    field.submit()
    WebDriverWait(browser, 20).until(ec.url_contains("id="))
    wait_for(browser, "#timeline")
    kinds = {r.get_attribute("class") for r in browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")}
    assert {"kind-event", "kind-enrollment", "kind-message", "kind-answer"} <= kinds
    answer = browser.find_element(By.CSS_SELECTOR, "#timeline tr.kind-answer").text
    assert "nps 9/10" in answer and '<script>alert("x")</script> muy bien' in answer  # shown as text
    assert not browser.find_elements(By.CSS_SELECTOR, "#timeline script")
    shot(browser, tmp_path, "admin-customer")
    # sign out: the pages are closed again
    browser.find_element(By.CSS_SELECTOR, "nav.admin form button").click()
    WebDriverWait(browser, 20).until(ec.url_contains("/admin/login"))
    wait_for(browser, "form input[name=password]")
    assert "Has salido." in browser.page_source
    browser.get(base + "/admin")
    wait_for(browser, "form input[name=password]")
    assert browser.current_url.startswith(base + "/admin/login")

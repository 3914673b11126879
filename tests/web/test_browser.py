"""Real headless Chromium against the app served by uvicorn on loopback: a survey email rendered by the
delivery use case, clicked, commented; an unsubscribe link followed and confirmed. Screenshots:
``test-artifacts/``.

Chromium and chromedriver are Debian packages (``make browser-deps``). Missing ones fail the test with
that instruction: a browser test that silently skips is a browser test that never runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from chromium import chromium
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import select
from web_builders import (
    REPO,
    Live,
    ledger,
    links_in,
    promoter_id,
    serve_live,
    survey_link,
    walk_to_survey,
)

from infra.db import models as m
from infra.db.store import SqlTx
from infra.email.outbox import outbox_stem

pytestmark = [pytest.mark.browser, pytest.mark.postgres]

ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture
def live(db_url: str, tmp_path: Path) -> Iterator[Live]:
    with serve_live(db_url, tmp_path) as server:
        yield server


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    with chromium(tmp_path / "chromium-profile", window="412,915", lang="es-ES") as driver:
        yield driver


def shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def wait_for(driver: WebDriver, css: str) -> None:
    WebDriverWait(driver, 15).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def test_survey_email_click_comment_and_branch(live: Live, browser: WebDriver) -> None:
    cid = promoter_id("browser")
    journey = walk_to_survey(live.svc, cid)
    nine = survey_link(journey.survey_html.read_text(encoding="utf-8"), 9)
    assert nine.startswith(live.base + "/s/")
    now = live.clock.set(journey.survey_at + timedelta(hours=1))

    browser.get(nine)
    wait_for(browser, "h1")
    assert browser.find_element(By.TAG_NAME, "h1").text == "¡Gracias por tu respuesta, Ana!"
    assert "Tu respuesta: 9 de 10." in browser.find_element(By.ID, "answer").text
    assert browser.find_element(By.ID, "score-9").get_attribute("aria-current") == "true"
    # mobile-friendly: nothing wider than the phone-sized window, tap targets at least 44 px
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    assert browser.find_element(By.ID, "score-10").size["height"] >= 44
    shot(browser, "survey-thanks")

    browser.find_element(By.ID, "comment").send_keys("Todo perfecto, ¡gracias!")
    browser.find_element(By.ID, "send-comment").click()
    wait_for(browser, "#comment-thanks")
    assert "Hemos recibido tu comentario" in browser.find_element(By.ID, "comment-thanks").text
    shot(browser, "survey-commented")

    with live.svc.store.factory() as s:
        fb = s.scalars(select(m.FeedbackResponse).where(m.FeedbackResponse.customer_id == cid)).one()
        assert (fb.score, fb.comment) == (9, "Todo perfecto, ¡gracias!")
    live.svc.sweep(now)
    steps = ledger(live.svc, cid)
    # a promoter is asked for a product review at once (the referral ask follows three days later)
    assert steps["review_request"][0] == "sent", steps


def test_unsubscribe_link_from_a_promotional_email(live: Live, browser: WebDriver) -> None:
    cid = promoter_id("unsub")
    journey = walk_to_survey(live.svc, cid)
    now = live.clock.set(journey.survey_at + timedelta(hours=1))
    browser.get(survey_link(journey.survey_html.read_text(encoding="utf-8"), 10))
    wait_for(browser, "#answer")
    live.svc.sweep(now)  # the promoter is asked for a product review: a promotional email
    with live.svc.store.factory() as s:
        key = s.scalar(
            select(m.LedgerEntry.key).where(
                m.LedgerEntry.customer_id == cid, m.LedgerEntry.step_id == "review_request"
            )
        )
    assert key is not None
    email_html = (live.svc.deliver.sender.directory / f"{outbox_stem(key)}.html").read_text(  # type: ignore[attr-defined]
        encoding="utf-8"
    )
    [unsubscribe] = {href for href, _ in links_in(email_html) if "/u/" in href}
    assert unsubscribe.startswith(live.base + "/u/")

    browser.get(unsubscribe)
    wait_for(browser, "#confirm-unsubscribe")
    assert browser.find_element(By.TAG_NAME, "h1").text == "¿Quieres darte de baja?"
    assert "Tienda Olivo" in browser.page_source
    shot(browser, "unsubscribe-confirm")
    with live.svc.store.factory() as s:
        assert SqlTx(s).suppressions.is_suppressed(f"{cid}@example.com", promotional=True) is None
    browser.find_element(By.ID, "confirm-unsubscribe").click()
    wait_for(browser, "#unsubscribed")
    assert browser.find_element(By.ID, "unsubscribed").text == "Baja confirmada"
    shot(browser, "unsubscribe-done")
    browser.get(unsubscribe)  # the same link later: the confirmation, no button to press again
    wait_for(browser, "#unsubscribed")
    assert browser.find_elements(By.ID, "confirm-unsubscribe") == []
    assert "Ya no recibirás correos promocionales de Tienda Olivo" in browser.page_source

    with live.svc.store.factory() as s:
        assert SqlTx(s).suppressions.is_suppressed(f"{cid}@example.com", promotional=True) == "unsubscribed"
    for days in (30, 60, 90):
        live.svc.sweep(now + timedelta(days=days))
    assert not any(step.startswith("content_tip") for step in ledger(live.svc, cid))
    with live.svc.store.factory() as s:
        assert (
            s.scalar(select(m.Enrollment.status).where(m.Enrollment.id == journey.enrollment_id)) == "exited"
        )

"""Headless Chromium for the page tests (the HTML report, the demo's report): one way to start it, with
the flags the product owner asks for. Chromium and chromedriver are Debian packages (``make
browser-deps``); missing ones fail the test with that instruction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


@contextmanager
def chromium(
    profile: Path, page_load_timeout: float = 30, *, window: str = "1280,900", lang: str | None = None
) -> Iterator[WebDriver]:
    """``profile``: the browser's profile folder; ``window``: its size; ``lang``: its language (sent as
    Accept-Language, e.g. ``es-ES``; headless Chromium ignores ``--lang`` for that)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: run `make browser-deps`", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    if lang:
        options.add_argument(f"--lang={lang}")
        options.add_experimental_option("prefs", {"intl.accept_languages": f"{lang},{lang.split('-')[0]}"})
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()

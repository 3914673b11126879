"""A real headless Chromium for the browser tests of ``tests/web`` (the customer pages, the admin area).

Chromium and chromedriver are Debian packages (``make browser-deps``). Missing ones fail the test with that
instruction: a browser test that silently skips is a browser test that never runs.
"""

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
def chromium(tmp_path: Path, *, window: str = "1280,900", lang: str = "es-ES") -> Iterator[WebDriver]:
    """Headless Chromium driven by chromedriver, its profile in ``tmp_path``; ``lang`` is the browser's
    language (its Accept-Language)."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    if missing:
        pytest.fail(
            f"{', '.join(missing)} not found: run `make browser-deps` (installs the Debian chromium and "
            "chromium-driver packages) to run the browser tests",
            pytrace=False,
        )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    # headless Chromium ignores --lang for Accept-Language: the preference sets it
    options.add_experimental_option("prefs", {"intl.accept_languages": f"{lang},{lang.split('-')[0]}"})
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
        f"--lang={lang}",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()

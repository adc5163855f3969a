"""Headless Chromium for the console and report tests, driven by Playwright with the system's chromium.

``browser`` skips when Playwright or a chromium binary is missing, and fails instead when the environment
says ``VOICECB_REQUIRE_BROWSER=1`` (as CI does), so a broken browser install cannot pass silently.
Screenshots go under the test's ``tmp_path`` (``--basetemp`` keeps them).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def _missing(reason: str) -> None:
    if os.environ.get("VOICECB_REQUIRE_BROWSER") == "1":
        pytest.fail(f"VOICECB_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def executable() -> str | None:
    """The chromium to drive: ``VOICECB_CHROMIUM`` if set, else the first on PATH."""
    named = os.environ.get("VOICECB_CHROMIUM")
    if named:
        return named if os.path.isfile(named) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def open_live(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A new page on a console's ``url``, once it says it is live; and the list its script errors go to."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    expect(page.locator("#status")).to_have_attribute("data-live", "1")
    return page, errors


@pytest.fixture(scope="module", name="browser")
def browser_fixture() -> Iterator[Any]:
    """A headless Chromium (one per test module: launching takes about half a second)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install playwright; never 'playwright install')")
    path = executable()
    if path is None:
        _missing("no chromium on PATH, or VOICECB_CHROMIUM names no file (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, headless=True, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()

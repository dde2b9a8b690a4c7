"""Open a page in a real headless browser: Debian's chromium, driven by Playwright.

    with open_page(out / "report" / "index.html") as (page, errors):
        assert errors == []
        page.select_option("#stage", "score"); page.click("#apply")
        page.screenshot(path=tmp_path / "report.png")

Playwright's own browser download (`playwright install`) is never used: it needs the internet, so
setup.sh installs chromium from apt and Playwright launches that one instead.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # playwright is imported when a test opens a page, so a missing one fails that test clearly
    from playwright.sync_api import ConsoleMessage, Page


def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        pytest.fail("no chromium: the report tests open the report in Debian's chromium; bash setup.sh installs it")
    return path


@contextmanager
def open_page(path: Path, timeout_s: float = 10) -> Iterator[tuple[Page, list[str]]]:
    """Yield (page, errors) for the file at path, loaded; errors gathers every console error and uncaught
    exception, from the load on, so a test sees what a user's browser console would show."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("no playwright: pip install -r requirements-dev.txt (bash setup.sh does)")
    path = Path(path).resolve()
    assert path.is_file(), f"{path} does not exist"
    errors: list[str] = []

    def console(msg: ConsoleMessage) -> None:
        # The location names the file: "Failed to load resource" alone does not say which one.
        if msg.type == "error":
            errors.append(f"console.error: {msg.text} ({msg.location['url']}:{msg.location['lineNumber']})")

    with sync_playwright() as playwright:
        # No args needed: Playwright itself passes --headless, --no-sandbox (chromium will not start as root
        # with its sandbox) and --disable-dev-shm-usage (a container's small /dev/shm would crash it). And no
        # --allow-file-access-from-files: a user who opens the file by double-click has no such flag, so the
        # report must work without it (a plain <script src> from its folder does; fetch() would not).
        browser = playwright.chromium.launch(executable_path=chromium())
        try:
            page = browser.new_page()
            # A missing element fails the test in seconds, not after Playwright's 30 s default.
            page.set_default_timeout(timeout_s * 1000)
            page.on("console", console)
            page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
            page.goto(path.as_uri(), wait_until="load")
            yield page, errors
        finally:
            browser.close()

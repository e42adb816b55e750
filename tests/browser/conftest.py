"""Fixtures of the console's browser tests: Debian's Chromium driven by Playwright, and
a page that fails the test on a console error or a failed request, keeping a full-page
screenshot of every page it visited in ``test-artifacts/console/``."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.browser.chromium import ARTIFACTS, RecordedPage, chromium_missing, launch
from tests.conftest import require_or_skip

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

#: Opens a page of the console at a base URL: ``open_console(base_url)``.
OpenConsole = Callable[[str], RecordedPage]


@pytest.fixture(scope="module")
def chromium() -> Iterator[BrowserContext]:
    """Headless Chromium with a fresh profile, for one test module.

    Not for the session: Playwright's sync API keeps an event loop running in the
    worker's main thread until it stops, and every later test of that xdist worker that
    runs a loop of its own (``asyncio.run``, pytest-asyncio) would then fail with
    "Runner.run() cannot be called from a running event loop"."""
    missing = chromium_missing()
    require_or_skip("Chromium", missing is None, missing or "")
    from playwright.sync_api import sync_playwright

    with (
        tempfile.TemporaryDirectory(prefix="driftloop-chromium-") as profile,
        sync_playwright() as playwright,
    ):
        context = launch(playwright, Path(profile))
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_console(chromium: BrowserContext, request: pytest.FixtureRequest) -> Iterator[OpenConsole]:
    """Opens pages of a console in a new tab; at the end of the test, fails it when any
    page logged a console error, threw, or saw a request fail, and prints where the
    screenshots are."""
    opened: list[RecordedPage] = []
    chromium.clear_cookies()  # each test logs in (or not) for itself

    def open_page(base_url: str) -> RecordedPage:
        recorded = RecordedPage(chromium.new_page(), base_url, request.node.name)
        opened.append(recorded)
        return recorded

    yield open_page
    problems = [problem for page in opened for problem in page.problems]
    shots = [shot for page in opened for shot in page.screenshots]
    for page in opened:
        page.page.close()
    if shots:
        print(f"screenshots of {request.node.name}: {ARTIFACTS}/ ({len(shots)} files)")
    assert not problems, "the console's pages went wrong in the browser:\n" + "\n".join(problems)

"""Debian's Chromium driven by Playwright: where it is, how it is launched, and a page
that keeps what went wrong in it.

Chromium is the one ``tests/browser/chromium.sh`` installs (``make test`` calls it
before pytest); Playwright never downloads a browser here. Where Chromium is absent the
browser tests skip with the reason, and fail under ``DRIFTLOOP_REQUIRE_SERVICES=1`` as
they do for PostgreSQL and Redis.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import (
        BrowserContext,
        ConsoleMessage,
        Page,
        Playwright,
        Request,
        Response,
    )

__all__ = ["ARTIFACTS", "CHROMIUM", "CHROMIUM_ARGS", "RecordedPage", "chromium_missing", "launch"]

#: The browser (Debian's ``chromium`` package); ``DRIFTLOOP_CHROMIUM`` points elsewhere.
CHROMIUM = Path(os.environ.get("DRIFTLOOP_CHROMIUM", "/usr/bin/chromium"))

#: Headless, no sandbox (tests run as root in CI), and nothing that calls home: a
#: request Chromium makes on its own would count as a failed one on a machine offline.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

#: Screenshots of every page the browser tests visit (gitignored; kept by CI as artifacts).
ARTIFACTS = (
    Path(
        os.environ.get(
            "DRIFTLOOP_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "test-artifacts"
        )
    )
    / "console"
)

#: The viewer's zone in the browser tests: not the machine's (UTC), so a page that shows
#: UTC where it should show the viewer's time is caught.
VIEWER_TIMEZONE = "Asia/Kolkata"


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (tests/browser/chromium.sh installs Debian's chromium)"
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not executable"
    try:
        import playwright  # noqa: F401
    except ImportError as error:
        return f"playwright is not installed ({error})"
    return None


def launch(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """Chromium with a fresh profile in ``user_data_dir``, in the viewer's zone."""
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=str(CHROMIUM),
        args=list(CHROMIUM_ARGS),
        headless=True,
        timezone_id=VIEWER_TIMEZONE,
        locale="en-GB",
        viewport={"width": 1400, "height": 900},
    )


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:80] or "overview"


@dataclass
class RecordedPage:
    """A browser page that records console errors, uncaught exceptions and failed
    requests (no answer, or an answer of status 400 or more), and keeps a full-page
    screenshot of every page visited through :meth:`visit`.

    Args:
        page: The Playwright page.
        base_url: The console's URL, joined to the paths given to :meth:`visit`.
        name: Prefix of the screenshots' file names (the test's name).
    """

    page: Page
    base_url: str
    name: str
    problems: list[str] = field(default_factory=list)
    screenshots: list[Path] = field(default_factory=list)
    #: URL patterns whose failures a test expects (an upstream it stopped on purpose).
    expected_failures: list[re.Pattern[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("console", self._on_console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("requestfailed", self._on_request_failed)
        self.page.on("response", self._on_response)

    def _expected(self, url: str) -> bool:
        return any(pattern.search(url) for pattern in self.expected_failures)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            location = message.location
            where = f"{location.get('url', '')}:{location.get('lineNumber', '')}"
            if not self._expected(where):
                self.problems.append(f"console error: {message.text} ({where})")

    def _on_request_failed(self, request: Request) -> None:
        failure = request.failure or "failed"
        # A stream the page closes on leaving (the live feed's EventSource) is aborted
        # by the browser: that is not a failure of the console.
        if "ERR_ABORTED" in failure and request.resource_type == "eventsource":
            return
        if not self._expected(request.url):
            self.problems.append(f"request failed: {request.method} {request.url}: {failure}")

    def _on_response(self, response: Response) -> None:
        if response.status >= 400 and not self._expected(response.url):
            self.problems.append(
                f"request failed: {response.request.method} {response.url}: {response.status}"
            )

    def login(self, token: str) -> None:
        """Log in as the console's login form does: the token in its HttpOnly cookie."""
        from driftloop_console.entrypoints.session import COOKIE

        self.page.context.add_cookies(
            [
                {
                    "name": COOKIE,
                    "value": token,
                    "url": self.base_url,
                    "httpOnly": True,
                    "sameSite": "Strict",
                }
            ]
        )

    def expect_failure(self, url_pattern: str) -> None:
        """Failures of requests whose URL matches ``url_pattern`` are the test's to check."""
        self.expected_failures.append(re.compile(url_pattern))

    def visit(self, path: str) -> Page:
        """Open ``path`` of the console, wait until its requests settle, and keep a
        full-page screenshot of it."""
        self.page.goto(f"{self.base_url.rstrip('/')}{path}", wait_until="load")
        self.settle()
        self.screenshot(path)
        return self.page

    def settle(self) -> None:
        """Wait until the page has made no request for 500 ms (the live feed's stream
        stays open, so this waits on the load of the rest, bounded)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_load_state("networkidle", timeout=5_000)
        except PlaywrightTimeout:  # a page with an open stream may never go idle
            self.page.wait_for_timeout(300)

    def screenshot(self, label: str) -> Path:
        """A full-page screenshot into :data:`ARTIFACTS`, named after the test and ``label``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{_slug(self.name)}-{len(self.screenshots) + 1:02d}-{_slug(label)}.png"
        self.page.screenshot(path=str(path), full_page=True)
        self.screenshots.append(path)
        return path

"""The browser fixture catches what it promises to: a console error, an uncaught
exception and a failed request each fail the test, and every visit leaves a screenshot.

Without this, "no console error on any page" could pass because nothing was listening.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import BrowserContext

from tests.browser.chromium import RecordedPage

pytestmark = pytest.mark.integration

#: No favicon request (Chromium asks for /favicon.ico; a page without one fails it).
_HEAD = '<link rel="icon" href="data:,">'
PAGES = {
    "/clean": f"{_HEAD}<h1>fine</h1><canvas></canvas>",
    "/noisy": (
        f"{_HEAD}<h1>noisy</h1>"
        "<script>console.error('broken panel');</script>"
        "<script>fetch('/missing');</script>"
        "<script>undefinedFunction();</script>"
    ),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = PAGES.get(self.path)
        self.send_response(200 if body is not None else 500)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write((body or "down").encode())

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_clean_page_records_nothing_and_leaves_a_screenshot(
    chromium: BrowserContext, site: str
) -> None:
    page = RecordedPage(chromium.new_page(), site, "recorder-clean")
    try:
        page.visit("/clean")
        assert page.problems == []
        assert len(page.screenshots) == 1
        assert page.screenshots[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        page.page.close()


def test_a_console_error_an_exception_and_a_failed_request_are_each_recorded(
    chromium: BrowserContext, site: str
) -> None:
    page = RecordedPage(chromium.new_page(), site, "recorder-noisy")
    try:
        page.visit("/noisy")
        found = "\n".join(page.problems)
        assert "console error: broken panel" in found
        assert "page error:" in found
        assert "undefinedFunction" in found
        assert f"request failed: GET {site}/missing: 500" in found
    finally:
        page.page.close()

"""Browser fixtures: Debian's Chromium driven by Playwright, the app served for real by werkzeug in a thread.

The app is the `app` fixture of tests/conftest.py (fresh migrated database, real Redis) with the demo data
loaded and CSRF protection on, as in production. Jobs are run between steps with `run_jobs` (a real RQ
worker in burst mode), exactly like the Flask-client tests.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from tests.conftest import run_jobs
from tests.factories import with_demo

CHROMIUM = Path("/usr/bin/chromium")
PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "test-artifacts"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
_CALL_REPORT = pytest.StashKey[pytest.TestReport]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: end-to-end test in headless Chromium (needs /usr/bin/chromium)")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Remember the outcome of the test body, so fixtures can keep screenshots of failures."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_REPORT] = report
    return report


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator[Any]:
    """Headless Debian Chromium (Playwright cannot download its own browsers here)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class LiveServer:
    """The app served on a real port."""

    app: Flask
    url: str

    def run_jobs(self) -> int:
        """Run the queued jobs (SMS, process steps) with a real RQ worker in burst mode."""
        return run_jobs(self.app)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    """The demo data set served by werkzeug's threaded server on 127.0.0.1 (any free port), CSRF on."""
    with_demo(app)
    app.config["WTF_CSRF_ENABLED"] = True
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app=app, url=f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class Browsing:
    """Opens one browser context per person (separate cookies), records script errors, keeps failure shots."""

    browser: Any
    server: LiveServer
    test_name: str
    pages: dict[str, Any] = field(default_factory=dict)
    script_errors: list[str] = field(default_factory=list)

    def new_page(self, who: str) -> Any:
        context = self.browser.new_context(base_url=self.server.url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                           viewport={"width": 1280, "height": 900})
        context.set_default_timeout(10_000)
        page = context.new_page()
        page.on("pageerror", lambda exc: self.script_errors.append(f"{who}: {exc}"))
        page.on("console", lambda message: self._note_policy_violation(who, message))
        self.pages[who] = page
        return page

    def _note_policy_violation(self, who: str, message: Any) -> None:
        """Chromium reports what the Content-Security-Policy blocked as console errors: each is a broken page."""
        if message.type == "error" and "Content Security Policy" in message.text:
            self.script_errors.append(f"{who}: {message.text}")

    def close(self, failed: bool) -> None:
        for who, page in self.pages.items():
            if failed and not page.is_closed():
                ARTIFACTS.mkdir(exist_ok=True)
                try:
                    page.screenshot(path=str(ARTIFACTS / f"failed-{self.test_name}-{who}.png"), full_page=True)
                except Exception:  # noqa: BLE001 - a failure shot must never hide the real failure
                    pass
            page.context.close()


@pytest.fixture
def browsing(chromium_browser: Any, live_server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Browsing]:
    """Browser contexts against the live server; no uncaught script error and no violation of the
    Content-Security-Policy (which every response carries, as in production) may happen on any page."""
    session = Browsing(browser=chromium_browser, server=live_server, test_name=re.sub(r"\W+", "_", request.node.name))
    for stale in ARTIFACTS.glob(f"failed-{session.test_name}-*.png"):
        stale.unlink()
    yield session
    report = request.node.stash.get(_CALL_REPORT, None)
    session.close(failed=report is None or report.failed)
    assert not session.script_errors, f"uncaught script errors in the browser: {session.script_errors}"

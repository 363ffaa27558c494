"""Page weight: load the main pages in headless Chromium (Playwright, Debian's /usr/bin/chromium) against a running
X-Pilot (`make run`, demo data) and print, per page, the bytes transferred (headers and bodies as sent, i.e. after
compression) and the load time, against the targets of the UX issue: dashboard <= 400 KB, modeler <= 700 KB,
every school page <= 150 KB.

Each page is loaded in a fresh browser context (empty cache: a first visit). With --throttle KBIT the network is
slowed to that many kbit/s (e.g. 1500 for 1.5 Mbit/s) so that the load time is that of a slow line.

Usage: python bench/weight.py [--url http://127.0.0.1:5000] [--throttle 1500]
Exit status 1 when a page is over its target.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "demo2026pilot"
KB = 1024
# (who logs in, path, target bytes)
PAGES: list[tuple[str | None, str, int]] = [
    (None, "/", 150 * KB), (None, "/login", 150 * KB), (None, "/register", 150 * KB),
    ("zjxx_weekly", "/school/", 150 * KB), ("zjxx_weekly", "/school/info", 150 * KB),
    ("zjxx_weekly", "/school/declarations/new", 150 * KB),
    ("gd_admin", "/province/dashboard", 400 * KB),
    ("analyst", "/processes/declaration/edit", 700 * KB),
    ("gd_reviewer", "/review/", 400 * KB),
]


def log_in(page: Any, username: str) -> None:
    page.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("form button[type=submit]").last.click()
    page.wait_for_load_state("load")


def measure(browser: Any, url: str, who: str | None, path: str, throttle: int | None) -> tuple[int, float]:
    """Bytes transferred and seconds to the load event of one page, cold cache."""
    context = browser.new_context(base_url=url, locale="zh-CN", timezone_id="Asia/Shanghai")
    try:
        page = context.new_page()
        if who:
            log_in(page, who)
        cdp = context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.clearBrowserCache")
        cdp.send("Network.setCacheDisabled", {"cacheDisabled": True})
        if throttle:
            rate = throttle * 1000 / 8
            cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 40,
                                                           "downloadThroughput": rate, "uploadThroughput": rate})
        sizes: dict[str, float] = {}
        cdp.on("Network.loadingFinished", lambda e: sizes.__setitem__(e["requestId"], e["encodedDataLength"]))
        started = time.perf_counter()
        response = page.goto(path, wait_until="load")
        elapsed = time.perf_counter() - started
        page.wait_for_timeout(300)  # late loadingFinished events
        if response is None or not response.ok:
            raise SystemExit(f"{path}: {response.status if response else 'no answer'} (is the demo data loaded?)")
        return int(sum(sizes.values())), elapsed
    finally:
        context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://127.0.0.1:5000")
    parser.add_argument("--throttle", type=int, default=None, help="kbit/s, e.g. 1500")
    args = parser.parse_args()
    over = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        print(f"{'page':<34} {'who':<12} {'KB':>8} {'target':>7} {'load s':>7}")
        for who, path, target in PAGES:
            size, seconds = measure(browser, args.url, who, path, args.throttle)
            flag = "" if size <= target else "  OVER"
            over += bool(flag)
            print(f"{path:<34} {who or '-':<12} {size / KB:>8.1f} {target / KB:>7.0f} {seconds:>7.2f}{flag}")
        browser.close()
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())

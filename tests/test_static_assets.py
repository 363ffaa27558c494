"""Weight: versioned static URLs cached for a year, and gzip for text responses."""
from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

from flask import Flask

from tests.factories import with_demo

STATIC = Path(__file__).resolve().parents[1] / "app" / "static"


def test_static_urls_carry_the_content_version_and_are_cached_for_a_year(app: Flask) -> None:
    with_demo(app)
    client = app.test_client()
    html = client.get("/login").get_data(as_text=True)
    found = re.search(r'href="/static/site\.css\?v=([0-9a-f]{12})"', html)
    assert found is not None
    assert found.group(1) == hashlib.sha256((STATIC / "site.css").read_bytes()).hexdigest()[:12]
    versioned = client.get(f"/static/site.css?v={found.group(1)}")
    assert versioned.status_code == 200 and "max-age=31536000" in versioned.headers["Cache-Control"]
    assert "immutable" in versioned.headers["Cache-Control"]
    for stale in ("/static/site.css", "/static/site.css?v=000000000000"):  # not this content's URL: not for a year
        assert "max-age=31536000" not in client.get(stale).headers.get("Cache-Control", "")


def test_text_responses_are_gzipped_for_browsers_that_accept_it(app: Flask) -> None:
    with_demo(app)
    client = app.test_client()
    plain = client.get("/static/vendor/echarts/echarts.min.js")
    assert "Content-Encoding" not in plain.headers
    original = plain.get_data()
    for _ in range(2):  # compressed once, then served from memory
        packed = client.get("/static/vendor/echarts/echarts.min.js", headers={"Accept-Encoding": "gzip, br"})
        assert packed.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in packed.headers["Vary"]
        assert gzip.decompress(packed.get_data()) == original
        assert int(packed.headers["Content-Length"]) < len(original) / 2
    page = client.get("/register", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and "院校注册" in gzip.decompress(page.get_data()).decode()

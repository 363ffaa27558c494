"""Sessions end with logout and password change; security headers and cookie flags; no inline script."""
from __future__ import annotations

import re
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.demo import DEMO_PASSWORD
from tests.factories import login, with_demo

TEMPLATES = Path(__file__).resolve().parents[1] / "app" / "templates"


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _client_with_cookie(app: Flask, value: str) -> FlaskClient:
    copy = app.test_client()
    copy.set_cookie("session", value)
    return copy


def test_a_session_cookie_copied_before_logout_no_longer_opens_the_review_queue(app):
    with_demo(app)
    reviewer = app.test_client()
    assert login(reviewer, "gd_reviewer").status_code == 302
    copied = _session_cookie(reviewer)
    assert _client_with_cookie(app, copied).get("/review/").status_code == 200
    assert reviewer.post("/logout").status_code == 302
    replayed = _client_with_cookie(app, copied).get("/review/")
    assert replayed.status_code == 302 and "/login" in replayed.headers["Location"]


def test_logout_ends_the_users_other_sessions_too(app):
    with_demo(app)
    office, home = app.test_client(), app.test_client()
    login(office, "gd_reviewer")
    login(home, "gd_reviewer")
    home.post("/logout")
    assert office.get("/review/").status_code == 302
    assert login(office, "gd_reviewer").status_code == 302  # logging in again works
    assert office.get("/review/").status_code == 200


def test_a_password_change_ends_every_other_session_but_keeps_the_current_one(app):
    with_demo(app)
    current, other = app.test_client(), app.test_client()
    login(current, "gd_reviewer")
    login(other, "gd_reviewer")
    copied = _session_cookie(current)
    changed = current.post("/password", data={"current": DEMO_PASSWORD, "password": "newpass2026",
                                              "confirm": "newpass2026"})
    assert changed.status_code == 302
    assert current.get("/review/").status_code == 200
    assert other.get("/review/").status_code == 302
    assert _client_with_cookie(app, copied).get("/review/").status_code == 302


def test_every_response_carries_a_strict_content_security_policy(app):
    with_demo(app)
    client = app.test_client()
    for path in ("/", "/login", "/register", "/static/site.css"):
        response = client.get(path)
        policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
        assert policy["script-src"] == "'self'", path
        assert policy["default-src"] == "'self'" and policy["object-src"] == "'none'"
        assert policy["frame-ancestors"] == "'none'" and policy["base-uri"] == "'self'"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in client.get("/").headers  # plain http in development


def test_production_cookies_are_secure_and_https_is_enforced_by_hsts(app, tmp_path):
    settings = app.config["XPILOT"]
    production = create_app({"env": "production", "database_url": settings.database_url,
                             "redis_url": settings.redis_url, "instance_path": tmp_path / "prod",
                             "secret_key": "production-secret"})
    production.config["WTF_CSRF_ENABLED"] = False
    with_demo(production)
    client = production.test_client()
    page = client.get("/", base_url="https://xpilot.example")
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    response = client.post("/login", data={"username": "gd_reviewer", "password": DEMO_PASSWORD, "remember": "1"},
                           base_url="https://xpilot.example")
    assert response.status_code == 302
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith("session="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert {"secure", "httponly", "samesite=lax"} <= flags
    for name in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE", "REMEMBER_COOKIE_HTTPONLY"):
        assert production.config[name] is True, name
    assert production.config["REMEMBER_COOKIE_SAMESITE"] == "Lax"


def test_templates_hold_no_inline_script_or_event_handler():
    offenders = []
    for template in sorted(TEMPLATES.rglob("*.html")):
        text = template.read_text("utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag:
                offenders.append(f"{template.relative_to(TEMPLATES)}: {tag}")
        for handler in re.findall(r"<[^>]*\son[a-z]+\s*=", text):
            offenders.append(f"{template.relative_to(TEMPLATES)}: {handler[:60]}")
        if "javascript:" in text:
            offenders.append(f"{template.relative_to(TEMPLATES)}: javascript: URL")
    assert offenders == []

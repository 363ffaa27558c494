"""Sessions end with logout and password change."""
from __future__ import annotations

from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient

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

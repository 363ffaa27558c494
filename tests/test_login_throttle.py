"""Login: failed passwords slow down the address that sends them, never lock the account's owner out, and
unknown names cost the same work as known ones."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import clock
from app.accounts.models import User
from app.extensions import db
from tests.factories import login, user, with_demo

ATTACKER, OWNER, OTHER = "203.0.113.9", "198.51.100.7", "192.0.2.44"


def client_at(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def wait_asked(response: Any) -> int:
    """The seconds a refused login asks to wait."""
    assert response.status_code == 429
    return int(re.search(r"请 (\d+) 秒后再试", response.get_data(as_text=True)).group(1))


def test_an_attacker_hammering_a_school_account_does_not_keep_its_owner_out(app):
    with_demo(app)
    attacker = client_at(app, ATTACKER)
    statuses = [login(attacker, "zjxx_weekly", f"guess-{i}").status_code for i in range(30)]
    assert statuses.count(429) >= 20  # the attacker's address is slowed down at once
    assert login(attacker, "zjxx_weekly").status_code == 429  # even the right password, from that address
    owner = client_at(app, OWNER)
    assert login(owner, "zjxx_weekly").status_code == 302
    assert owner.get("/school/", follow_redirects=True).status_code == 200


def test_waits_grow_with_each_failure_and_end_after_the_wait(app):
    with_demo(app)
    app.config["XPILOT"].login_limit = (3, 900)
    attacker = client_at(app, ATTACKER)
    for _ in range(3):
        assert login(attacker, "gd_reviewer", "wrong-password").status_code == 422
    first = wait_asked(login(attacker, "gd_reviewer", "wrong-password"))
    clock.move(timedelta(seconds=first + 1))
    assert login(attacker, "gd_reviewer", "wrong-password").status_code == 422  # tried again after the wait
    second = wait_asked(login(attacker, "gd_reviewer", "wrong-password"))
    assert second > first
    clock.move(timedelta(seconds=second + 1))
    assert login(attacker, "gd_reviewer").status_code == 302  # the right password after the wait
    assert login(client_at(app, ATTACKER), "gd_reviewer", "wrong-password").status_code == 422  # forgiven


def test_an_address_failing_across_many_accounts_is_slowed_down_but_not_the_others(app):
    with_demo(app)
    app.config["XPILOT"].login_limit_per_ip = (5, 900)
    sprayer = client_at(app, ATTACKER)
    for name in ("gd_reviewer", "gd_admin", "js_reviewer", "js_admin", "sc_reviewer"):
        assert login(sprayer, name, "Password123").status_code == 422
    assert login(sprayer, "sc_admin", "Password123").status_code == 429
    assert login(client_at(app, OTHER), "sc_admin").status_code == 302


def test_logins_that_succeed_do_not_slow_an_address_down(app):
    with_demo(app)
    app.config["XPILOT"].login_limit_per_ip = (3, 900)
    office = client_at(app, OWNER)  # a school office behind one address
    for _ in range(6):
        assert login(office, "gd_reviewer").status_code == 302
        office.post("/logout")


@pytest.fixture
def hash_checks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the password hash computations (scrypt, the method of every stored hash) of a request."""
    calls: list[int] = []
    real = hashlib.scrypt

    def counted(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return calls


def test_unknown_and_known_usernames_cost_the_same_password_hash_work(app, hash_checks):
    with_demo(app)
    with app.app_context():
        db.session.get(User, user(app, "js_admin").id).is_active_account = False
        db.session.commit()
    client = client_at(app, OWNER)
    login(client, "first_unknown_name", "wrong-password")  # makes the stand-in hash, once per process
    work = {}
    for name in ("gd_reviewer", "no_such_school_0000", "js_admin"):  # known, unknown, deactivated
        hash_checks.clear()
        response = login(client, name, "wrong-password")
        assert response.status_code == 422 and "账号或密码不正确" in response.get_data(as_text=True)
        work[name] = len(hash_checks)
    assert work == {"gd_reviewer": 1, "no_such_school_0000": 1, "js_admin": 1}

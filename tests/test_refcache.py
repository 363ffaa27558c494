"""Reference data kept between requests follows changes made in other processes, and never hides one's own."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app import create_app, refcache
from app.accounts.models import User
from app.declarations.services import certificate_info
from app.extensions import db
from app.masterdata.models import Certificate
from app.plans.models import DeclarationPlan, PlanCertificate
from tests.factories import complete_info, login, with_demo


def _plan_certificate_options(client) -> str:
    page = client.get("/school/declarations/new")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def _second_process(app: Flask, tmp_path: Path) -> Flask:
    """Another app on the same database and Redis, as a second gunicorn worker would be."""
    settings = app.config["XPILOT"]
    other = create_app({"env": "test", "testing": True, "database_url": settings.database_url,
                        "redis_url": settings.redis_url or "", "instance_path": tmp_path / "other",
                        "secret_key": "test-secret"})
    other.config["WTF_CSRF_ENABLED"] = os.environ.get("XPILOT_TEST_CSRF", "0") == "1"
    return other


def test_a_plan_edit_in_another_process_reaches_the_declaration_form_within_the_check_interval(
        app, client, tmp_path, monkeypatch):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    with app.app_context():
        plan_id = db.session.scalars(select(DeclarationPlan.id).where(DeclarationPlan.province_code == "440000")).first()
    extra_name = "区块链应用开发（测试新增）"
    assert extra_name not in _plan_certificate_options(client)  # now kept by this app

    other = _second_process(app, tmp_path)
    with other.app_context():
        extra = Certificate(name=extra_name, organization="测试评价组织", levels="初级,中级")
        db.session.add(extra)
        db.session.flush()
        db.session.add(PlanCertificate(plan_id=plan_id, certificate_id=extra.id))
        db.session.commit()  # bumps the shared generation number in Redis
        extra_id = extra.id
    # Within the check interval this app still answers from its copy; after it, from the database.
    assert extra_name not in _plan_certificate_options(client)
    monkeypatch.setattr(refcache, "CHECK_SECONDS", 0.0)
    html = _plan_certificate_options(client)
    assert f'value="{extra_id}"' in html and extra_name in html


def test_uncommitted_changes_are_seen_by_their_own_transaction_and_not_kept(app):
    with_demo(app)
    with app.app_context():
        session = db.session()
        cert = session.scalars(select(Certificate)).first()
        original = cert.name
        assert certificate_info(session, cert.id).name == original  # kept
        cert.name = "临时名称"
        session.flush()
        assert certificate_info(session, cert.id).name == "临时名称"  # own change, not the kept copy
        session.rollback()
        assert certificate_info(session, cert.id).name == original
        cert = session.get(Certificate, cert.id)
        cert.name = "新名称"
        session.commit()
        assert certificate_info(session, cert.id).name == "新名称"  # this process dropped its copy at commit


def test_without_redis_nothing_is_kept(app, monkeypatch):
    with_demo(app)
    with app.app_context():
        session = db.session()
        cache = refcache.cache()

        def unreachable() -> int:
            raise ConnectionError("redis down")
        monkeypatch.setattr(cache, "_read", unreachable)
        monkeypatch.setattr(refcache, "CHECK_SECONDS", 0.0)
        calls = []
        for _ in range(3):
            cache.get("key", lambda: calls.append(1) or len(calls))
        assert calls == [1, 1, 1]
        cert = session.scalars(select(Certificate)).first()
        assert certificate_info(session, cert.id).name == cert.name


def test_redis_away_is_asked_once_per_interval_and_logged_once(monkeypatch, caplog):
    cache = refcache.ReferenceCache(lambda: 0, lambda: None)
    asked = []

    def unreachable() -> int:
        asked.append(1)
        raise ConnectionError("redis down")
    monkeypatch.setattr(cache, "_read", unreachable)
    computed = [cache.get("key", lambda: object()) for _ in range(50)]
    assert len({id(v) for v in computed}) == 50  # nothing kept while Redis is away
    assert len(asked) == 1  # asked again only after CHECK_SECONDS, not on every lookup
    assert [r.getMessage() for r in caplog.records if "reference cache" in r.getMessage()] == [
        "reference cache: cannot read the generation number (redis down); not caching until it can"]
    monkeypatch.setattr(cache, "_read", lambda: 7)  # Redis is back
    cache.changed()
    assert cache.get("key", lambda: "kept") == "kept" and cache.get("key", lambda: "recomputed") == "kept"


@pytest.mark.parametrize("bump_fails", [False, True])
def test_a_bump_that_cannot_reach_redis_still_drops_the_local_copy(app, monkeypatch, bump_fails):
    with app.app_context():
        cache = refcache.cache()
        if bump_fails:
            def unreachable() -> None:
                raise ConnectionError("redis down")
            monkeypatch.setattr(cache, "_bump", unreachable)
        assert cache.get("k", lambda: "old") == "old"
        assert cache.get("k", lambda: "new") == "old"
        cache.changed()
        assert cache.get("k", lambda: "new") == "new"


def test_an_account_disabled_or_its_password_changed_in_another_process_is_logged_out_within_the_interval(
        app, client, tmp_path, monkeypatch):
    with_demo(app)
    assert login(client, "gd_reviewer").status_code == 302
    assert client.get("/review/").status_code == 200  # the account row is now kept by this app
    other = _second_process(app, tmp_path)
    with other.app_context():
        user = db.session.scalars(select(User).where(User.username == "gd_reviewer")).one()
        user.is_active_account = False
        db.session.commit()
    monkeypatch.setattr(refcache, "CHECK_SECONDS", 0.0)
    answer = client.get("/review/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]

    second = app.test_client()
    with other.app_context():
        user = db.session.scalars(select(User).where(User.username == "gd_reviewer")).one()
        user.is_active_account = True
        db.session.commit()
    assert login(second, "gd_reviewer").status_code == 302
    assert second.get("/review/").status_code == 200
    with other.app_context():
        user = db.session.scalars(select(User).where(User.username == "gd_reviewer")).one()
        user.session_token += 1  # what a password change does
        db.session.commit()
    answer = second.get("/review/")
    assert answer.status_code == 302 and "/login" in answer.headers["Location"]

"""Concurrent clicks: two submits of one draft, two reviewers deciding one declaration."""
from __future__ import annotations

import threading

from sqlalchemy import func, select

from app.declarations.models import Declaration, DeclarationEvent
from app.extensions import db
from app.processes.models import HumanTask
from tests.factories import complete_info, declaration_form, login, with_demo


def _race(app, requests):
    barrier = threading.Barrier(len(requests))
    results = [None] * len(requests)

    def run(i, fn):
        barrier.wait()
        results[i] = fn()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_simultaneous_submits_give_one_submission_and_a_clear_message(app):
    with_demo(app)
    first, second = app.test_client(), app.test_client()
    login(first, "zjxx_weekly")
    login(second, "zjxx_weekly")
    complete_info(first)
    first.post("/school/declarations/new", data={**declaration_form(app), "action": "save"})
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id)).one()
    form = {**declaration_form(app), "action": "submit"}
    url = f"/school/declarations/{decl_id}/edit"
    results = _race(app, [lambda: first.post(url, data=form), lambda: second.post(url, data=form)])
    codes = sorted(r.status_code for r in results)
    assert codes == [302, 403], codes
    refused = next(r for r in results if r.status_code == 403).get_data(as_text=True)
    assert "已提交审核" in refused
    with app.app_context():
        submissions = db.session.scalar(select(func.count()).select_from(DeclarationEvent).where(
            DeclarationEvent.declaration_id == decl_id, DeclarationEvent.action == "submitted"))
        open_reviews = db.session.scalar(select(func.count()).select_from(HumanTask).where(
            HumanTask.lane == "province_reviewer", HumanTask.completed_at.is_(None)))
        assert submissions == 1 and open_reviews == 1
        assert db.session.get(Declaration, decl_id).status == "待审核"


def test_two_reviewers_deciding_at_once_give_one_decision(app):
    with_demo(app)
    school = app.test_client()
    login(school, "zjxx_weekly")
    complete_info(school)
    school.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id)).one()
    a, b = app.test_client(), app.test_client()
    login(a, "gd_reviewer")
    login(b, "gd_admin")
    url = f"/review/declarations/{decl_id}"
    results = _race(app, [lambda: a.post(url, data={"decision": "approve"}),
                          lambda: b.post(url, data={"decision": "reject", "comment": "材料不全，请补充"})])
    codes = sorted(r.status_code for r in results)
    assert codes == [302, 403], codes
    with app.app_context():
        decisions = db.session.scalar(select(func.count()).select_from(DeclarationEvent).where(
            DeclarationEvent.declaration_id == decl_id, DeclarationEvent.action.in_(("approve", "reject"))))
        assert decisions == 1


def test_pooled_connections_the_database_dropped_while_idle_are_replaced_before_use(app, monkeypatch):
    import pytest
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from app import extensions

    with app.app_context():
        engine = db.engine
        if engine.dialect.name != "postgresql":
            pytest.skip("SQLite has no server connections to lose")
        with_demo(app)
    client = app.test_client()
    login(client, "zjxx_weekly")
    assert client.get("/school/").status_code == 200  # the pool now holds a used connection
    assert engine.pool.checkedin() >= 1
    # The database restarts, say: from a connection of its own, end every other backend of this database.
    outside = create_engine(engine.url, poolclass=NullPool)
    with outside.connect() as conn:
        ended = conn.execute(text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
        conn.commit()
    outside.dispose()
    assert ended >= 1
    monkeypatch.setattr(extensions, "IDLE_PING_SECONDS", 0.0)  # the pooled connections count as idle
    assert client.get("/school/").status_code == 200

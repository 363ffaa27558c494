"""A plan that closes seconds after it opens, in real time, through real worker processes and the scheduler."""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import select

from app import clock
from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.plans import services as plans
from app.plans.models import DeclarationPlan
from tests.factories import certificate_id, complete_info, declaration_form, login, with_demo
from tests.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.slow


def _publish(app: Flask, closes_in: float) -> int:
    """Publish a Jiangsu-free test plan for 广东 that opened a minute ago and closes in a few seconds."""
    with app.app_context():
        session = db.session()
        # The demo's own 广东 plan would also be open; take it out of the way.
        for plan in session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == "440000")):
            plan.status = "withdrawn"
        admin = session.scalars(select(User).where(User.username == "gd_admin")).one()
        now = clock.now()
        data = plans.PlanInput(name="实时截止测试计划", starts_at=now - timedelta(minutes=1),
                               ends_at=now + timedelta(seconds=closes_in), review_deadline=now + timedelta(hours=1),
                               announce_days=7, certificate_ids=[certificate_id(app)], contact_name="李老师",
                               contact_phone="020-83000000", notes="")
        plan = plans.publish_plan(session, admin, data, {})
        session.commit()
        return plan.id


def _draft(app: Flask) -> int:
    client = app.test_client()
    login(client, "zjxx_weekly")
    complete_info(client)
    assert client.post("/school/declarations/new", data={**declaration_form(app), "action": "save"}).status_code == 302
    with app.app_context():
        return db.session.scalars(select(Declaration.id)).one()


def _plan(app: Flask, plan_id: int) -> DeclarationPlan:
    with app.app_context():
        plan = db.session.get(DeclarationPlan, plan_id)
        db.session.expunge(plan)
        return plan


def test_plan_closes_on_time_through_a_real_worker_and_scheduler(
        app: Flask, start_worker: Callable[..., WorkerProcess]) -> None:
    with_demo(app)
    plan_id = _publish(app, closes_in=6)
    decl_id = _draft(app)
    worker = start_worker()
    wait_until(lambda: _plan(app, plan_id).closed_at is not None, 40, "the plan to close", worker)
    plan = _plan(app, plan_id)
    lateness = (plan.closed_at - plan.ends_at).total_seconds()
    assert 0 <= lateness < 5, lateness
    with app.app_context():
        assert db.session.get(Declaration, decl_id).status == "已过期"


def test_a_deadline_that_passed_while_no_worker_ran_is_closed_at_start(
        app: Flask, start_worker: Callable[..., WorkerProcess]) -> None:
    with_demo(app)
    plan_id = _publish(app, closes_in=1)
    time.sleep(2.5)
    assert _plan(app, plan_id).closed_at is None
    worker = start_worker()
    wait_until(lambda: _plan(app, plan_id).closed_at is not None, 40, "the plan to close", worker)


def test_a_killed_worker_holding_the_scheduler_does_not_delay_the_deadline(
        app: Flask, start_worker: Callable[..., WorkerProcess]) -> None:
    with_demo(app)
    first = start_worker()
    time.sleep(4)  # let it take the scheduler lock
    first.kill_hard()
    plan_id = _publish(app, closes_in=4)
    second = start_worker()
    wait_until(lambda: _plan(app, plan_id).closed_at is not None, 40, "the plan to close", second)
    plan = _plan(app, plan_id)
    assert (plan.closed_at - plan.ends_at).total_seconds() < 12

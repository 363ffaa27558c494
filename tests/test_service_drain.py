"""New service calls share drain jobs, also while one lingers; a call that fails in a drain is retried by a job of
its own."""
from __future__ import annotations

from typing import Any

from rq.job import Job
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.handlers.handler import Handler
from app.handlers.registry import HANDLERS
from app.processes.jobs import DRAIN_FLAG
from app.processes.models import ProcessInstance, ServiceCall
from app.queue import jobs
from app.sms.models import SmsMessage
from tests.conftest import run_jobs
from tests.factories import pending_registration, with_demo

SCHOOLS = (("440100", "岭南交通职业技术学院", "13712340001"), ("440300", "鹏城智能制造职业技术学院", "13712340002"),
           ("440600", "佛山工贸职业技术学院", "13712340003"))


def _register(client: Any, city: str, name: str, phone: str) -> None:
    """A registration whose activation (the process's service call) the worker runs."""
    pending_registration(client.application, name, phone)


def _phone_of(session: Any, call: ServiceCall) -> str:
    instance = session.get(ProcessInstance, call.instance_id)
    return str(session.get(User, instance.subject_id).phone)


def _calls() -> dict[str, ServiceCall]:
    calls = db.session.scalars(select(ServiceCall)).all()
    return {_phone_of(db.session, c): c for c in calls}


def test_calls_committed_while_a_drain_waits_share_that_drain(app, client):
    with_demo(app)
    for school in SCHOOLS:
        _register(client, *school)
    assert jobs.redis.exists(DRAIN_FLAG)  # the first call queued a drain; the next two found it waiting
    assert jobs.queue.count == 1
    assert run_jobs(app) == 1
    with app.app_context():
        assert {phone: (c.status, c.attempts) for phone, c in _calls().items()} == {
            phone: ("done", 1) for _, _, phone in SCHOOLS}
        sent = db.session.scalars(select(SmsMessage.phone).where(SmsMessage.status == "sent")).all()
        assert sorted(sent) == sorted(phone for _, _, phone in SCHOOLS)
    assert not jobs.redis.exists(DRAIN_FLAG)
    # A call committed once the drain has looked gets a drain of its own.
    _register(client, "440100", "广州南粤职业技术大学", "13712340004")
    assert jobs.queue.count == 1


def test_a_call_failing_in_a_drain_does_not_stop_the_others_and_is_retried_on_its_own(app, client, monkeypatch):
    with_demo(app)
    for school in SCHOOLS:
        _register(client, *school)
    original = HANDLERS["account_activate"]

    def flaky(session: Any, call: ServiceCall) -> dict[str, Any]:
        if _phone_of(session, call) == SCHOOLS[1][2]:
            raise ConnectionError("短信网关暂时不可用")
        return original.func(session, call)

    monkeypatch.setitem(HANDLERS, "account_activate", Handler(flaky, original.required, original.optional))
    assert run_jobs(app) == 1
    with app.app_context():
        calls = _calls()
        failed = calls[SCHOOLS[1][2]]
        assert (failed.status, failed.attempts) == ("pending", 1)
        assert "短信网关暂时不可用" in (failed.last_error or "")
        assert {(calls[p].status, calls[p].attempts) for p in (SCHOOLS[0][2], SCHOOLS[2][2])} == {("done", 1)}
        failed_id = failed.id
    registry = ScheduledJobRegistry(queue=jobs.queue)
    assert f"svc-{failed_id}" in registry.get_job_ids()
    # The provider is back; the retry comes due (moved now rather than waiting out its backoff).
    monkeypatch.setitem(HANDLERS, "account_activate", original)
    job = Job.fetch(f"svc-{failed_id}", connection=jobs.redis)
    registry.remove(job)
    jobs.queue.enqueue_job(job)
    assert run_jobs(app) == 1
    with app.app_context():
        call = db.session.get(ServiceCall, failed_id)
        assert (call.status, call.attempts) == ("done", 2)
        assert db.session.scalars(select(SmsMessage.status).where(SmsMessage.phone == SCHOOLS[1][2])).all() == ["sent"]


def _drain_registering_meanwhile(app: Any, client: Any, monkeypatch: Any, linger: float) -> dict[str, int]:
    """Run the first school's drain in this test; while it runs that call, a second school registers."""
    from app.processes import jobs as jobs_service

    _register(client, *SCHOOLS[0])
    first_drain = jobs.queue.job_ids
    assert len(first_drain) == 1
    run_one = jobs_service.run_service_call
    arrived: list[str] = []

    def run_and_meanwhile_register(call_id: int) -> str:
        status = run_one(call_id)
        if not arrived:
            arrived.append(SCHOOLS[1][2])
            _register(client, *SCHOOLS[1])
            assert jobs.queue.job_ids == []  # the drain holds the flag: the commit leaves a token, not a job
        return status

    monkeypatch.setattr(jobs_service, "run_service_call", run_and_meanwhile_register)
    app.config["XPILOT"].service_drain_linger = linger
    with app.app_context():
        jobs.queue.remove(first_drain[0])  # this test runs the first drain itself
        return jobs_service.drain_service_calls()


def test_a_drain_runs_the_calls_that_arrive_while_it_lingers(app, client, monkeypatch):
    with_demo(app)
    outcome = _drain_registering_meanwhile(app, client, monkeypatch, linger=0.5)
    assert outcome == {"done": 2, "skipped": 0, "failed": 0, "rounds": 2}
    assert jobs.queue.job_ids == []  # one RQ job ran both calls
    assert not jobs.redis.exists(DRAIN_FLAG)
    with app.app_context():
        assert {phone: c.status for phone, c in _calls().items()} == {SCHOOLS[0][2]: "done", SCHOOLS[1][2]: "done"}


def test_a_call_committed_as_a_drain_ends_gets_a_drain_of_its_own(app, client, monkeypatch):
    with_demo(app)
    outcome = _drain_registering_meanwhile(app, client, monkeypatch, linger=0.0)
    assert outcome == {"done": 1, "skipped": 0, "failed": 0, "rounds": 1}
    # Its commit found the flag set and left only a token; the leaving drain saw the token and queued a drain.
    assert len(jobs.queue.job_ids) == 1 and jobs.queue.job_ids[0].startswith("svc-drain-")
    assert run_jobs(app) == 1
    with app.app_context():
        assert {phone: c.status for phone, c in _calls().items()} == {SCHOOLS[0][2]: "done", SCHOOLS[1][2]: "done"}

"""The worker process (`python -m worker`) against the test's own database and Redis."""
from __future__ import annotations

import signal
import time
from collections.abc import Callable

import pytest
from flask import Flask
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from app.accounts.models import User
from app.extensions import db
from app.processes.jobs import enqueue_delivery
from app.processes.models import ProcessInstance, ServiceCall
from app.queue import jobs
from app.sms import services as sms
from app.sms.models import SMS_SENT, SmsMessage
from tests.factories import pending_registration, with_demo
from tests.workers import WorkerProcess, wait_until

pytestmark = pytest.mark.slow
PHONE = "13900008888"


def queue_sms(app: Flask, key: str) -> int:
    """Record a text message, commit, then queue its delivery job (as the services do)."""
    with app.app_context():
        session = db.session()
        message = sms.queue_message(session, key=key, phone=PHONE, template="review_approved",
                                    params={"school": "珠江信息职业学院", "certificate": "Web前端开发职业技能等级证书",
                                            "level": "中级"})
        session.commit()
        enqueue_delivery(message.id)
        return message.id


def message_row(app: Flask, message_id: int) -> SmsMessage:
    with app.app_context():
        session = db.session()
        message = session.get(SmsMessage, message_id)
        assert message is not None
        session.expunge(message)
        return message


def test_worker_process_delivers_a_queued_text_message(app: Flask, start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker()
    message_id = queue_sms(app, "test-worker-delivers")

    wait_until(lambda: message_row(app, message_id).status == SMS_SENT, 60, "the message to be sent", worker)

    message = message_row(app, message_id)
    assert message.attempts == 1
    assert message.provider_message_id == f"outbox-{message_id}"
    assert "审核通过" in message.body
    job = Job.fetch(f"sms-{message_id}", connection=jobs.redis)
    wait_until(lambda: job.get_status(refresh=True) == JobStatus.FINISHED, 10, "the job to finish", worker)


def test_worker_killed_in_the_middle_of_an_sms_job_delivers_that_message_exactly_once_after_restart(
        app: Flask, start_worker: Callable[..., WorkerProcess]) -> None:
    slow = start_worker(outbox_delay=60)
    message_id = queue_sms(app, "test-worker-crash")
    job_id = f"sms-{message_id}"

    def delivering() -> bool:
        return Job.fetch(job_id, connection=jobs.redis).get_status(refresh=True) == JobStatus.STARTED

    wait_until(delivering, 60, "the slow delivery to start", slow)
    time.sleep(1.0)  # well inside the 60 s send (on SQLite the horse holds the write lock meanwhile)
    slow.kill_hard()
    assert slow.process.returncode == -signal.SIGKILL
    # Nothing committed: the killed attempt left the message queued, not sent and not counted.
    crashed = message_row(app, message_id)
    assert crashed.status == "queued"
    assert crashed.attempts == 0

    restarted = start_worker()
    wait_until(lambda: message_row(app, message_id).status == SMS_SENT, 60,
               "the restarted worker to deliver the message", restarted)

    message = message_row(app, message_id)
    assert message.attempts == 1, "the delivery that counted is the restarted worker's only attempt"
    assert message.provider_message_id == f"outbox-{message_id}"
    with app.app_context():
        copies = db.session.scalar(select(func.count()).select_from(SmsMessage).where(SmsMessage.phone == PHONE))
    assert copies == 1
    time.sleep(1.0)  # a duplicate job, if any, would run now and must change nothing
    again = message_row(app, message_id)
    assert (again.status, again.attempts, again.sent_at) == (SMS_SENT, 1, message.sent_at)
    assert "re-queued {'calls': 0, 'messages': 1" in restarted.log_tail(200)


def test_worker_killed_while_a_service_call_delivers_its_message_runs_the_call_once_after_restart(
        app: Flask, client, start_worker: Callable[..., WorkerProcess]) -> None:
    """With the outbox backend a service call delivers its message in its own transaction: a crash rolls both back."""
    with_demo(app)
    slow = start_worker(outbox_delay=60)
    phone = "13712340000"
    pending_registration(app, "岭南交通职业技术学院", phone)  # its activation is the worker's service call
    with app.app_context():
        call_id = db.session.scalars(select(ServiceCall.id)).one()

    def calling() -> bool:
        return any(job_id.startswith("svc-drain-") for job_id in StartedJobRegistry(queue=jobs.queue).get_job_ids())

    wait_until(calling, 60, "the slow service call to start", slow)
    time.sleep(1.0)
    slow.kill_hard()
    with app.app_context():
        call = db.session.get(ServiceCall, call_id)
        assert (call.status, call.attempts) == ("pending", 0)
        # The activation and its message were one transaction: neither is left behind.
        assert db.session.scalars(select(SmsMessage).where(SmsMessage.phone == phone)).all() == []
        assert db.session.scalars(select(User.account_status).where(User.phone == phone)).one() == "pending"

    def texted() -> bool:
        with app.app_context():
            return db.session.scalars(select(SmsMessage.status).where(SmsMessage.phone == phone)).all() == [SMS_SENT]

    restarted = start_worker()
    wait_until(texted, 60, "the restarted worker to run the call", restarted)
    time.sleep(1.0)  # a duplicate job, if any, would run now and must change nothing
    with app.app_context():
        call = db.session.get(ServiceCall, call_id)
        assert (call.status, call.attempts) == ("done", 1)
        sent = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == phone)).all()
        assert [(m.status, m.attempts) for m in sent] == [(SMS_SENT, 1)]
        instance = db.session.get(ProcessInstance, call.instance_id)
        assert instance.completed

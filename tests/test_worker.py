"""The worker process (`python -m worker`) against the test's own database and Redis."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from flask import Flask
from rq.job import Job, JobStatus
from sqlalchemy import func, select

from app.extensions import db
from app.models.sms import SMS_SENT, SmsMessage
from app.queue import jobs
from app.services import sms
from app.services.jobs import enqueue_delivery

pytestmark = pytest.mark.slow
PROJECT = Path(__file__).resolve().parents[1]
PHONE = "13900008888"


@dataclass
class WorkerProcess:
    """A `python -m worker` child and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])

    def kill_hard(self) -> None:
        """SIGKILL the worker and every process under it (its forked work horse runs in its own group)."""
        try:
            parent = psutil.Process(self.process.pid)
            family = [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            family = []
        for proc in family:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ask for a warm shutdown; kill whatever is left after a few seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill_hard()


@pytest.fixture
def start_worker(app: Flask, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the app's database and Redis; stop them after the test."""
    started: list[WorkerProcess] = []
    settings = app.config["XPILOT"]

    def start(outbox_delay: float = 0.0) -> WorkerProcess:
        env = dict(os.environ)
        env.pop("XPILOT_OUTBOX_DELAY", None)
        env.update(DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url, XPILOT_ENV="test",
                   XPILOT_INSTANCE=str(settings.instance_path), SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
        if outbox_delay:
            env["XPILOT_OUTBOX_DELAY"] = str(outbox_delay)
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=PROJECT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


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


def wait_until(condition: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) before {what}:\n{worker.log_tail()}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; worker log:\n{worker.log_tail()}")


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

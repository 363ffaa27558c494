"""Test fixtures: a fresh database built by the migrations, real Redis, and factories."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from app import clock, create_app
from app.extensions import db
from app.migrate import upgrade
from tests.workers import start_worker  # noqa: F401 - a fixture shared by the worker tests

PROJECT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT.parent / "shared" / "data"


def _new_database(tmp_path: Path) -> tuple[str, Any]:
    """Create an empty database; return its URL and a function that drops it."""
    base = os.environ.get("DATABASE_URL", "")
    if base.startswith("postgresql"):
        name = f"xpilot_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = base.rsplit("/", 1)[0] + "/" + name

        def drop() -> None:
            db.session.remove()
            if db.engine is not None:
                db.engine.dispose()
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()

        return url, drop
    url = f"sqlite:///{tmp_path / 'test.sqlite3'}"

    def drop_sqlite() -> None:
        db.session.remove()
        if db.engine is not None:
            db.engine.dispose()

    return url, drop_sqlite


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: REDIS_URL if set, else one embedded server for the whole run, stopped at its end."""
    url = os.environ.get("REDIS_URL", "")
    if url:
        yield url
        return
    from app.queue import embedded_redis_url, stop_embedded
    # Failed and interrupted (Ctrl-C) runs end here too; a killed run's server gets the kernel's signal.
    try:
        yield embedded_redis_url(tmp_path_factory.mktemp("redis"))
    finally:
        stop_embedded()


@pytest.fixture
def app(tmp_path: Path, redis_url: str) -> Iterator[Flask]:
    """An app on a fresh, migrated database and an emptied Redis namespace."""
    url, drop = _new_database(tmp_path)
    upgrade(url)
    application = create_app({
        "env": "test", "testing": True, "database_url": url, "redis_url": redis_url,
        "instance_path": tmp_path / "instance", "secret_key": "test-secret",
        "service_drain_linger": 0.0,  # burst workers: a drain ends once it finds nothing (tests of the linger set it)
    })
    application.config["WTF_CSRF_ENABLED"] = os.environ.get("XPILOT_TEST_CSRF", "0") == "1"
    from app.queue import jobs
    jobs.redis.flushdb()
    with application.app_context():
        from app.processes.services import install_shipped_processes
        install_shipped_processes(db.session(), application.config["XPILOT"].bpmn_path)
        db.session.commit()
    yield application
    clock.reset()
    with application.app_context():
        jobs.redis.flushdb()
    drop()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The app's session inside an app context."""
    with app.app_context():
        yield db.session()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


@pytest.fixture
def texts_received(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """The texts each phone received through the outbox backend in this process, as the phone shows them
    (the stored copy has its passwords masked once delivered)."""
    from app.sms import services as sms

    received: dict[str, list[str]] = {}
    send = sms.OutboxBackend.send

    def receive(backend: sms.OutboxBackend, message: Any) -> sms.DeliveryResult:
        received.setdefault(message.phone, []).append(sms.delivered_text(message))
        return send(backend, message)

    monkeypatch.setattr(sms.OutboxBackend, "send", receive)
    return received


def password_in(text: str) -> str:
    """The password a credentials message carries (初始密码：… or 新密码：…)."""
    for marker in ("初始密码：", "新密码："):
        if marker in text:
            return text.split(marker, 1)[1].split("。", 1)[0]
    raise AssertionError(f"no password in {text!r}")


def run_jobs(app: Flask) -> int:
    """Run every queued job (and due scheduled ones) in this process with a burst worker; return jobs run."""
    from rq import SimpleWorker
    from rq.scheduler import RQScheduler

    from app.queue import jobs
    count = 0
    with app.app_context():
        queue = jobs.queue
        for _ in range(20):
            scheduler = RQScheduler([queue], connection=jobs.redis)
            scheduler.acquire_locks()
            scheduler.enqueue_scheduled_jobs()
            scheduler.release_locks()
            if queue.count == 0:
                break
            before = queue.finished_job_registry.count + queue.failed_job_registry.count
            SimpleWorker([queue], connection=jobs.redis).work(burst=True)
            count += queue.finished_job_registry.count + queue.failed_job_registry.count - before
            db.session.remove()
    return count

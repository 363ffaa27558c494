"""Redis hung (SIGSTOP) or gone (killed): pages, logins, submits and decisions still answer at once, and the
jobs they could not queue are caught up when Redis returns. Each test runs redis-server processes of its own."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask
from rq import Queue
from sqlalchemy import select

from app import clock, create_app
from app.declarations.models import Declaration
from app.extensions import db
from app.migrate import upgrade
from app.processes import jobs as process_jobs
from app.queue import jobs
from app.sms.models import SmsMessage
from tests.conftest import _new_database, run_jobs
from tests.factories import complete_info, declaration_form, login, register, with_demo
from tests.redis_servers import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="needs redis-server on PATH")
TIMEOUT = 0.5  # the app's Redis connect and read timeouts in these tests
RETRY_AFTER = 1.0  # seconds the app leaves Redis alone after a failure
# Seconds any request may take while Redis is away: without timeouts a request on a hung Redis never answers; with
# them one pays at most a timeout or two. Generous for a loaded machine (a login hashes a password).
BUDGET = 10.0
SCHOOL_PHONE = "13800138002"  # the demo school 珠江信息职业学院 (zjxx_weekly)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.fixture
def outage_app(tmp_path: Path, redis_server: RedisServer) -> Iterator[Flask]:
    """An app with the demo data on a fresh database (SQLite, or PostgreSQL with DATABASE_URL), on the test's own
    Redis, with short Redis timeouts."""
    url, drop = _new_database(tmp_path)
    upgrade(url)
    app = create_app({
        "env": "test", "testing": True, "database_url": url, "redis_url": redis_server.url,
        "instance_path": tmp_path / "instance", "secret_key": "test-secret", "service_drain_linger": 0.0,
        "redis_connect_timeout": TIMEOUT, "redis_timeout": TIMEOUT, "redis_retry_after": RETRY_AFTER,
    })
    app.config["WTF_CSRF_ENABLED"] = False
    with app.app_context():
        from app.processes.services import install_shipped_processes
        install_shipped_processes(db.session(), app.config["XPILOT"].bpmn_path)
        db.session.commit()
    with_demo(app)
    yield app
    redis_server.resume()
    clock.reset()
    drop()


def answered(call: Callable[[], Any], budget: float = BUDGET) -> Any:
    """Run a request in a thread and return its response, failing the test if it takes longer than the budget."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(budget)
    assert not thread.is_alive(), f"no answer within {budget} s"
    if "error" in outcome:
        raise outcome["error"]
    assert time.monotonic() - started < budget
    return outcome["value"]


def _client(app: Flask, username: str, address: str = "127.0.0.1") -> Any:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    assert login(client, username).status_code == 302
    return client


def _draft(app: Flask, school: Any) -> int:
    assert complete_info(school).status_code == 302
    assert school.post("/school/declarations/new", data={**declaration_form(app), "action": "save"}).status_code == 302
    with app.app_context():
        return int(db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first())


def _status(app: Flask, decl_id: int) -> str:
    with app.app_context():
        status = db.session.get(Declaration, decl_id).status
        db.session.remove()
        return str(status)


def _decision_texts(app: Flask) -> list[tuple[str, str]]:
    with app.app_context():
        rows = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == SCHOOL_PHONE)).all()
        texts = [(m.body, m.status) for m in rows if "审核通过" in m.body]
        db.session.remove()
        return texts


def _redis_back(app: Flask) -> None:
    """Redis answers again: wait out the app's pause, then run the worker's catch-up and the jobs it queued."""
    time.sleep(RETRY_AFTER + 0.1)
    with app.app_context():
        process_jobs.catch_up(grace_seconds=0)
        db.session.remove()
    run_jobs(app)


def test_every_redis_client_has_the_short_timeouts_of_the_settings(outage_app: Flask) -> None:
    from worker import XPilotSimpleWorker

    options = jobs.redis.connection_pool.connection_kwargs
    assert options["socket_connect_timeout"] == TIMEOUT and options["socket_timeout"] == TIMEOUT
    worker = XPilotSimpleWorker(["xpilot"], app=outage_app)
    own = worker.connection.connection_pool.connection_kwargs
    # RQ lengthens the worker's read timeout past its blocking dequeue; connecting stays short.
    assert own["socket_connect_timeout"] == TIMEOUT and own["socket_timeout"] >= worker.dequeue_timeout


def test_while_redis_hangs_pages_login_submit_and_decision_answer_at_once_and_jobs_run_when_it_returns(
        outage_app: Flask, redis_server: RedisServer) -> None:
    app = outage_app
    school, reviewer = _client(app, "zjxx_weekly"), _client(app, "gd_reviewer")
    decl_id = _draft(app, school)
    redis_server.hang()

    assert answered(lambda: school.get("/school/")).status_code == 200
    assert answered(lambda: school.get(f"/school/declarations/{decl_id}/edit")).status_code == 200
    submitted = answered(lambda: school.post(f"/school/declarations/{decl_id}/edit",
                                             data={**declaration_form(app), "action": "submit"}))
    assert submitted.status_code == 302 and _status(app, decl_id) == "待审核"
    assert answered(lambda: school.get(f"/school/declarations/{decl_id}")).status_code == 200
    assert "珠江信息职业学院" in answered(lambda: reviewer.get("/review/")).get_data(as_text=True)
    assert answered(lambda: reviewer.get(f"/review/declarations/{decl_id}")).status_code == 200
    decided = answered(lambda: reviewer.post(f"/review/declarations/{decl_id}", data={"decision": "approve"}))
    assert decided.status_code == 302
    newcomer = app.test_client()
    assert answered(lambda: login(newcomer, "gd_admin")).status_code == 302
    assert answered(lambda: newcomer.get("/review/")).status_code == 200
    assert _decision_texts(app) == []  # its job could not be queued: nothing was sent yet

    redis_server.resume()
    _redis_back(app)
    assert _status(app, decl_id) == "审核通过"
    assert [status for _, status in _decision_texts(app)] == ["sent"]


def test_an_approval_while_redis_is_gone_answers_normally_and_its_text_goes_once_redis_returns(
        outage_app: Flask, redis_server: RedisServer) -> None:
    app = outage_app
    school, reviewer = _client(app, "zjxx_weekly"), _client(app, "gd_reviewer")
    decl_id = _draft(app, school)
    assert school.post(f"/school/declarations/{decl_id}/edit",
                       data={**declaration_form(app), "action": "submit"}).status_code == 302
    run_jobs(app)
    redis_server.kill()

    decided = answered(lambda: reviewer.post(f"/review/declarations/{decl_id}", data={"decision": "approve"},
                                             follow_redirects=True))
    assert decided.status_code == 200 and "系统繁忙" not in decided.get_data(as_text=True)
    assert answered(lambda: reviewer.get(f"/review/declarations/{decl_id}")).status_code == 200
    assert answered(lambda: school.get(f"/school/declarations/{decl_id}")).status_code == 200

    redis_server.start()  # back on the same port, empty: the queued jobs are gone with the old server
    _redis_back(app)
    _redis_back(app)  # a second round finds nothing more to do
    assert _status(app, decl_id) == "审核通过"
    assert [status for _, status in _decision_texts(app)] == ["sent"]


def test_without_redis_login_works_and_wrong_passwords_are_still_slowed_down_per_address(
        outage_app: Flask, redis_server: RedisServer) -> None:
    app = outage_app
    app.config["XPILOT"].login_limit = (3, 900)
    redis_server.kill()
    attacker = app.test_client()
    attacker.environ_base["REMOTE_ADDR"] = "203.0.113.9"
    for _ in range(3):
        refused = answered(lambda: login(attacker, "zjxx_weekly", "wrong-password"))
        assert refused.status_code == 422 and "账号或密码不正确" in refused.get_data(as_text=True)
    slowed = answered(lambda: login(attacker, "zjxx_weekly", "wrong-password"))
    assert slowed.status_code == 429 and "秒后再试" in slowed.get_data(as_text=True)
    owner = app.test_client()
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    assert answered(lambda: login(owner, "zjxx_weekly")).status_code == 302
    assert answered(lambda: owner.get("/school/")).status_code == 200


def test_registration_without_redis_is_answered_and_its_text_is_sent_when_redis_returns(
        outage_app: Flask, redis_server: RedisServer) -> None:
    app = outage_app
    redis_server.kill()
    client = app.test_client()
    page = answered(lambda: register(client, "岭南交通职业技术学院", "13712345678"))
    assert page.status_code == 200 and "开始申报试点证书" in page.get_data(as_text=True)
    redis_server.start()
    _redis_back(app)
    with app.app_context():
        texts = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == "13712345678")).all()
        assert sorted(m.template for m in texts) == ["account_issued", "registration_code"]
        assert [m.status for m in texts] == ["sent", "sent"]


def test_while_the_database_is_away_a_signed_in_page_answers_the_busy_page_not_a_bare_500(
        outage_app: Flask, tmp_path: Path) -> None:
    """Seen in the chaos run while PostgreSQL restarted: the error page itself needs the signed-in user."""
    school = _client(outage_app, "zjxx_weekly")
    url = outage_app.config["XPILOT"].database_url
    if not url.startswith("sqlite"):
        pytest.skip("moves the SQLite file away")
    database = Path(url.removeprefix("sqlite:///"))
    database.rename(tmp_path / "away.sqlite3")
    db.engine.dispose()  # new connections find an empty file: every query fails
    try:
        page = school.get("/school/")
        assert page.status_code == 503 and "系统繁忙" in page.get_data(as_text=True)
        assert "您的数据未被修改" in page.get_data(as_text=True)
    finally:
        db.engine.dispose()
        (tmp_path / "away.sqlite3").replace(database)


def test_a_failure_after_the_view_such_as_its_commit_answers_the_busy_page(outage_app: Flask) -> None:
    """Seen in the chaos run while PostgreSQL restarted: a commit failing after the page was built answered 500."""
    outage_app.config["PROPAGATE_EXCEPTIONS"] = False  # answer as in production
    failing = {"on": False}

    @outage_app.after_request
    def _commit_fails(response: Any) -> Any:
        if failing["on"]:
            raise OSError("server closed the connection unexpectedly")
        return response

    school = _client(outage_app, "zjxx_weekly")
    failing["on"] = True
    page = school.get("/school/")
    assert page.status_code == 503 and "系统繁忙" in page.get_data(as_text=True)


def test_the_worker_process_outlives_a_redis_restart_and_runs_the_jobs_queued_after_it(tmp_path: Path) -> None:
    """`python -m worker` keeps running across a Redis restart and serves the new server's queue."""
    server = RedisServer(tmp_path)
    server.start()
    env = {**os.environ, "REDIS_URL": server.url, "DATABASE_URL": f"sqlite:///{tmp_path / 'w.sqlite3'}",
           "XPILOT_INSTANCE": str(tmp_path / "instance"), "REDIS_TIMEOUT": str(TIMEOUT),
           "REDIS_CONNECT_TIMEOUT": str(TIMEOUT)}
    upgrade(env["DATABASE_URL"])
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "worker"], env=env, cwd=Path(__file__).resolve().parents[1],
                                  stdout=out, stderr=out)
    try:
        client = redis.Redis.from_url(server.url)
        _wait(lambda: bool(list(client.scan_iter("rq:worker:*"))), worker, log, "the worker to start")
        server.kill()
        time.sleep(3)
        server.start()
        job = Queue("xpilot", connection=client).enqueue(process_jobs.sweep)
        _wait(lambda: job.get_status(refresh=True) == "finished", worker, log, "the job queued after the restart")
    finally:
        server.kill()  # first: the worker and its scheduler only talk to it
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def _wait(condition: Callable[[], bool], worker: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert worker.poll() is None, f"the worker exited: {log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"waited 60 s for {what}: {log.read_text()[-3000:]}"
        time.sleep(0.2)

"""Text messages: Alibaba Cloud SMS through its SDK against a local stand-in, retries, at-most-once, the outbox page."""
from __future__ import annotations

import logging
import os
import re
import string
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from rq.job import Job
from sqlalchemy import func, select

from app import clock
from app.extensions import db
from app.processes.jobs import deliver_message, enqueue_deliveries, enqueue_delivery
from app.processes.models import ProcessInstance
from app.queue import jobs
from app.sms import services as sms
from app.sms.models import AuditEntry, SmsMessage, SmsTemplate
from app.sms.templates import shipped_templates
from tests.conftest import run_jobs
from tests.factories import login, register, with_demo
from tests.sms_standin import Sleep, StandIn
from tests.test_worker import WorkerProcess, wait_until

PROJECT = Path(__file__).resolve().parents[1]
AK, SECRET, SIGN = "LTAI5tStandInKey", "stand-in-secret", "1+X证书试点"
NATIONAL = {t["name"]: t["text"] for t in shipped_templates(PROJECT / "bpmn")}
CODES = {name: f"SMS_90000000{i}" for i, name in enumerate(NATIONAL, 1)}
PHONE = "13900007777"
APPROVED = {"school": "岭南交通职业技术学院", "certificate": "Web前端开发职业技能等级证书", "level": "中级"}
PASSWORD = "Pw-7c1e9f2a"
ISSUED = {"school": "岭南交通职业技术学院", "username": "9144010001", "password": PASSWORD}


@pytest.fixture
def standin() -> Iterator[StandIn]:
    """The provider: a stand-in that knows our key, our signature and one approved template per message template."""
    server = StandIn(AK, SECRET, SIGN, {CODES[name]: tuple(f for _, f, _, _ in string.Formatter().parse(text) if f)
                                        for name, text in NATIONAL.items()}).start()
    yield server
    server.stop()


def aliyun_env(endpoint: str) -> dict[str, str]:
    """The settings of SMS_BACKEND=aliyun for the stand-in, as environment variables (fast retries)."""
    env = {"SMS_BACKEND": "aliyun", "ALIYUN_SMS_ACCESS_KEY_ID": AK, "ALIYUN_SMS_ACCESS_KEY_SECRET": SECRET,
           "ALIYUN_SMS_SIGN_NAME": SIGN, "ALIYUN_SMS_ENDPOINT": endpoint, "ALIYUN_SMS_TIMEOUT": "1",
           "SMS_MAX_ATTEMPTS": "3", "SMS_RETRY_BACKOFF": "1,2", "SMS_SENDING_TIMEOUT": "3"}
    env.update({f"ALIYUN_SMS_TEMPLATE_{name.upper()}": code for name, code in CODES.items()})
    return env


@pytest.fixture
def aliyun(app: Flask, standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> StandIn:
    """Switch the app to SMS_BACKEND=aliyun, configured from the environment like production."""
    from app.config import load_settings

    for key, value in aliyun_env(standin.endpoint).items():
        monkeypatch.setenv(key, value)
    loaded = load_settings()
    settings = app.config["XPILOT"]
    for name in ("sms_backend", "aliyun_sms", "sms_max_attempts", "sms_retry_backoff", "sms_sending_timeout"):
        setattr(settings, name, getattr(loaded, name))
    return standin


def queue(app: Flask, *, phone: str = PHONE, template: str = "review_approved", params: dict | None = None,
          province: str | None = "440000") -> int:
    """Record a message and queue its delivery, as the services do."""
    with app.app_context():
        session = db.session()
        message = sms.queue_message(session, key=f"test-{uuid.uuid4().hex}", phone=phone, template=template,
                                    params=params or APPROVED, province_code=province)
        session.commit()
        enqueue_delivery(message.id)
        return message.id


def row(app: Flask, message_id: int) -> SmsMessage:
    with app.app_context():
        message = db.session.get(SmsMessage, message_id)
        assert message is not None
        db.session.expunge(message)
        return message


def drive(app: Flask, message_id: int, until: Callable[[SmsMessage], bool], timeout: float = 20) -> SmsMessage:
    """Run due jobs (scheduled retries included) until the message satisfies `until`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run_jobs(app)
        message = row(app, message_id)
        if until(message):
            return message
        time.sleep(0.1)
    pytest.fail(f"message {message_id} stuck in {row(app, message_id).status}")


def test_aliyun_sends_through_the_sdk_with_template_code_params_and_out_id(app: Flask, aliyun: StandIn) -> None:
    message_id = queue(app)
    run_jobs(app)

    message = row(app, message_id)
    assert (message.status, message.attempts, message.backend, message.error) == ("sent", 1, "aliyun", None)
    [accepted] = aliyun.accepted
    assert message.provider_message_id == accepted.biz_id
    assert (accepted.phone, accepted.sign_name, accepted.template_code) == (PHONE, SIGN, CODES["review_approved"])
    assert accepted.template_param == APPROVED and accepted.out_id == f"xpilot-{message_id}"
    assert aliyun.rejected == []  # the signature (ACS3-HMAC-SHA256 with our secret) was verified


def test_the_template_code_is_the_registry_s_as_it_was_when_the_message_was_queued(app: Flask,
                                                                                   aliyun: StandIn) -> None:
    aliyun.templates["SMS_440000001"] = ("school", "certificate", "level")

    def set_code(code: str) -> None:
        with app.app_context():
            template = db.session.scalars(select(SmsTemplate).where(SmsTemplate.name == "review_approved")).one()
            template.provider_code = code
            db.session.commit()

    set_code("SMS_440000001")
    message_id = queue(app)
    set_code("SMS_CHANGED_LATER")  # an edit after queueing changes nothing for this message
    run_jobs(app)
    assert row(app, message_id).status == "sent"
    [accepted] = aliyun.accepted
    assert accepted.template_code == "SMS_440000001" and accepted.template_param == APPROVED


def test_wrong_secret_is_refused_by_the_provider_and_fails_without_retry(app: Flask, aliyun: StandIn) -> None:
    app.config["XPILOT"].aliyun_sms["access_key_secret"] = "not-the-secret"
    message = drive(app, queue(app), lambda m: m.status != "queued")
    assert (message.status, message.attempts) == ("failed", 1)
    assert message.error.startswith("SignatureDoesNotMatch")
    assert aliyun.rejected == ["SignatureDoesNotMatch"]


@pytest.mark.parametrize("phone,script,error", [("1390000", "OK", "isv.MOBILE_NUMBER_ILLEGAL: 非法手机号"),
                                                 (PHONE, "isv.AMOUNT_NOT_ENOUGH", "isv.AMOUNT_NOT_ENOUGH: 账户余额不足")])
def test_permanent_error_fails_at_once_and_is_not_retried(app: Flask, aliyun: StandIn, phone: str, script: str,
                                                          error: str) -> None:
    aliyun.then(script)
    message_id = queue(app, phone=phone)
    run_jobs(app)
    time.sleep(1.5)
    run_jobs(app)  # a retry, if one had been scheduled, would be due now

    message = row(app, message_id)
    assert (message.status, message.attempts, message.next_attempt_at, message.error) == ("failed", 1, None, error)
    assert len(aliyun.send_calls()) == 1 and aliyun.accepted == []
    assert not [j for j in jobs.queue.scheduled_job_registry.get_job_ids() if j.startswith(f"sms-{message_id}-a")]


def test_template_without_a_template_code_fails_without_calling_the_provider(app: Flask, aliyun: StandIn) -> None:
    app.config["XPILOT"].aliyun_sms["template_drafts_expired"] = ""
    message = drive(app, queue(app, template="drafts_expired", params={"school": "某校", "plan": "某计划"}),
                    lambda m: m.status == "failed")
    assert message.error.startswith("TEMPLATE_NOT_CONFIGURED") and "drafts_expired" in message.error
    assert aliyun.requests == []


@pytest.mark.parametrize("code", ["isv.BUSINESS_LIMIT_CONTROL", "Throttling.User"])
def test_retryable_error_is_retried_with_backoff_then_fails_and_an_admin_resends_it(
        app: Flask, aliyun: StandIn, client: FlaskClient, code: str) -> None:
    with_demo(app)
    aliyun.then(code, code, code)
    message_id = queue(app)
    run_jobs(app)

    first = row(app, message_id)
    assert (first.status, first.attempts) == ("retrying", 1) and first.error.startswith(code)
    # The schedule: the next attempt is due one backoff (1 s) after this one, and an RQ job waits for it.
    gap = (first.next_attempt_at - first.created_at).total_seconds()
    assert 1 <= gap < 2
    scheduled = jobs.queue.scheduled_job_registry.get_scheduled_time(f"sms-{message_id}-a2")
    assert scheduled >= first.next_attempt_at.replace(microsecond=0)
    second = drive(app, message_id, lambda m: m.attempts == 2)
    assert second.status == "retrying"
    last = drive(app, message_id, lambda m: m.status == "failed")
    assert last.attempts == 3 and last.error.startswith(code) and last.next_attempt_at is None
    # The attempts came at least 1 s, then 3 s after the first (SMS_RETRY_BACKOFF=1,2).
    assert sms.RetryPolicy.from_settings(app.config["XPILOT"]).schedule() == [1, 3]
    sent_at = [float(r["_at"]) for r in aliyun.send_calls()]
    assert len(sent_at) == 3 and sent_at[1] - sent_at[0] >= 1 and sent_at[2] - sent_at[0] >= 3

    login(client, "ministry")
    page = client.get("/admin/outbox?status=failed").get_data(as_text=True)
    assert f'id="sms-{message_id}"' in page and "发送失败" in page and "重新发送" in page
    assert client.post(f"/admin/outbox/{message_id}/resend").status_code == 302
    assert row(app, message_id).status == "queued"
    done = drive(app, message_id, lambda m: m.status == "sent")
    assert done.attempts == 1 and done.provider_message_id == aliyun.accepted[0].biz_id
    assert aliyun.accepted[0].out_id == f"xpilot-{message_id}-r1"  # a resend is a new reference for reconciling
    with app.app_context():
        [entry] = db.session.scalars(select(AuditEntry).where(AuditEntry.target == f"sms:{message_id}")).all()
        assert entry.action == "resend_sms" and entry.actor_id is not None and entry.at is not None
        assert "发送失败" in entry.detail and "已尝试 3 次" in entry.detail


def test_timeout_is_retried_and_the_retry_asks_the_provider_before_sending_again(app: Flask, aliyun: StandIn) -> None:
    aliyun.then(Sleep(2.5))  # the provider never answers in time, and does not take the message
    message_id = queue(app)
    run_jobs(app)
    first = row(app, message_id)
    assert (first.status, first.attempts) == ("retrying", 1) and first.error.startswith("TIMEOUT")

    done = drive(app, message_id, lambda m: m.status == "sent")
    assert done.attempts == 2
    assert len(aliyun.query_calls()) >= 1 and len(aliyun.send_calls()) == 2 and len(aliyun.accepted) == 1


def test_timeout_after_the_provider_took_the_message_is_not_sent_again(app: Flask, aliyun: StandIn) -> None:
    aliyun.then(Sleep(2.5, accept=True))  # the provider takes the message; its answer comes too late
    message_id = queue(app)
    run_jobs(app)
    assert row(app, message_id).status == "retrying"

    done = drive(app, message_id, lambda m: m.status == "sent")
    assert len(aliyun.send_calls()) == 1 and len(aliyun.accepted) == 1
    assert aliyun.query_calls()[0]["PhoneNumber"] == PHONE
    assert done.error is None


def test_duplicate_jobs_and_concurrent_workers_send_a_message_once(app: Flask, aliyun: StandIn) -> None:
    aliyun.then(Sleep(0.5, accept=True))
    message_id = queue(app)
    results: list[str] = []

    def work() -> None:
        with app.app_context():
            results.append(deliver_message(message_id))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["sending", "sent"]  # the second found the claim and left it alone
    for tag in ("dup1", "dup2"):
        enqueue_delivery(message_id, tag=tag)
    run_jobs(app)
    assert row(app, message_id).status == "sent" and len(aliyun.send_calls()) == 1


def test_a_batch_delivers_each_message_on_its_own(app: Flask, aliyun: StandIn) -> None:
    with app.app_context():
        session = db.session()
        ids = [sms.queue_message(session, key=f"batch-{i}", phone=phone, template="review_approved",
                                 params=APPROVED).id for i, phone in enumerate((PHONE, "123", "13900006666"))]
        session.commit()
        enqueue_deliveries(ids)
    run_jobs(app)
    assert [row(app, i).status for i in ids] == ["sent", "failed", "sent"]
    assert len(aliyun.accepted) == 2


def test_the_password_is_sent_as_a_template_param_but_never_logged_or_shown(
        app: Flask, aliyun: StandIn, client: FlaskClient, caplog: pytest.LogCaptureFixture) -> None:
    with_demo(app)
    caplog.set_level(logging.DEBUG)
    down = queue(app, template="account_issued", params=ISSUED)
    app.config["XPILOT"].aliyun_sms["endpoint"] = "http://127.0.0.1:9"  # nothing listens: connection refused
    run_jobs(app)
    refused = row(app, down)
    assert refused.status == "retrying" and refused.error.startswith("CONNECTION_FAILED")
    assert refused.params["password"] == PASSWORD and PASSWORD not in refused.body  # kept for the retry only
    app.config["XPILOT"].aliyun_sms["endpoint"] = aliyun.endpoint
    drive(app, down, lambda m: m.status == "sent")
    aliyun.then(Sleep(2.5))
    slow = queue(app, template="account_issued", params=ISSUED, phone="13900006666")
    run_jobs(app)
    assert row(app, slow).error.startswith("TIMEOUT")
    drive(app, slow, lambda m: m.status == "sent")

    assert [a.template_param["password"] for a in aliyun.accepted] == [PASSWORD, PASSWORD]
    for delivered in (row(app, down), row(app, slow)):  # delivered: no copy of the password is kept
        assert delivered.status == "sent" and PASSWORD not in repr(delivered.params) + delivered.body
    assert PASSWORD not in caplog.text
    assert "CONNECTION_FAILED" in caplog.text and "TIMEOUT" in caplog.text
    login(client, "ministry")
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "初始密码：******" in page and PASSWORD not in page


def test_claim_of_a_crashed_worker_turns_unknown_when_the_provider_has_no_record(app: Flask, aliyun: StandIn) -> None:
    message_id = queue(app)
    with app.app_context():  # what a worker killed right after claiming leaves behind
        held = sms.claim(db.session(), message_id, sms.get_backend("aliyun", app.config["XPILOT"]),
                         sms.RetryPolicy.from_settings(app.config["XPILOT"]))
        db.session.commit()
        assert held.message is not None
    run_jobs(app)  # the queued job finds the claim and leaves it alone
    assert row(app, message_id).status == "sending" and aliyun.requests == []
    time.sleep(3.2)  # past the claim's deadline (SMS_SENDING_TIMEOUT=3)
    enqueue_delivery(message_id, tag="check")
    run_jobs(app)
    message = row(app, message_id)
    assert message.status == "unknown" and message.error.startswith("INTERRUPTED")
    assert len(aliyun.query_calls()) == 1 and aliyun.send_calls() == []


@pytest.fixture
def aliyun_worker(app: Flask, standin: StandIn, tmp_path: Path) -> Iterator[Callable[[], WorkerProcess]]:
    """Start real `python -m worker` processes with SMS_BACKEND=aliyun on the test's database and Redis."""
    started: list[WorkerProcess] = []
    settings = app.config["XPILOT"]

    def start() -> WorkerProcess:
        env = {**os.environ, **aliyun_env(standin.endpoint), "ALIYUN_SMS_TIMEOUT": "60",
               "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "XPILOT_ENV": "test",
               "XPILOT_INSTANCE": str(settings.instance_path), "SECRET_KEY": "test-secret", "PYTHONUNBUFFERED": "1"}
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=PROJECT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        started.append(WorkerProcess(process, log))
        return started[-1]

    yield start
    for worker in started:
        worker.stop()


@pytest.mark.slow
@pytest.mark.parametrize("provider_took_it", [True, False])
def test_worker_killed_while_the_provider_has_the_request_never_sends_twice(
        app: Flask, standin: StandIn, aliyun_worker: Callable[[], WorkerProcess], client: FlaskClient,
        provider_took_it: bool) -> None:
    with_demo(app)
    standin.then(Sleep(60, accept=provider_took_it))
    worker = aliyun_worker()
    message_id = queue(app)
    wait_until(lambda: len(standin.send_calls()) == 1, 60, "the SendSms request", worker)
    worker.kill_hard()
    crashed = row(app, message_id)
    assert (crashed.status, crashed.attempts) == ("sending", 1)
    time.sleep(3.5)  # past the claim's deadline (SMS_SENDING_TIMEOUT=3)
    # A duplicate job waits for the next worker. (The check job scheduled at claim time would do the same,
    # but a SIGKILLed worker leaves RQ's scheduler lock behind, which delays scheduled jobs for minutes.)
    enqueue_delivery(message_id, tag="duplicate")

    restarted = aliyun_worker()
    final = "sent" if provider_took_it else "unknown"
    wait_until(lambda: row(app, message_id).status == final, 60, f"the reconciliation to find it {final}", restarted)
    assert len(standin.send_calls()) == 1 and len(standin.query_calls()) >= 1
    if provider_took_it:
        return
    # 状态未知: shown to the admin, who checks and resends by hand.
    login(client, "gd_admin")
    page = client.get("/admin/outbox?status=unknown").get_data(as_text=True)
    assert f'id="sms-{message_id}"' in page and "状态未知" in page
    assert client.post(f"/admin/outbox/{message_id}/resend").status_code == 302
    wait_until(lambda: row(app, message_id).status == "sent", 60, "the resent message", restarted)
    assert len(standin.send_calls()) == 2 and len(standin.accepted) == 1
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "resend_sms")) == 1


def test_outbox_backend_still_delivers_exactly_once(app: Flask) -> None:
    message_id = queue(app)
    enqueue_delivery(message_id, tag="again")
    run_jobs(app)
    message = row(app, message_id)
    assert (message.status, message.attempts, message.backend) == ("sent", 1, "outbox")
    assert message.provider_message_id == f"outbox-{message_id}"
    assert Job.fetch(f"sms-{message_id}", connection=jobs.redis).get_status() == "finished"


def test_messages_of_a_registration_carry_the_province(app: Flask, client: FlaskClient) -> None:
    with_demo(app)
    assert register(client, "金陵工程职业技术学院", "13712340000", city="320100", province="320000").status_code == 200
    run_jobs(app)
    with app.app_context():
        code, message = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == "13712340000")
                                           .order_by(SmsMessage.id)).all()
        assert (code.template, code.status, code.province_code) == ("registration_code", "sent", "320000")
        instance = db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "registration")).one()
        assert (message.status, message.province_code, instance.province_code) == ("sent", "320000", "320000")


def _seed(app: Flask) -> dict[str, int]:
    """Messages in three states and two provinces."""
    with app.app_context():
        session = db.session()
        made = {}
        for key, province, status in (("gd-sent", "440000", "sent"), ("gd-failed", "440000", "failed"),
                                      ("js-failed", "320000", "failed"), ("gd-retrying", "440000", "retrying")):
            message = sms.queue_message(session, key=key, phone="1390000" + str(len(made)).zfill(4),
                                        template="review_approved", params=APPROVED, province_code=province)
            message.status, message.attempts = status, 3 if status == "failed" else 1
            message.error = "isv.BUSINESS_LIMIT_CONTROL: 触发号码天级流控" if status != "sent" else None
            message.next_attempt_at = clock.now() + timedelta(minutes=2) if status == "retrying" else None
            made[key] = message.id
        session.commit()
        return made


def test_outbox_page_is_scoped_to_the_province_and_filtered(app: Flask, client: FlaskClient) -> None:
    with_demo(app)
    made = _seed(app)
    login(client, "gd_admin")
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert "短信记录" in html and f'id="sms-{made["gd-sent"]}"' in html and f'id="sms-{made["js-failed"]}"' not in html
    assert html.count("重新发送</button>") == 1  # only the failed message of 广东省
    assert all(label in html for label in ("已发送", "发送失败", "重试中", "下次重试"))
    failed = client.get("/admin/outbox?status=failed").get_data(as_text=True)
    assert f'id="sms-{made["gd-failed"]}"' in failed and f'id="sms-{made["gd-sent"]}"' not in failed
    assert "重试中" in client.get("/admin/outbox?status=retrying").get_data(as_text=True)
    by_phone = client.get("/admin/outbox?phone=13900000000").get_data(as_text=True)
    assert f'id="sms-{made["gd-sent"]}"' in by_phone and f'id="sms-{made["gd-failed"]}"' not in by_phone
    assert client.post(f"/admin/outbox/{made['js-failed']}/resend").status_code == 404  # another province's
    refused = client.post(f"/admin/outbox/{made['gd-sent']}/resend", follow_redirects=True).get_data(as_text=True)
    assert "只有发送失败或状态未知的短信可以重新发送" in refused

    login(client, "analyst")
    html = client.get("/admin/outbox").get_data(as_text=True)
    assert all(f'id="sms-{i}"' in html for i in made.values()) and "重新发送</button>" not in html
    assert client.post(f"/admin/outbox/{made['js-failed']}/resend").status_code == 403
    login(client, "gd_reviewer")
    assert client.get("/admin/outbox").status_code == 403


def test_outbox_page_pages_through_many_messages(app: Flask, client: FlaskClient) -> None:
    with_demo(app)
    with app.app_context():
        for i in range(120):
            sms.queue_message(db.session(), key=f"many-{i}", phone="13900001234", template="review_approved",
                              params=APPROVED)
        db.session.commit()
    login(client, "ministry")
    first = client.get("/admin/outbox?phone=13900001234").get_data(as_text=True)
    assert "共 120 条" in first and "第 1 / 3 页" in first and first.count('<tr id="sms-') == 50
    last = client.get("/admin/outbox?phone=13900001234&page=3").get_data(as_text=True)
    assert "第 3 / 3 页" in last and last.count('<tr id="sms-') == 20 and "上一页" in last


def test_resend_needs_the_form_token(app: Flask, client: FlaskClient) -> None:
    with_demo(app)
    made = _seed(app)
    app.config["WTF_CSRF_ENABLED"] = True

    def token(url: str) -> str:
        return re.search(r'name="csrf_token" value="([^"]+)"', client.get(url).get_data(as_text=True)).group(1)

    client.post("/login", data={"username": "gd_admin", "password": "demo2026pilot", "csrf_token": token("/login")})
    assert client.post(f"/admin/outbox/{made['gd-failed']}/resend").status_code == 400
    assert row(app, made["gd-failed"]).status == "failed"
    answer = client.post(f"/admin/outbox/{made['gd-failed']}/resend", data={"csrf_token": token("/admin/outbox")})
    assert answer.status_code == 302 and row(app, made["gd-failed"]).status == "queued"
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert "已重新加入发送队列" in page and re.search(r'<a href="/admin/outbox"[^>]*>短信记录</a>', page)  # the top menu

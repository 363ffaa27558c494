"""Registration proves the phone with a texted code, and the registration process decides about the account: the
national process activates it at once (the registrant is signed in); a province's variant waits for its officer's
approval, during which the account cannot log in or declare and nothing is texted or queued for it."""
from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app import clock
from app.accounts.models import PhoneCode, User
from app.core.errors import Forbidden
from app.declarations import services as declarations
from app.engine import engine
from app.engine.specs import InvalidProcess
from app.extensions import db
from app.masterdata.models import School
from app.processes import publish_gate
from app.processes.jobs import sweep
from app.processes.models import HumanTask, ProcessInstance
from app.processes.services import shipped_forms
from app.sms.models import SmsMessage
from app.sms.templates import texts_for_scope
from tests.conftest import password_in, run_jobs
from tests.factories import declaration_form, login, register, texted_code, with_demo

PROJECT = Path(__file__).resolve().parents[1]
VARIANT = PROJECT / "bpmn" / "variants" / "registration-province-approval.bpmn"
LINGNAN = "岭南交通职业技术学院"
PHONE = "13712345678"
FORM = {"province": "440000", "city": "440100", "school": LINGNAN, "phone": PHONE}


def _messages(app: Flask, phone: str = PHONE, template: str | None = None) -> list[SmsMessage]:
    with app.app_context():
        stmt = select(SmsMessage).where(SmsMessage.phone == phone).order_by(SmsMessage.id)
        if template:
            stmt = stmt.where(SmsMessage.template == template)
        rows = list(db.session.scalars(stmt))
        for row in rows:
            db.session.expunge(row)
        return rows


def _account(app: Flask, phone: str = PHONE) -> User | None:
    with app.app_context():
        found = db.session.scalars(select(User).where(User.phone == phone)).first()
        if found is not None:
            db.session.expunge(found)
        return found


def _send_code(client, **changes: str):
    return client.post("/register", data={**FORM, **changes, "action": "send_code"})


def _text(response) -> str:
    return response.get_data(as_text=True)


# ---------------------------------------------------------------- the code

def test_registering_without_the_texted_code_creates_nothing(app, client):
    with_demo(app)
    page = client.post("/register", data={**FORM, "action": "register"})
    assert page.status_code == 422 and "验证码：请输入短信中的 6 位数字验证码" in _text(page)
    page = client.post("/register", data={**FORM, "sms_code": "123456", "action": "register"})
    assert page.status_code == 422 and "请先点击“获取验证码”" in _text(page)
    assert _account(app) is None and _messages(app) == []


def test_getting_a_code_keeps_what_was_typed_and_texts_it_through_the_outbox(app, client):
    with_demo(app)
    sent = _send_code(client)
    html = _text(sent)
    assert sent.status_code == 200 and "验证码已发送至手机 137****5678，5 分钟内有效" in html
    for value in ("440000", "440100", LINGNAN, PHONE):  # no JavaScript needed: the form comes back filled in
        assert f'value="{value}"' in html
    [message] = _messages(app)
    assert message.template == "registration_code" and message.province_code == "440000"
    run_jobs(app)
    [message] = _messages(app)
    code = texted_code(app, PHONE)
    assert message.status == "sent" and code in message.body  # the outbox shows what the phone received
    with app.app_context():
        [row] = db.session.scalars(select(PhoneCode)).all()
        assert code not in row.code_hash and len(row.code_hash) == 64  # only a keyed hash is kept
    # A form refused anyway texts nothing.
    refused = _send_code(client, school="不存在的职业学院")
    assert refused.status_code == 422 and "不在广东省的教育部院校名单中" in _text(refused)
    assert len(_messages(app)) == 1


def test_a_wrong_code_is_refused_and_a_few_wrong_tries_void_the_code(app, client):
    with_demo(app)
    app.config["XPILOT"].registration_code_attempts = 3
    _send_code(client)
    code = texted_code(app, PHONE)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(3):
        page = client.post("/register", data={**FORM, "sms_code": wrong, "action": "register"})
        assert page.status_code == 422 and "验证码：不正确" in _text(page)
        assert f'value="{LINGNAN}"' in _text(page) and f'value="{PHONE}"' in _text(page)
    void = client.post("/register", data={**FORM, "sms_code": code, "action": "register"})
    assert void.status_code == 422 and "错误次数过多，该验证码已失效" in _text(void)
    assert _account(app) is None


def test_an_expired_code_is_refused(app, client):
    with_demo(app)
    _send_code(client)
    code = texted_code(app, PHONE)
    clock.move(timedelta(minutes=5, seconds=1))
    page = client.post("/register", data={**FORM, "sms_code": code, "action": "register"})
    assert page.status_code == 422 and "验证码：已过期，请重新获取验证码" in _text(page)
    assert _account(app) is None


def test_a_code_works_once_and_is_masked_in_the_record_once_used(app, client):
    with_demo(app)
    _send_code(client)
    code = texted_code(app, PHONE)
    assert register(client, LINGNAN, PHONE, code=code).status_code == 200
    [message] = _messages(app, template="registration_code")
    assert code not in message.body and "******" in message.body and code not in repr(message.params)
    again = app.test_client().post("/register", data={**FORM, "school": "广州南粤职业技术大学", "sms_code": code,
                                                      "action": "register"})
    assert again.status_code == 422 and "请先点击“获取验证码”" in _text(again)


def test_codes_are_rate_limited_per_phone_and_per_address(app, client):
    with_demo(app)
    settings = app.config["XPILOT"]
    assert _send_code(client).status_code == 200
    soon = _send_code(client)
    assert soon.status_code == 429 and "验证码已发送，请稍候再重新获取" in _text(soon)
    settings.registration_code_gap = 0
    settings.sms_limit_per_phone = (2, 3600)
    other = "13700000001"
    assert _send_code(client, phone=other).status_code == 200
    assert _send_code(client, phone=other).status_code == 200
    per_phone = _send_code(client, phone=other)
    assert per_phone.status_code == 429 and "该手机号接收短信过于频繁" in _text(per_phone)
    settings.sms_limit_per_ip = (3, 3600)  # this address had 3 codes texted
    per_address = _send_code(client, phone="13700000002")
    assert per_address.status_code == 429 and "发送短信过于频繁" in _text(per_address)
    assert (len(_messages(app)), len(_messages(app, phone=other)), _messages(app, phone="13700000002")) == (1, 2, [])


# ---------------------------------------------------------------- the national process

def test_the_national_process_activates_at_once_and_signs_the_registrant_in(app, client):
    with_demo(app)
    page = register(client, LINGNAN, PHONE)
    assert page.status_code == 200 and "注册成功" in _text(page) and "您已登录" in _text(page)
    account = _account(app)
    assert account is not None and account.is_active_account and account.account_status == "active"
    with app.app_context():
        instance = db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "registration")).one()
        assert instance.completed and "activate_account" in instance.path
    start = client.get("/school/")
    assert start.status_code == 200 and "第一步：完善院校基础信息" in _text(start)


# ---------------------------------------------------------------- a province that approves registrations

def _deploy_variant(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["process", "deploy", str(VARIANT), "--province", "440000"])
    assert result.exit_code == 0, result.output
    assert "已发布 registration" in result.output


def _register_pending(app: Flask, client) -> str:
    page = register(client, LINGNAN, PHONE)
    html = _text(page)
    assert page.status_code == 200 and "注册申请已提交" in html
    assert "等待广东省教育行政部门（省级管理员）审核" in html and 'id="password"' not in html
    return html


def _approval_task(app: Flask) -> HumanTask:
    with app.app_context():
        task = db.session.scalars(select(HumanTask).where(HumanTask.subject_type == "user",
                                                          HumanTask.completed_at.is_(None))).one()
        db.session.expunge(task)
        return task


def test_a_pending_account_cannot_log_in_or_declare_and_nothing_is_texted_or_swept(app, client):
    with_demo(app)
    _deploy_variant(app)
    _register_pending(app, client)
    account = _account(app)
    assert account is not None and account.account_status == "pending" and not account.is_active_account
    assert client.get("/school/").status_code == 302  # not signed in
    refused = login(app.test_client(), account.username, "anything1")
    assert refused.status_code == 422 and "注册申请正在等待审核" in _text(refused)
    with app.app_context(), pytest.raises(Forbidden, match="尚未开通"):
        declarations.create_declaration(db.session(), db.session.get(User, account.id),
                                        declaration_form(app), "submit")
    # The worker's start-up sweep finds nothing to send for the account, and nothing is sent later either.
    with app.app_context():
        swept = sweep()
    assert swept["calls"] == 0
    run_jobs(app)
    assert [m.template for m in _messages(app)] == ["registration_code"]
    assert _account(app).account_status == "pending"


def test_the_approval_task_names_the_school_and_activation_texts_the_password_only_then(app, client):
    with_demo(app)
    _deploy_variant(app)
    _register_pending(app, client)
    run_jobs(app)
    task = _approval_task(app)
    officer = app.test_client()
    login(officer, "gd_admin")
    inbox = _text(officer.get("/tasks/"))
    assert "审核院校注册" in inbox and LINGNAN in inbox and "广东省广州市" in inbox and PHONE in inbox
    page = officer.get(f"/tasks/{task.id}")
    html = _text(page)
    assert page.status_code == 200
    with app.app_context():
        code = db.session.scalars(select(School.code).where(School.name == LINGNAN)).one()
    for shown in (LINGNAN, code, "广东省 广州市", PHONE, "审核通过（开通账号）"):
        assert shown in html
    other = app.test_client()
    login(other, "js_admin")
    assert other.get(f"/tasks/{task.id}").status_code == 404  # another province's officer sees nothing of it
    assert LINGNAN not in _text(other.get("/tasks/"))
    done = officer.post(f"/tasks/{task.id}", data={"decision": "approve"})
    assert done.status_code == 302
    assert _messages(app, template="account_issued") == []  # activation is the worker's step
    run_jobs(app)
    account = _account(app)
    assert account.is_active_account and account.account_status == "active"
    [message] = _messages(app, template="account_issued")
    assert message.status == "sent"
    with app.app_context():
        instance = db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "registration")).one()
        assert instance.completed and instance.status == "账号已开通"
    assert "初始密码：******" in message.body  # delivered: no copy of the password is kept


def test_approved_school_logs_in_with_the_texted_password(app, client, texts_received):
    with_demo(app)
    _deploy_variant(app)
    _register_pending(app, client)
    run_jobs(app)
    officer = app.test_client()
    login(officer, "gd_admin")
    assert officer.post(f"/tasks/{_approval_task(app).id}", data={"decision": "approve"}).status_code == 302
    assert [t for t in texts_received.get(PHONE, []) if "密码" in t] == []
    run_jobs(app)
    [text] = [t for t in texts_received[PHONE] if "密码" in t]
    school = app.test_client()
    assert login(school, _account(app).username, password_in(text)).status_code == 302
    assert "首次登录请先修改初始密码" in _text(school.get("/school/", follow_redirects=True))


def test_a_refused_registration_texts_the_reason_and_frees_the_school(app, client):
    with_demo(app)
    _deploy_variant(app)
    _register_pending(app, client)
    again = register(app.test_client(), LINGNAN, "13755556666")
    assert again.status_code == 422 and "注册申请已提交，正在等待审核" in _text(again)
    officer = app.test_client()
    login(officer, "gd_admin")
    task = _approval_task(app)
    no_reason = officer.post(f"/tasks/{task.id}", data={"decision": "reject"})
    assert no_reason.status_code == 422 and "审核意见" in _text(no_reason)
    assert officer.post(f"/tasks/{task.id}", data={"decision": "reject", "comment": "非本校人员注册"}).status_code == 302
    run_jobs(app)
    refused = _account(app)
    assert refused.account_status == "refused" and not refused.is_active_account and refused.school_id is None
    [message] = _messages(app, template="account_refused")
    assert message.status == "sent" and "非本校人员注册" in message.body and LINGNAN in message.body
    assert _messages(app, template="account_issued") == []
    with app.app_context():
        instance = db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "registration")).one()
        assert instance.completed and instance.status == "注册未通过"
    # The rightful school registers (and waits for approval in turn).
    app.config["XPILOT"].registration_code_gap = 0
    rightful = register(app.test_client(), LINGNAN, "13755556666")
    assert rightful.status_code == 200 and "等待广东省教育行政部门（省级管理员）审核" in _text(rightful)
    history = _text(officer.get(f"/province/schools/{_account(app, '13755556666').school_id}"))
    assert "注册审核不通过" in history and "非本校人员注册" in history and "注册待审核" in history


def test_other_provinces_keep_the_national_process(app, client):
    with_demo(app)
    _deploy_variant(app)
    page = register(client, "金陵工程职业技术学院", "13712340000", city="320100", province="320000")
    assert page.status_code == 200 and "注册成功" in _text(page)
    assert re.search(r'id="password">\w+<', _text(page))


def test_account_operators_may_serve_the_registration_process_only(app):
    with app.app_context():
        xml = (PROJECT / "bpmn" / "registration.bpmn").read_text("utf-8")
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        templates = texts_for_scope(db.session(), "440000")
        publish_gate.checked(engine(), "registration", VARIANT.read_text("utf-8"), forms, ["province_admin"], templates)
        with pytest.raises(InvalidProcess) as refused:
            publish_gate.checked(engine(), "plan", xml.replace('id="registration"', 'id="plan"'), forms, [], templates)
        assert "account_activate" in str(refused.value.problems) and "只能用于院校注册流程" in str(refused.value.problems)


def test_releasing_a_pending_registration_ends_its_approval(app, client):
    with_demo(app)
    _deploy_variant(app)
    _register_pending(app, client)
    officer = app.test_client()
    login(officer, "gd_admin")
    school_id = _account(app).school_id
    assert officer.post(f"/province/schools/{school_id}/release", data={"reason": "非本校人员注册"}).status_code == 302
    assert LINGNAN not in _text(officer.get("/tasks/"))
    with app.app_context():
        assert db.session.scalars(select(HumanTask).where(HumanTask.completed_at.is_(None))).all() == []
        assert db.session.scalars(select(ProcessInstance).where(
            ProcessInstance.process_key == "registration")).one().completed
    app.config["XPILOT"].registration_code_gap = 0
    assert register(app.test_client(), LINGNAN, "13755556666").status_code == 200

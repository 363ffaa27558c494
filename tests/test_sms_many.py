"""Messages to many: one province's plan texts every school that still has a declaration 审核不通过 two days before
the deadline, once per school even when the job is retried or run again, with its progress on the outbox page."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app import clock
from app.declarations.models import Declaration
from app.engine.runtime import ProcessEngine
from app.engine.specs import InvalidProcess
from app.extensions import db
from app.handlers.sms_many import sms_many
from app.plans.models import DeclarationPlan
from app.processes import admin as process_admin
from app.processes.jobs import enqueue_deliveries, run_service_call, sweep
from app.processes.models import ServiceCall
from app.processes.services import publish_version, shipped_forms
from app.queue import jobs
from app.sms.models import SmsMessage
from app.sms.recipients import select_recipients
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, register, with_demo

PROJECT = Path(__file__).resolve().parents[1]
PLAN = (PROJECT / "bpmn" / "plan.bpmn").read_text("utf-8")
REJECTED = "{'kind': 'schools_with_declaration', 'meaning': ['returned', 'rejected']}"
ZHUJIANG_PHONE = "13800138002"  # zjxx_weekly, 珠江信息职业学院
LINGNAN_PHONE = "13712345678"


def plan_with_reminder(selector: str = REJECTED, template: str = "'rejected_reminder'",
                       plan_param: bool = True) -> str:
    """The national plan process with a reminder two days before the deadline, as an analyst draws it."""
    plan_id = '<spiffworkflow:parameter id="plan_id" type="int" value="plan_id" />' if plan_param else ""
    reminder = f"""
    <bpmn:intermediateCatchEvent id="wait_reminder" name="截止前两天"><bpmn:incoming>Flow_0</bpmn:incoming><bpmn:outgoing>Flow_r1</bpmn:outgoing>
      <bpmn:timerEventDefinition id="wait_reminder_def"><bpmn:timeDate>add_days(ends_at, -2)</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:serviceTask id="remind_rejected" name="提醒有审核不通过申报的院校">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="sms_many" resultVariable="reminder_result">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="template" type="str" value="{template}" />
            <spiffworkflow:parameter id="selector" type="dict" value="{selector}" />
            {plan_id}
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_r1</bpmn:incoming><bpmn:outgoing>Flow_r2</bpmn:outgoing>
    </bpmn:serviceTask>
    """
    close = '<bpmn:intermediateCatchEvent id="wait_close" name="申报截止"><bpmn:incoming>Flow_0</bpmn:incoming>'
    flow = '<bpmn:sequenceFlow id="Flow_0" sourceRef="start" targetRef="wait_close" />'
    assert close in PLAN and flow in PLAN
    xml = PLAN.replace(close, reminder + close.replace("Flow_0", "Flow_r2"))
    return xml.replace(flow, '<bpmn:sequenceFlow id="Flow_0" sourceRef="start" targetRef="wait_reminder" />'
                             '<bpmn:sequenceFlow id="Flow_r1" sourceRef="wait_reminder" targetRef="remind_rejected" />'
                             '<bpmn:sequenceFlow id="Flow_r2" sourceRef="remind_rejected" targetRef="wait_close" />')


def _publish_for_guangdong(app: Flask, xml: str) -> None:
    with app.app_context():
        publish_version(db.session(), "plan", xml, shipped_forms(app.config["XPILOT"].bpmn_path),
                        province_code="440000", published_by="analyst", note="截止前两天提醒审核不通过的院校")
        db.session.commit()


def _season(app: Flask) -> int:
    """珠江 submits and is refused (审核不通过); 岭南 registers and only saves a draft. Return the plan's id."""
    zhujiang = app.test_client()
    login(zhujiang, "zjxx_weekly")
    complete_info(zhujiang)
    assert zhujiang.post("/school/declarations/new",
                         data={**declaration_form(app), "action": "submit"}).status_code == 302
    lingnan = app.test_client()
    page = register(lingnan, "岭南交通职业技术学院", LINGNAN_PHONE).get_data(as_text=True)
    password = page.split('id="password">')[1].split("<")[0]
    login(lingnan, "9144010001", password)
    lingnan.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    complete_info(lingnan)
    assert lingnan.post("/school/declarations/new",
                        data={**declaration_form(app, level="初级"), "action": "save"}).status_code == 302
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    with app.app_context():
        submitted = db.session.scalars(select(Declaration).where(Declaration.status == "待审核")).one()
        decl_id, plan_id = submitted.id, submitted.plan_id
    assert reviewer.post(f"/review/declarations/{decl_id}",
                         data={"decision": "reject", "comment": "师资情况不够具体"}).status_code == 302
    run_jobs(app)
    return plan_id


def _reminders(app: Flask) -> list[SmsMessage]:
    with app.app_context():
        rows = list(db.session.scalars(select(SmsMessage).where(SmsMessage.template == "rejected_reminder")
                                       .order_by(SmsMessage.id)))
        for row in rows:
            db.session.expunge(row)
        return rows


def _reminder_call(app: Flask) -> int:
    with app.app_context():
        return db.session.scalars(select(ServiceCall.id).where(ServiceCall.operation == "sms_many")).one()


def _to_reminder_time(app: Flask, plan_id: int) -> None:
    with app.app_context():
        ends_at = db.session.get(DeclarationPlan, plan_id).ends_at
    clock.move(ends_at - timedelta(days=2) - clock.now() + timedelta(seconds=5))
    with app.app_context():
        sweep()
    run_jobs(app)


def test_the_plan_texts_every_school_with_a_refused_declaration_two_days_before_the_deadline(app: Flask) -> None:
    _publish_for_guangdong(app, plan_with_reminder())
    with_demo(app)
    plan_id = _season(app)
    run_jobs(app)
    assert _reminders(app) == []  # nothing before the time
    _to_reminder_time(app, plan_id)
    [message] = _reminders(app)
    with app.app_context():
        plan_name = db.session.get(DeclarationPlan, plan_id).name
    assert message.phone == ZHUJIANG_PHONE and message.status == "sent" and message.province_code == "440000"
    assert message.body == f"【1+X证书试点】珠江信息职业学院：{plan_name}申报即将截止，您有审核不通过的证书试点申报，请及时登录系统处理。"
    assert message.service_call_id == _reminder_call(app)
    # Other selectors pick other schools of the same plan.
    with app.app_context():
        drafts_only = select_recipients(db.session(), {"kind": "schools_all_declarations", "meaning": "draft"},
                                        plan_id=plan_id, province_code="440000")
        assert [r.phone for r in drafts_only] == [LINGNAN_PHONE]
        any_waiting = select_recipients(db.session(), {"kind": "schools_with_declaration", "meaning": "waiting"},
                                        plan_id=plan_id, province_code="440000")
        assert any_waiting == []
    # The outbox page shows the message to many with its counts.
    admin = app.test_client()
    login(admin, "gd_admin")
    page = admin.get("/admin/outbox").get_data(as_text=True)
    row = page.split(f'id="bulk-{message.service_call_id}"')[1].split("</tr>")[0]
    assert "群发进度" in page and "remind_rejected" in row and "不通过申报提醒" in row
    assert '<td class="total">1</td><td class="sent">1</td><td class="pending">0</td><td class="failed">0</td>' in row
    other = app.test_client()
    login(other, "js_admin")
    assert f'id="bulk-{message.service_call_id}"' not in other.get("/admin/outbox").get_data(as_text=True)


def test_a_message_to_many_is_sent_once_per_recipient_across_a_retried_job_and_a_restart(
        app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish_for_guangdong(app, plan_with_reminder())
    with_demo(app)
    plan_id = _season(app)
    # The first attempt fails after the handler queued its messages (the worker lost the database, say).
    real = ProcessEngine.complete_service
    failures = []

    def fail_once(self: ProcessEngine, *args: object, **kwargs: object) -> bool:
        if not failures:
            failures.append(1)
            raise RuntimeError("connection lost")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ProcessEngine, "complete_service", fail_once)
    _to_reminder_time(app, plan_id)
    assert failures and _reminders(app) == []  # rolled back with the failed attempt
    with app.app_context():
        call = db.session.get(ServiceCall, _reminder_call(app))
        assert (call.status, call.attempts) == ("pending", 1)
    time.sleep(6)  # the retry is scheduled a few seconds later
    run_jobs(app)
    [message] = _reminders(app)
    assert message.phone == ZHUJIANG_PHONE and message.status == "sent"
    # A worker that restarts sweeps pending work again, and a duplicate job of the call runs: nothing is sent twice.
    with app.app_context():
        assert sweep()["calls"] == 0
    run_jobs(app)
    call_id = _reminder_call(app)
    with app.app_context():
        assert run_service_call(call_id) == "skipped"
        call = db.session.get(ServiceCall, call_id)
        call.status = "pending"  # as if the completion were lost: the handler runs again for the same step
        db.session.commit()
        assert run_service_call(call_id) == "cancelled"
        again = sms_many(db.session(), db.session.get(ServiceCall, call_id))
        db.session.commit()
        assert again == {"recipients": 1, "queued": 0}
    run_jobs(app)
    assert [m.id for m in _reminders(app)] == [message.id]


def test_publish_checks_the_selector_and_the_template_of_a_message_to_many(app: Flask) -> None:
    forms = shipped_forms(PROJECT / "bpmn")

    def problems(xml: str) -> list[str]:
        with app.app_context(), pytest.raises(InvalidProcess) as caught:
            process_admin.validate(db.session(), "plan", xml, forms, None)
        return [str(p) for p in caught.value.problems]

    with app.app_context():
        process_admin.validate(db.session(), "plan", plan_with_reminder(), forms, None)
    unknown_meaning = problems(plan_with_reminder(selector="{'kind': 'schools_with_declaration', 'meaning': '审核不通过'}"))
    assert any("meaning 必须是状态含义" in p and "remind_rejected" in p for p in unknown_meaning), unknown_meaning
    assert any("kind “everyone”未知" in p for p in problems(plan_with_reminder(selector="{'kind': 'everyone'}")))
    assert any("须给出 plan_id 参数" in p for p in problems(plan_with_reminder(plan_param=False)))
    assert any("短信模板“nope”不存在" in p for p in problems(plan_with_reminder(template="'nope'")))
    # review_rejected needs {certificate}, {level}, {comment}: a message to many schools cannot fill them.
    unfilled = problems(plan_with_reminder(template="'review_rejected'"))
    assert any("{certificate}" in p and "没有填写" in p for p in unfilled), unfilled


def test_deliveries_of_a_message_to_many_stay_within_the_rate_limit(app: Flask) -> None:
    with app.app_context():
        enqueue_deliveries([101, 102, 103, 104, 105], per_minute=2)
        assert jobs.queue.count == 1
        scheduled = jobs.queue.scheduled_job_registry.get_job_ids()
        assert sorted(scheduled) == ["smsb-103-104", "smsb-105-105"]

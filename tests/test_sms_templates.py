"""SMS templates are data: the registry analysts edit in the browser, with history and a preview, and the publish
gate that refuses a diagram naming an unknown template or leaving a placeholder unfilled."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from app.engine.specs import InvalidProcess
from app.extensions import db
from app.processes import admin as process_admin
from app.processes.services import shipped_forms
from app.sms import services as sms
from app.sms.models import SmsMessage, SmsTemplate, SmsTemplateRevision
from app.sms.templates import shipped_templates
from tests.factories import login, with_demo

PROJECT = Path(__file__).resolve().parents[1]
DECLARATION = (PROJECT / "bpmn" / "declaration.bpmn").read_text("utf-8")
REJECTED_VARS = "{'school': school_name, 'certificate': certificate_name, 'level': level, 'comment': comment}"
PARAMS = {"school": "岭南交通职业技术学院", "certificate": "Web前端开发职业技能等级证书", "level": "中级", "comment": "材料不全"}


def _validate(app: Flask, xml: str, province: str | None = None) -> None:
    with app.app_context():
        process_admin.validate(db.session(), "declaration", xml, shipped_forms(app.config["XPILOT"].bpmn_path),
                               province)


def _problems(app: Flask, xml: str, province: str | None = None) -> list[str]:
    with pytest.raises(InvalidProcess) as caught:
        _validate(app, xml, province)
    return [str(p) for p in caught.value.problems]


def _template(app: Flask, name: str, scope: str = "") -> SmsTemplate:
    with app.app_context():
        row = db.session.scalars(select(SmsTemplate).where(SmsTemplate.name == name, SmsTemplate.scope == scope)).one()
        db.session.expunge(row)
        return row


def _queue(app: Flask, province: str, template: str = "review_rejected") -> SmsMessage:
    with app.app_context():
        session = db.session()
        message = sms.queue_message(session, key=f"t-{uuid.uuid4().hex}", phone="13900001111", template=template,
                                    params=PARAMS, province_code=province)
        session.commit()
        session.expunge(message)
        return message


def test_national_templates_are_installed_from_the_shipped_file_once(app: Flask) -> None:
    shipped = {t["name"]: t["text"] for t in shipped_templates(PROJECT / "bpmn")}
    with app.app_context():
        rows = db.session.scalars(select(SmsTemplate).where(SmsTemplate.scope == "")).all()
        assert {r.name: r.text for r in rows} == shipped
        assert db.session.get(SmsTemplate, rows[0].id).system_variables is not None
        assert len(db.session.scalars(select(SmsTemplateRevision)).all()) == len(shipped)
        from app.processes.services import install_shipped_processes
        install_shipped_processes(db.session(), app.config["XPILOT"].bpmn_path)  # again: changes nothing
        db.session.commit()
        assert len(db.session.scalars(select(SmsTemplateRevision)).all()) == len(shipped)


def test_publish_refuses_a_diagram_naming_an_unknown_template(app: Flask) -> None:
    _validate(app, DECLARATION)  # the shipped diagram passes
    problems = _problems(app, DECLARATION.replace("'review_approved'", "'expert_notice'"))
    assert any("短信模板“expert_notice”不存在" in p and "notify_approved" in p and "短信通知审核通过" in p
               for p in problems), problems


def test_publish_refuses_a_placeholder_the_step_does_not_fill(app: Flask) -> None:
    xml = DECLARATION.replace(REJECTED_VARS, "{'school': school_name, 'certificate': certificate_name, 'level': level}")
    problems = _problems(app, xml)
    assert any("{comment}" in p and "notify_rejected" in p and "没有填写" in p for p in problems), problems


def test_publish_refuses_a_placeholder_filled_from_data_the_step_does_not_hold_yet(app: Flask) -> None:
    # The approval SMS's result is set only after approval, never before the rejection SMS.
    xml = DECLARATION.replace('<spiffworkflow:serviceTaskOperator id="sms_send" resultVariable="sms_result">',
                              '<spiffworkflow:serviceTaskOperator id="sms_send" resultVariable="approved_sms">', 1)
    xml = xml.replace(REJECTED_VARS, REJECTED_VARS.replace("'comment': comment", "'comment': approved_sms"))
    problems = _problems(app, xml)
    assert any("{comment}" in p and "approved_sms" in p and "还没有变量" in p and "notify_rejected" in p
               for p in problems), problems


def test_a_province_text_checks_the_diagrams_of_that_province(app: Flask) -> None:
    with_demo(app)
    analyst = app.test_client()
    login(analyst, "analyst")
    text = "【1+X证书试点】{school}申报的{certificate}（{level}）试点审核不通过，审核意见：{comment}。截止：{deadline}"
    refused = analyst.post("/sms-templates/new", data={"name": "review_rejected", "scope": "440000", "label": "",
                                                       "text": text, "provider_code": "", "note": "广东"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and "{deadline}" in html and "notify_rejected" in html
    assert "截止：{deadline}" in html  # the form keeps what was typed
    own = "【1+X证书试点】{school}申报的{certificate}（{level}）试点审核不通过，审核意见：{comment}。本次申报已结束。"
    saved = analyst.post("/sms-templates/new", data={"name": "review_rejected", "scope": "440000", "label": "",
                                                     "text": own, "provider_code": "SMS_440001", "note": "广东不退回修改"})
    assert saved.status_code == 302
    guangdong, jiangsu = _queue(app, "440000"), _queue(app, "320000")
    assert guangdong.body.endswith("本次申报已结束。") and guangdong.provider_template == "SMS_440001"
    assert jiangsu.body.endswith("请登录系统修改后重新提交。")
    # A Guangdong diagram that does not fill {comment} is refused; elsewhere the national text is checked.
    xml = DECLARATION.replace(REJECTED_VARS, REJECTED_VARS.replace(", 'comment': comment", ""))
    assert any("440000 省的模板文字" in p for p in _problems(app, xml))


def test_editing_a_template_keeps_history_and_messages_already_queued(app: Flask) -> None:
    with_demo(app)
    queued = _queue(app, "440000", "review_approved")
    row = _template(app, "review_approved")
    analyst = app.test_client()
    login(analyst, "analyst")
    new_text = "【1+X证书试点】恭喜！{school}申报的{certificate}（{level}）试点已审核通过。"
    response = analyst.post(f"/sms-templates/{row.id}", data={"label": "审核通过通知", "text": new_text,
                                                              "provider_code": "SMS_2", "note": "加上恭喜",
                                                              "action": "save"})
    assert response.status_code == 302
    page = analyst.get(f"/sms-templates/{row.id}").get_data(as_text=True)
    assert "第 2 版" in page and "加上恭喜" in page and "随系统安装" in page and "试点已审核通过。" in page
    with app.app_context():
        assert db.session.get(SmsMessage, queued.id).body == queued.body  # unchanged
        revisions = db.session.scalars(select(SmsTemplateRevision).where(SmsTemplateRevision.template_id == row.id)
                                       .order_by(SmsTemplateRevision.version)).all()
        assert [(r.version, r.changed_by) for r in revisions] == [(1, "system"), (2, "analyst")]
    fresh = _queue(app, "440000", "review_approved")
    assert fresh.body.startswith("【1+X证书试点】恭喜！岭南交通") and fresh.provider_template == "SMS_2"


def test_bad_template_input_is_refused_in_chinese_and_nothing_is_saved(app: Flask) -> None:
    with_demo(app)
    row = _template(app, "review_approved")
    analyst = app.test_client()
    login(analyst, "analyst")
    broken = analyst.post(f"/sms-templates/{row.id}", data={"label": "审核通过通知", "text": "{school 已通过",
                                                            "provider_code": "", "note": "", "action": "save"})
    html = broken.get_data(as_text=True)
    assert broken.status_code == 422 and "短信内容：花括号不成对" in html and "修改说明：请说明" in html
    assert "{school 已通过" in html
    extra = analyst.post(f"/sms-templates/{row.id}", data={"label": "审核通过通知", "text": "{school}{deadline}",
                                                           "provider_code": "", "note": "x", "action": "save"})
    assert extra.status_code == 422 and "没有填写 {deadline}" in extra.get_data(as_text=True)
    issued = _template(app, "account_issued")
    system = analyst.post(f"/sms-templates/{issued.id}", data={"label": "账号开通", "text": "{school}{phone}",
                                                               "provider_code": "", "note": "x", "action": "save"})
    assert system.status_code == 422 and "此模板由系统发送" in system.get_data(as_text=True)
    bad_name = analyst.post("/sms-templates/new", data={"name": "Bad Name", "scope": "", "label": "x", "text": "好",
                                                        "provider_code": "", "note": ""})
    assert bad_name.status_code == 422 and "模板名称：小写字母开头" in bad_name.get_data(as_text=True)
    assert _template(app, "review_approved").version == 1
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert reviewer.get("/sms-templates").status_code == 403


def test_preview_fills_the_typed_text_with_sample_data_without_saving(app: Flask) -> None:
    with_demo(app)
    row = _template(app, "drafts_expired")
    analyst = app.test_client()
    login(analyst, "analyst")
    page = analyst.get(f"/sms-templates/{row.id}").get_data(as_text=True)
    assert "演示职业技术学院：2026年第一批证书试点申报申报已截止" in page  # sample data on opening
    shown = analyst.post(f"/sms-templates/{row.id}", data={"label": "草稿过期通知", "text": "{plan}截止了，{school}请注意",
                                                           "provider_code": "", "note": "", "action": "preview",
                                                           "sample_school": "某某学院", "sample_plan": "某计划"})
    assert shown.status_code == 200 and "某计划截止了，某某学院请注意" in shown.get_data(as_text=True)
    assert _template(app, "drafts_expired").version == 1
    listing = analyst.get("/sms-templates").get_data(as_text=True)
    assert "drafts_expired" in listing and "rejected_reminder" in listing
    assert 'href="/sms-templates"' in analyst.get("/processes").get_data(as_text=True)  # in the analyst's menu


def test_new_template_is_usable_by_a_diagram_once_added(app: Flask) -> None:
    with_demo(app)
    xml = DECLARATION.replace("'review_approved'", "'expert_notice'")
    assert any("expert_notice" in p for p in _problems(app, xml))
    analyst = app.test_client()
    login(analyst, "analyst")
    created = analyst.post("/sms-templates/new", data={
        "name": "expert_notice", "scope": "", "label": "专家评审通知", "provider_code": "SMS_9",
        "text": "【1+X证书试点】{school}的{certificate}（{level}）已通过专家评审。", "note": "专家评审步骤"})
    assert created.status_code == 302
    _validate(app, xml)

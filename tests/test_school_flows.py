"""User guide flows 一 and 二 through the web layer, with jobs run by a real RQ worker."""
from __future__ import annotations

import re
from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from app import clock
from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.processes.models import ProcessInstance
from app.sms.models import SmsMessage
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, register, user, with_demo


def _register(client, app: Flask, name: str = "岭南交通职业技术学院", phone: str = "13712345678"):
    return register(client, name, phone)


def _declaration(app: Flask) -> Declaration:
    with app.app_context():
        return db.session.scalars(select(Declaration).order_by(Declaration.id.desc())).first()


def test_registration_shows_account_signs_in_and_texts_the_password_once_the_phone_is_proven(app, client):
    with_demo(app)
    page = _register(client, app)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "注册成功" in html and "开始申报试点证书" in html
    username = re.search(r'id="account">([^<]+)<', html).group(1)
    password = re.search(r'id="password">([^<]+)<', html).group(1)
    with app.app_context():
        message = db.session.scalars(select(SmsMessage).where(SmsMessage.phone == "13712345678",
                                                              SmsMessage.template == "account_issued")).one()
        # The national process activated the account within the request: the outbox message went with it.
        assert message.status == "sent" and message.attempts == 1 and password not in message.body
        instance = db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "registration")).one()
        assert instance.completed and instance.status == "账号已开通"
    # Signed in: 开始申报试点证书 leads straight into 证书试点申报, with a prompt (not a wall) to change the password.
    dashboard = client.get("/school/")
    assert dashboard.status_code == 200
    text = dashboard.get_data(as_text=True)
    assert "证书试点申报" in text and "第一步：完善院校基础信息" in text and 'id="password-prompt"' in text
    # A later login with the generated password asks for a new one first.
    client.post("/logout")
    assert login(client, username, password).status_code == 302
    forced = client.get("/school/", follow_redirects=True)
    assert "首次登录请先修改初始密码" in forced.get_data(as_text=True)
    weak = client.post("/password", data={"current": password, "password": "abc", "confirm": "abc"})
    assert weak.status_code == 422 and "新密码：长度须为 8–64 位" in weak.get_data(as_text=True)
    done = client.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    assert done.status_code == 302
    page = client.get("/school/").get_data(as_text=True)
    assert "第一步：完善院校基础信息" in page and 'id="password-prompt"' not in page


def test_registration_refuses_unlisted_school_with_officer_contact_and_keeps_input(app, client):
    with_demo(app)
    page = _register(client, app, name="不存在的职业学院", phone="13712345678")
    html = page.get_data(as_text=True)
    assert page.status_code == 422
    assert "不在广东省的教育部院校名单中" in html and "李老师" in html
    assert 'value="不存在的职业学院"' in html and 'value="13712345678"' in html


def test_registration_refuses_bad_phone_and_already_registered_school(app, client):
    with_demo(app)
    bad = _register(client, app, phone="1234")
    assert bad.status_code == 422 and "手机号：请输入 11 位中国大陆手机号" in bad.get_data(as_text=True)
    assert _register(client, app).status_code == 200
    again = _register(client, app, phone="13799998888")
    assert again.status_code == 422 and "已注册，请直接登录" in again.get_data(as_text=True)
    with app.app_context():  # one code and one account message: the refused attempts texted nothing
        assert sorted(m.template for m in db.session.scalars(select(SmsMessage))) == ["account_issued",
                                                                                      "registration_code"]


def test_registration_is_rate_limited_per_phone(app, client):
    with_demo(app)
    app.config["XPILOT"].sms_limit_per_phone = (1, 3600)
    app.config["XPILOT"].registration_code_gap = 0  # the minute between two codes is tested on its own
    assert _register(client, app, name="岭南交通职业技术学院").status_code == 200
    limited = client.post("/register", data={"province": "440000", "city": "440300", "action": "send_code",
                                             "school": "鹏城智能制造职业技术学院", "phone": "13712345678"})
    assert limited.status_code == 429 and "过于频繁" in limited.get_data(as_text=True)


def test_declaration_draft_submit_reject_resubmit_approve(app, client):
    with_demo(app)
    assert login(client, "zjxx_weekly").status_code == 302
    dashboard = client.get("/school/").get_data(as_text=True)
    assert "证书试点申报" in dashboard and "2026年广东省1+X证书试点申报" in dashboard
    # Flow 二 goes straight to the form; the basic information it still lacks is asked there.
    form_page = client.get("/school/declarations/new")
    assert form_page.status_code == 200 and "只需补充以下" in form_page.get_data(as_text=True)
    assert complete_info(client).status_code == 302
    assert "只需补充以下" not in client.get("/school/declarations/new").get_data(as_text=True)
    # Save a draft, edit it, then submit.
    saved = client.post("/school/declarations/new", data={**declaration_form(app), "action": "save"})
    assert saved.status_code == 302
    decl = _declaration(app)
    assert decl.status == "草稿"
    edited = client.post(f"/school/declarations/{decl.id}/edit",
                         data={**declaration_form(app, trainee_count="80"), "action": "save"})
    assert edited.status_code == 302 and _declaration(app).trainee_count == 80
    submitted = client.post(f"/school/declarations/{decl.id}/edit",
                            data={**declaration_form(app, trainee_count="90"), "action": "submit"})
    assert submitted.status_code == 302 and _declaration(app).status == "待审核"
    # Locked on the server: no edit, no delete, no second submit.
    assert client.get(f"/school/declarations/{decl.id}/edit").status_code == 403
    assert client.post(f"/school/declarations/{decl.id}/edit",
                       data={**declaration_form(app), "action": "submit"}).status_code == 403
    assert client.post(f"/school/declarations/{decl.id}/delete").status_code == 403
    assert _declaration(app).trainee_count == 90
    # Reviewer rejects with a comment; the comment is required.
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert "岭南" not in reviewer.get("/review/").get_data(as_text=True)
    assert "珠江信息职业学院" in reviewer.get("/review/").get_data(as_text=True)
    missing = reviewer.post(f"/review/declarations/{decl.id}", data={"decision": "reject"})
    assert missing.status_code == 422 and "审核意见：必填" in missing.get_data(as_text=True)
    assert reviewer.post(f"/review/declarations/{decl.id}",
                         data={"decision": "reject", "comment": "师资证书情况不详，请补充"}).status_code == 302
    run_jobs(app)
    decl = _declaration(app)
    assert decl.status == "审核不通过"
    page = client.get(f"/school/declarations/{decl.id}").get_data(as_text=True)
    assert "师资证书情况不详，请补充" in page and "审核不通过" in page
    # Edit and resubmit, then approve.
    assert client.post(f"/school/declarations/{decl.id}/edit",
                       data={**declaration_form(app, majors=["510201"]), "action": "submit"}).status_code == 302
    decl = _declaration(app)
    assert decl.status == "待审核" and decl.majors == ["510201"]
    assert reviewer.post(f"/review/declarations/{decl.id}", data={"decision": "approve"}).status_code == 302
    second = reviewer.post(f"/review/declarations/{decl.id}", data={"decision": "reject", "comment": "再次审核"})
    assert second.status_code == 403 and "没有等待省级审核" in second.get_data(as_text=True)
    run_jobs(app)
    assert _declaration(app).status == "审核通过"
    with app.app_context():
        bodies = [m.body for m in db.session.scalars(select(SmsMessage).where(SmsMessage.phone == "13800138002"))]
        statuses = {m.status for m in db.session.scalars(select(SmsMessage))}
    assert any("审核不通过" in b and "师资证书情况不详" in b for b in bodies)
    assert any("审核通过" in b for b in bodies)
    assert statuses == {"sent"}
    history = client.get(f"/school/declarations/{decl.id}").get_data(as_text=True)
    assert history.count("提交审核") >= 2


def test_declaration_form_keeps_input_and_names_fields_on_errors(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    bad = client.post("/school/declarations/new", data={**declaration_form(app, trainee_count="0", teachers="少"),
                                                         "majors": [], "action": "submit"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "培训人数：不能小于 1" in html and "师资情况：至少 10 个字" in html and "拟申请专业：请至少选择一项" in html
    assert "少</textarea>" in html
    with app.app_context():
        assert db.session.scalars(select(Declaration)).all() == []
        assert db.session.scalars(select(ProcessInstance).where(ProcessInstance.process_key == "declaration")).all() == []


def test_same_certificate_and_level_cannot_be_declared_twice(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    assert client.post("/school/declarations/new", data={**declaration_form(app), "action": "save"}).status_code == 302
    dup = client.post("/school/declarations/new", data={**declaration_form(app), "action": "save"})
    assert dup.status_code == 422 and "同一证书同一等级不能重复申报" in dup.get_data(as_text=True)
    other_level = client.post("/school/declarations/new", data={**declaration_form(app, level="高级"), "action": "save"})
    assert other_level.status_code == 302


def test_two_tabs_declaring_the_same_certificate_at_once_give_one_declaration_and_a_clear_message(app):
    from tests.test_concurrency import _race

    with_demo(app)
    first, second = app.test_client(), app.test_client()
    login(first, "zjxx_weekly")
    login(second, "zjxx_weekly")
    complete_info(first)
    form = {**declaration_form(app), "teachers": "两个标签页同时提交的师资情况说明文字", "action": "submit"}
    results = _race(app, [lambda: first.post("/school/declarations/new", data=form),
                          lambda: second.post("/school/declarations/new", data=form)])
    assert sorted(r.status_code for r in results) == [302, 422], [r.status_code for r in results]
    refused = next(r for r in results if r.status_code == 422).get_data(as_text=True)
    assert "同一证书同一等级不能重复申报" in refused and "两个标签页同时提交的师资情况说明文字" in refused
    with app.app_context():
        assert len(db.session.scalars(select(Declaration)).all()) == 1
        assert len(db.session.scalars(select(ProcessInstance).where(
            ProcessInstance.process_key == "declaration")).all()) == 1


def test_draft_can_be_deleted(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    client.post("/school/declarations/new", data={**declaration_form(app), "action": "save"})
    decl = _declaration(app)
    assert client.post(f"/school/declarations/{decl.id}/delete").status_code == 302
    assert _declaration(app) is None


def test_declaring_outside_the_window_says_why(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    clock.move(timedelta(days=40))
    closed = client.get("/school/declarations/new")
    assert closed.status_code == 403 and "申报已截止" in closed.get_data(as_text=True)
    posted = client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    assert posted.status_code == 403


def test_province_without_plan_is_told_no_plan_is_published(app, client):
    with_demo(app)
    _register(client, app)
    with app.app_context():
        from app.accounts.models import User
        u = db.session.scalars(select(User).where(User.username == "9144010001")).one()
        u.province_code = "510000"
    # A Sichuan school: no plan there.
    client2 = app.test_client()
    with app.app_context():
        from app.accounts.registration import issue_account
        from app.accounts.services import generate_password
        from app.masterdata.models import School
        school = db.session.scalars(select(School).where(School.name == "天府数字职业技术学院")).one()
        result = issue_account(db.session(), school, "13912340000", origin="registered")
        u = db.session.get(User, result.user_id)
        u.must_change_password = False
        db.session.commit()
        password = result.password
    assert generate_password
    login(client2, result.username, password)
    html = client2.get("/school/").get_data(as_text=True)
    assert "本省尚未发布证书申报计划" in html


def test_reviewer_of_another_province_cannot_open_a_declaration(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    decl = _declaration(app)
    other = app.test_client()
    login(other, "js_reviewer")
    assert "珠江信息职业学院" not in other.get("/review/").get_data(as_text=True)
    assert other.get(f"/review/declarations/{decl.id}").status_code == 404
    assert other.post(f"/review/declarations/{decl.id}", data={"decision": "approve"}).status_code == 404
    assert _declaration(app).status == "待审核"
    # A school cannot open another school's declaration either.
    assert user(app, "zjxx_weekly")


def test_registration_takes_a_partial_name_of_one_listed_school_and_lists_the_choices_of_several(app, client):
    with_demo(app)
    several = _register(client, app, name="职业", phone="13712345678")
    html = several.get_data(as_text=True)
    assert several.status_code == 422 and "对应名单中的" in html and "岭南交通职业技术学院" in html
    assert "请输入更完整的名称或从列表中选择一所" in html
    one = _register(client, app, name="岭南", phone="13712345678")
    assert one.status_code == 200 and "岭南交通职业技术学院" in one.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(User).where(User.username == "9144010001")).one().phone == "13712345678"

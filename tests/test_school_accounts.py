"""School accounts managed by the province admin (/province/schools) and province officers managed by the ministry."""
from __future__ import annotations

import re

from flask import Flask
from sqlalchemy import select

from app.accounts.models import User
from app.declarations.models import Declaration
from app.extensions import db
from app.masterdata.models import School
from app.sms.models import AuditEntry, SmsMessage
from tests.conftest import password_in, run_jobs
from tests.factories import complete_info, declaration_form, login, register, school, user, with_demo

LINGNAN = "岭南交通职业技术学院"
ZHUJIANG = "珠江信息职业学院"  # the demo's legacy account zjxx_weekly, phone 13800138002


def _admin(app: Flask, username: str = "gd_admin"):
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def _audits(app: Flask, school_id: int) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.target == f"school:{school_id}")
                                       .order_by(AuditEntry.id)))


def _messages(app: Flask, phone: str) -> list[SmsMessage]:
    with app.app_context():
        return list(db.session.scalars(select(SmsMessage).where(SmsMessage.phone == phone).order_by(SmsMessage.id)))


def _register(client, name: str = LINGNAN, phone: str = "13712345678") -> str:
    page = register(client, name, phone)
    assert page.status_code == 200, page.get_data(as_text=True)
    return re.search(r'id="password">([^<]+)<', page.get_data(as_text=True)).group(1)


def test_admin_finds_any_school_of_the_province_by_name_or_code_registered_or_not(app):
    with_demo(app)
    with app.app_context():
        for i in range(25):
            db.session.add(School(code=f"88440100{i:02d}", name=f"广州测试职业学院{i:02d}", province_code="440000",
                                  city_code="440100"))
        db.session.commit()
    admin = _admin(app)
    everything = admin.get("/province/schools").get_data(as_text=True)
    assert "共 30 所院校" in everything and "第 1 / 2 页" in everything and "金陵工程职业技术学院" not in everything
    assert "广州测试职业学院24" in admin.get("/province/schools?page=2").get_data(as_text=True)
    by_code = admin.get("/province/schools?q=9144010002").get_data(as_text=True)
    assert ZHUJIANG in by_code and LINGNAN not in by_code and "共 1 所院校" in by_code
    by_name = admin.get("/province/schools?q=交通").get_data(as_text=True)
    assert LINGNAN in by_name and ZHUJIANG not in by_name
    registered = admin.get("/province/schools?registered=registered").get_data(as_text=True)
    assert ZHUJIANG in registered and "共 1 所院校" in registered
    assert "138****8002" in registered and "13800138002" not in registered  # masked in the list
    unregistered = admin.get("/province/schools?registered=unregistered&q=职业技术").get_data(as_text=True)
    assert LINGNAN in unregistered and ZHUJIANG not in unregistered
    assert "没有符合条件的院校" in admin.get("/province/schools?q=%25").get_data(as_text=True)  # % is literal


def test_school_page_shows_account_origin_last_login_and_declarations(app):
    with_demo(app)
    zj = school(app, ZHUJIANG)
    admin = _admin(app)
    page = admin.get(f"/province/schools/{zj.id}").get_data(as_text=True)
    assert "zjxx_weekly" in page and "13800138002" in page and "周报账号升级" in page and "从未登录" in page
    client = app.test_client()
    login(client, "zjxx_weekly")
    complete_info(client)
    client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    page = admin.get(f"/province/schools/{zj.id}").get_data(as_text=True)
    assert "从未登录" not in page and "Web前端开发职业技能等级证书" in page and "待审核" in page
    unregistered = admin.get(f"/province/schools/{school(app, LINGNAN).id}").get_data(as_text=True)
    assert "该院校尚未注册" in unregistered and "开通账号" in unregistered


def test_issuing_an_account_sends_a_generated_password_by_sms_and_is_recorded(app, texts_received):
    with_demo(app)
    ln = school(app, LINGNAN)
    admin = _admin(app)
    bad = admin.post(f"/province/schools/{ln.id}/issue", data={"phone": "12345"})
    assert bad.status_code == 422 and "手机号：请输入 11 位中国大陆手机号" in bad.get_data(as_text=True)
    assert admin.post(f"/province/schools/{ln.id}/issue", data={"phone": "13711112222"}).status_code == 302
    account = user(app, ln.code)
    assert account.origin == "province" and account.must_change_password and account.phone == "13711112222"
    [message] = _messages(app, "13711112222")
    assert message.template == "account_issued" and message.status == "queued"
    run_jobs(app)
    [message] = _messages(app, "13711112222")
    assert message.status == "sent"
    password = password_in(texts_received["13711112222"][0])
    assert password not in admin.get(f"/province/schools/{ln.id}").get_data(as_text=True)  # the SMS is the only copy
    school_client = app.test_client()
    assert login(school_client, ln.code, password).status_code == 302
    [entry] = _audits(app, ln.id)
    assert entry.action == "issue_account" and entry.actor_id == user(app, "gd_admin").id and entry.at is not None
    page = admin.get(f"/province/schools/{ln.id}").get_data(as_text=True)
    assert "开通账号" in page and "gd_admin" in page and "137****2222" in page
    again = admin.post(f"/province/schools/{ln.id}/issue", data={"phone": "13711112222"})
    assert again.status_code == 403 and "已有账号" in again.get_data(as_text=True)


def test_reset_password_texts_a_new_one_and_ends_old_sessions(app):
    with_demo(app)
    zj = school(app, ZHUJIANG)
    school_client = app.test_client()
    login(school_client, "zjxx_weekly")
    assert school_client.get("/school/").status_code == 200
    admin = _admin(app)
    assert admin.post(f"/province/schools/{zj.id}/reset").status_code == 302
    [message] = _messages(app, "13800138002")
    assert message.template == "account_reset" and "新密码" in message.body
    run_jobs(app)
    assert _messages(app, "13800138002")[0].status == "sent"
    assert school_client.get("/school/").status_code == 302  # the old session has ended
    assert login(app.test_client(), "zjxx_weekly").status_code != 302  # the old password no longer works
    fresh = app.test_client()
    assert login(fresh, "zjxx_weekly", message.params["password"]).status_code == 302
    assert "首次登录请先修改初始密码" in fresh.get("/school/", follow_redirects=True).get_data(as_text=True)
    [entry] = _audits(app, zj.id)
    assert entry.action == "reset_password" and "138****8002" in entry.detail and "gd_admin" in entry.detail


def test_correcting_the_phone_is_validated_recorded_and_used_for_review_results(app):
    with_demo(app)
    zj = school(app, ZHUJIANG)
    client = app.test_client()
    login(client, "zjxx_weekly")
    complete_info(client)
    client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    admin = _admin(app)
    bad = admin.post(f"/province/schools/{zj.id}/phone", data={"phone": "1380013800"})
    assert bad.status_code == 422 and "11 位中国大陆手机号" in bad.get_data(as_text=True)
    same = admin.post(f"/province/schools/{zj.id}/phone", data={"phone": "13800138002"})
    assert same.status_code == 422 and "与当前登记的手机号相同" in same.get_data(as_text=True)
    assert admin.post(f"/province/schools/{zj.id}/phone", data={"phone": "13900009999"}).status_code == 302
    assert user(app, "zjxx_weekly").phone == "13900009999"
    [entry] = _audits(app, zj.id)
    assert entry.action == "correct_phone" and "138****8002 → 139****9999" in entry.detail
    # The declaration submitted before the correction texts its review result to the new number.
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id)).one()
    reviewer.post(f"/review/declarations/{decl_id}", data={"decision": "reject", "comment": "师资情况不够具体"})
    run_jobs(app)
    assert [m.template for m in _messages(app, "13900009999")] == ["review_rejected"]
    assert not [m for m in _messages(app, "13800138002") if m.template == "review_rejected"]


def test_release_refuses_a_school_with_submitted_declarations(app):
    with_demo(app)
    zj = school(app, ZHUJIANG)
    client = app.test_client()
    login(client, "zjxx_weekly")
    complete_info(client)
    client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    admin = _admin(app)
    refused = admin.post(f"/province/schools/{zj.id}/release", data={"reason": "非本校人员注册"})
    assert refused.status_code == 403 and "已有 1 条申报提交过审核，不能解除注册" in refused.get_data(as_text=True)
    assert user(app, "zjxx_weekly").school_id == zj.id and _audits(app, zj.id) == []


def test_release_lets_the_school_register_again_and_drops_the_wrong_registrants_drafts(app):
    with_demo(app)
    ln = school(app, LINGNAN)
    wrong = app.test_client()
    password = _register(wrong, phone="13712345678")
    login(wrong, ln.code, password)
    wrong.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    complete_info(wrong)
    wrong.post("/school/declarations/new", data={**declaration_form(app), "action": "save"})
    with app.app_context():
        assert db.session.scalars(select(Declaration).where(Declaration.school_id == ln.id)).one().status == "草稿"
    admin = _admin(app)
    no_reason = admin.post(f"/province/schools/{ln.id}/release", data={"reason": ""})
    assert no_reason.status_code == 422 and "解除原因：必填" in no_reason.get_data(as_text=True)
    assert admin.post(f"/province/schools/{ln.id}/release", data={"reason": "其他学校误选本校注册"}).status_code == 302
    assert wrong.get("/school/").status_code == 302  # the wrong registrant is logged out for good
    with app.app_context():
        assert db.session.scalars(select(Declaration).where(Declaration.school_id == ln.id)).all() == []
        released = db.session.scalars(select(User).where(User.phone == "13712345678")).one()
        assert not released.is_active_account and released.school_id is None
        assert db.session.get(School, ln.id).info_completed_at is None
    [entry] = [e for e in _audits(app, ln.id) if e.action != "activate_account"]  # the process opened it
    assert entry.action == "release_account" and "删除未提交的草稿 1 条" in entry.detail and "其他学校误选本校注册" in entry.detail
    # The rightful school registers with its own phone and gets the school code as its account again.
    right = app.test_client()
    password = _register(right, phone="13755556666")
    assert login(right, ln.code, password).status_code == 302
    page = admin.get(f"/province/schools/{ln.id}").get_data(as_text=True)
    assert "13755556666" in page and "院校自行注册" in page and "解除注册" in page and "其他学校误选本校注册" in page


def test_sms_sending_actions_are_rate_limited(app):
    with_demo(app)
    app.config["XPILOT"].sms_staff_limit_per_phone = (2, 3600)
    zj = school(app, ZHUJIANG)
    admin = _admin(app)
    assert admin.post(f"/province/schools/{zj.id}/reset").status_code == 302
    assert admin.post(f"/province/schools/{zj.id}/reset").status_code == 302
    third = admin.post(f"/province/schools/{zj.id}/reset")
    assert third.status_code == 429 and "该手机号接收短信过于频繁" in third.get_data(as_text=True)
    assert len(_messages(app, "13800138002")) == 2 and len(_audits(app, zj.id)) == 2
    # Phone corrections send nothing and are not limited.
    assert admin.post(f"/province/schools/{zj.id}/phone", data={"phone": "13900009999"}).status_code == 302


def test_a_refused_registration_uses_none_of_the_phones_text_quota(app):
    with_demo(app)
    app.config["XPILOT"].sms_limit_per_phone = (1, 3600)
    client = app.test_client()
    taken = register(client, ZHUJIANG, "13712345678")
    assert taken.status_code == 422 and "已注册" in taken.get_data(as_text=True)
    assert _register(client, LINGNAN, "13712345678")
    assert [m.template for m in _messages(app, "13712345678")] == ["registration_code", "account_issued"]


def test_an_officers_reset_works_after_self_service_used_up_the_phones_quota(app):
    with_demo(app)
    app.config["XPILOT"].sms_limit_per_phone = (1, 3600)
    app.config["XPILOT"].registration_code_gap = 0
    client = app.test_client()
    _register(client, LINGNAN, "13712345678")
    again = register(client, "鹏城智能制造职业技术学院", "13712345678", city="440300")
    assert again.status_code == 429 and "该手机号接收短信过于频繁" in again.get_data(as_text=True)
    reset = _admin(app).post(f"/province/schools/{school(app, LINGNAN).id}/reset")
    assert reset.status_code == 302
    assert [m.template for m in _messages(app, "13712345678")] == ["registration_code", "account_issued",
                                                                   "account_reset"]


def test_school_accounts_are_scoped_to_the_admins_province(app):
    with_demo(app)
    zj = school(app, ZHUJIANG)
    other = _admin(app, "js_admin")
    listing = other.get("/province/schools").get_data(as_text=True)
    assert ZHUJIANG not in listing and "金陵工程职业技术学院" in listing
    assert ZHUJIANG not in other.get("/province/schools?q=9144010002").get_data(as_text=True)
    assert other.get(f"/province/schools/{zj.id}").status_code == 404
    assert other.post(f"/province/schools/{zj.id}/reset").status_code == 404
    assert other.post(f"/province/schools/{zj.id}/phone", data={"phone": "13900009999"}).status_code == 404
    assert other.post(f"/province/schools/{zj.id}/release", data={"reason": "冒用"}).status_code == 404
    assert other.post(f"/province/schools/{school(app, LINGNAN).id}/issue", data={"phone": "13900009999"}).status_code == 404
    assert _messages(app, "13800138002") == [] and user(app, "zjxx_weekly").phone == "13800138002"
    for username in ("gd_reviewer", "ministry", "zjxx_weekly"):
        client = app.test_client()
        login(client, username)
        assert client.get("/province/schools").status_code == 403
        assert client.post(f"/province/schools/{zj.id}/reset").status_code == 403


def test_ministry_creates_a_province_officer_whose_password_is_shown_once(app):
    with_demo(app)
    ministry = _admin(app, "ministry")
    bad = ministry.post("/ministry/staff", data={"role": "province_reviewer", "username": "gd_admin",
                                                 "display_name": "张", "phone": "123", "province_code": "999999"})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422 and "账号：gd_admin 已被使用" in html and "手机号：请输入 11 位" in html
    assert "所属省份：请选择省份" in html and "姓名/单位：2–64 个字" in html
    made = ministry.post("/ministry/staff", data={"role": "province_reviewer", "username": "gd_reviewer2",
                                                  "display_name": "广东省教育厅审核员二", "phone": "13600001111",
                                                  "province_code": "440000"})
    assert made.status_code == 200 and made.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', made.get_data(as_text=True)).group(1)
    assert "new-password" not in ministry.get("/ministry/staff").get_data(as_text=True)
    created = user(app, "gd_reviewer2")
    assert created.role == "province_reviewer" and created.province_code == "440000" and created.must_change_password
    assert created.check_password(password) and len(password) >= 10
    officer = app.test_client()
    assert login(officer, "gd_reviewer2", password).status_code == 302
    assert "首次登录请先修改初始密码" in officer.get("/review/", follow_redirects=True).get_data(as_text=True)
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.target == f"user:{created.id}")).one()
        assert entry.action == "create_staff" and entry.actor_id == user(app, "ministry").id
        assert password not in entry.detail
    assert "新建省级审核员账号 gd_reviewer2" in ministry.get("/ministry/staff").get_data(as_text=True)


def test_ministry_deactivates_reactivates_and_resets_province_officers(app):
    with_demo(app)
    ministry = _admin(app, "ministry")
    officer = app.test_client()
    login(officer, "gd_reviewer")
    assert officer.get("/review/").status_code == 200
    target = user(app, "gd_reviewer")
    assert ministry.post(f"/ministry/staff/{target.id}/deactivate").status_code == 302
    assert officer.get("/review/").status_code == 302  # its session has ended
    assert login(app.test_client(), "gd_reviewer").status_code != 302
    listing = ministry.get("/ministry/staff?province=440000").get_data(as_text=True)
    assert "已停用" in listing and "js_reviewer" not in listing
    assert ministry.post(f"/ministry/staff/{target.id}/reactivate").status_code == 302
    assert login(app.test_client(), "gd_reviewer").status_code == 302
    reset = ministry.post(f"/ministry/staff/{target.id}/reset")
    password = re.search(r'id="new-password">([^<]+)<', reset.get_data(as_text=True)).group(1)
    assert login(app.test_client(), "gd_reviewer").status_code != 302
    assert login(app.test_client(), "gd_reviewer", password).status_code == 302
    assert user(app, "gd_reviewer").must_change_password
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEntry.action).where(AuditEntry.target == f"user:{target.id}")
                                          .order_by(AuditEntry.id)))
    assert actions == ["deactivate_staff", "reactivate_staff", "reset_staff_password"]
    # Only province officers are managed here, and only by the ministry.
    assert ministry.post(f"/ministry/staff/{user(app, 'analyst').id}/deactivate").status_code == 404
    gd_admin = _admin(app)
    assert gd_admin.get("/ministry/staff").status_code == 403
    assert gd_admin.post(f"/ministry/staff/{target.id}/deactivate").status_code == 403


def test_account_forms_carry_a_csrf_token(app):
    with_demo(app)
    app.config["WTF_CSRF_ENABLED"] = True
    zj = school(app, ZHUJIANG)
    admin = app.test_client()
    page = admin.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    admin.post("/login", data={"username": "gd_admin", "password": "demo2026pilot", "csrf_token": token})
    page = admin.get(f"/province/schools/{zj.id}").get_data(as_text=True)
    assert page.count('name="csrf_token"') >= 4  # reset, phone, release, logout
    assert admin.post(f"/province/schools/{zj.id}/reset").status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert admin.post(f"/province/schools/{zj.id}/reset", data={"csrf_token": token}).status_code == 302
    ministry = app.test_client()
    token = re.search(r'name="csrf_token" value="([^"]+)"', ministry.get("/login").get_data(as_text=True)).group(1)
    ministry.post("/login", data={"username": "ministry", "password": "demo2026pilot", "csrf_token": token})
    staff_page = ministry.get("/ministry/staff").get_data(as_text=True)
    assert staff_page.count('name="csrf_token"') >= 14  # two per officer row, the new-account form, logout
    assert ministry.post(f"/ministry/staff/{user(app, 'gd_reviewer').id}/deactivate").status_code == 400
    assert user(app, "gd_reviewer").is_active_account

"""The school's pages say where it stands: drafts as the guide says, the next step, wording true to each status,
pilot status as soon as the declaration time has ended, and error pages that say what to do."""
from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select

from app import clock
from app.declarations.models import Declaration
from app.extensions import db
from app.masterdata.models import School
from app.plans import closure
from app.plans.models import DeclarationPlan
from tests.factories import certificate_id, complete_info, declaration_form, login, register, with_demo


def _only_declaration(app: Flask) -> Declaration:
    with app.app_context():
        return db.session.scalars(select(Declaration)).one()


def _plan(app: Flask, plan_id: int) -> DeclarationPlan:
    with app.app_context():
        return db.session.get(DeclarationPlan, plan_id)


def _close(app: Flask, plan_id: int) -> None:
    """The declaration time ends (the plan's timer would do this at 申报截止时间)."""
    clock.move(_plan(app, plan_id).ends_at - clock.now() + timedelta(seconds=5))
    with app.app_context():
        closure.close_plan(db.session(), plan_id)
        db.session.commit()


def _school_declares(app: Flask, client, *declarations: tuple[str, str]) -> None:
    """zjxx_weekly completes 基础信息 and posts one declaration per (level, action)."""
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    for level, action in declarations:
        assert client.post("/school/declarations/new",
                           data={**declaration_form(app, level=level), "action": action}).status_code == 302


def _result_card(client, plan_id: int) -> str:
    return client.get("/school/").get_data(as_text=True).split(f'id="pilot-result-{plan_id}"')[1].split("</div>")[0]


def _approve(app: Flask, decl_id: int) -> None:
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert reviewer.post(f"/review/declarations/{decl_id}", data={"decision": "approve"}).status_code == 302


def test_a_draft_needs_only_certificate_and_level_and_submit_checks_everything(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    draft = {"certificate_id": str(certificate_id(app)), "level": "中级", "action": "save"}
    assert client.post("/school/declarations/new", data=draft).status_code == 302
    decl = _only_declaration(app)
    assert decl.status == "草稿" and decl.trainee_count == 0 and decl.teachers == "" and decl.majors == []
    detail = client.get(f"/school/declarations/{decl.id}").get_data(as_text=True)
    assert "未填写" in detail
    edit = client.get(f"/school/declarations/{decl.id}/edit").get_data(as_text=True)
    assert 'name="trainee_count" value=""' in edit  # a blank field stays blank, not "0"
    # 提交审核 checks every required field, naming each.
    refused = client.post(f"/school/declarations/{decl.id}/edit", data={**draft, "action": "submit"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422
    for message in ("拟申请专业：请至少选择一项", "培训人数：必填", "师资情况：必填", "场地情况：必填"):
        assert message in html
    assert _only_declaration(app).status == "草稿"
    assert client.post(f"/school/declarations/{decl.id}/edit",
                       data={**declaration_form(app), "action": "submit"}).status_code == 302
    assert _only_declaration(app).status == "待审核"


def test_a_draft_is_still_checked_for_type_and_limits(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    complete_info(client)
    base = {"certificate_id": str(certificate_id(app)), "action": "save"}
    no_level = client.post("/school/declarations/new", data=base)
    assert no_level.status_code == 422 and "证书等级：必填" in no_level.get_data(as_text=True)
    bad = client.post("/school/declarations/new", data={**base, "level": "中级", "trainee_count": "六十",
                                                         "teachers": "长" * 2001})
    html = bad.get_data(as_text=True)
    assert bad.status_code == 422
    assert "培训人数：请输入整数" in html and "师资情况：不能超过 2000 个字" in html
    assert "提交的信息有 2 处需要修改" in html and 'value="六十"' in html
    with app.app_context():
        assert db.session.scalars(select(Declaration)).all() == []


def test_a_returning_school_declares_at_once_and_is_asked_only_what_is_missing(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    home = client.get("/school/").get_data(as_text=True)
    # Flow 二: one next step, the guide's 【申报证书试点】; no separate 第一步 and no greyed button.
    assert 'class="btn" href="/school/declarations/new">申报证书试点</a>' in home
    assert "申请新的证书试点" not in home and "disabled" not in home
    page = client.get("/school/declarations/new").get_data(as_text=True)
    assert "只需补充以下" in page
    # Known from the Ministry list (办学层次) and the weekly-report account (联系电话): not asked.
    assert 'name="education_level"' not in page and 'name="contact_phone"' not in page
    for asked in ('name="ownership"', 'name="contact_name"', 'name="address"'):
        assert asked in page
    # Submitting without them names them, and nothing is half-saved.
    missing = client.post("/school/declarations/new", data={**declaration_form(app), "action": "submit"})
    assert missing.status_code == 422 and "联系人：必填" in missing.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Declaration)).all() == []
        assert db.session.scalars(select(School).where(School.code == "9144010002")).one().info_completed_at is None
    done = client.post("/school/declarations/new", data={
        **declaration_form(app), "ownership": "公办", "contact_name": "陈老师", "address": "广州市天河区示范路 1 号",
        "action": "submit"})
    assert done.status_code == 302 and _only_declaration(app).status == "待审核"
    with app.app_context():
        school = db.session.scalars(select(School).where(School.code == "9144010002")).one()
        assert school.info_completed_at is not None and school.contact_phone == "13800138002"
        assert school.education_level == "高职专科" and school.contact_name == "陈老师"
    assert "只需补充以下" not in client.get("/school/declarations/new").get_data(as_text=True)
    # Once complete, declaring again leaves the school's information as it is.
    completed_at = school.info_completed_at
    clock.move(timedelta(minutes=5))
    assert client.post("/school/declarations/new",
                       data={**declaration_form(app, level="高级"), "action": "save"}).status_code == 302
    with app.app_context():
        again = db.session.scalars(select(School).where(School.code == "9144010002")).one()
        assert again.info_completed_at == completed_at


def test_a_new_school_sees_step_one_as_its_next_step_then_step_two(app, client):
    with_demo(app)
    page = register(client, "岭南交通职业技术学院", "13712345678").get_data(as_text=True)
    password = page.split('id="password">')[1].split("<")[0]
    login(client, "9144010001", password)
    client.post("/password", data={"current": password, "password": "newpass2026", "confirm": "newpass2026"})
    home = client.get("/school/").get_data(as_text=True)
    assert 'class="btn" href="/school/info">完善院校基础信息</a>' in home
    assert "disabled" not in home and 'href="/school/declarations/new"' not in home
    complete_info(client)
    home = client.get("/school/").get_data(as_text=True)
    assert 'class="btn" href="/school/declarations/new">申请新的证书试点</a>' in home
    assert home.count('href="/school/declarations/new"') == 1
    assert 'class="btn secondary" href="/school/info">修改院校基础信息</a>' in home


def test_todo_names_the_certificate(app, client):
    _school_declares(app, client, ("中级", "save"))
    home = client.get("/school/").get_data(as_text=True)
    todo = home.split('id="todo"')[1].split("</div>")[0]
    assert "Web前端开发职业技能等级证书（中级）" in todo and "草稿" in todo


def test_an_expired_draft_is_neither_submitted_nor_counted_as_not_approved(app, client):
    _school_declares(app, client, ("中级", "save"))
    decl = _only_declaration(app)
    _close(app, decl.plan_id)
    assert _only_declaration(app).status == "已过期"
    detail = client.get(f"/school/declarations/{decl.id}").get_data(as_text=True)
    assert "已提交审核" not in detail and "申报截止时仍未提交审核，已过期" in detail
    refused = client.get(f"/school/declarations/{decl.id}/edit").get_data(as_text=True)
    assert "已提交审核" not in refused and "已过期" in refused
    with app.app_context():
        closure.compute_results(db.session(), decl.plan_id)
        db.session.commit()
    result = _result_card(client, decl.plan_id)
    assert "未成为试点院校" in result and "均未通过审核" not in result
    assert "没有提交审核的申报" in result and "1 份草稿在申报截止时仍未提交审核，已过期" in result


def test_a_school_is_a_pilot_once_the_declaration_time_ended_with_an_approval(app, client):
    _school_declares(app, client, ("中级", "submit"), ("高级", "submit"))
    with app.app_context():
        first, second = db.session.scalars(select(Declaration).order_by(Declaration.id)).all()
        plan_id = first.plan_id
    _approve(app, first.id)
    # Still inside the declaration time: not yet a pilot school.
    assert "试点院校</span>" not in client.get("/school/").get_data(as_text=True)
    _close(app, plan_id)
    assert _plan(app, plan_id).results_at is None  # before the review deadline
    result = _result_card(client, plan_id)
    assert "试点院校" in result and "Web前端开发职业技能等级证书（中级）" in result and "另有 1 个证书仍在审核中" in result
    # A later approval before the review deadline adds to it at once.
    _approve(app, second.id)
    result = _result_card(client, plan_id)
    assert "有 2 个通过审核" in result and "仍在审核中" not in result


def test_pending_review_after_the_deadline_is_said_as_such(app, client):
    _school_declares(app, client, ("中级", "submit"))
    decl = _only_declaration(app)
    _close(app, decl.plan_id)
    result = _result_card(client, decl.plan_id)
    assert "审核中" in result and "未成为试点院校" not in result


def test_not_found_and_forbidden_pages_say_why_what_to_do_and_whom_to_contact(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    missing = client.get("/school/declarations/999999")
    html = missing.get_data(as_text=True)
    assert missing.status_code == 404
    assert "申报不存在" in html and "您可以这样做" in html and "从页面顶部的菜单重新进入" in html
    with app.app_context():
        plan = db.session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == "440000")).first()
        from app.masterdata.models import Division
        province = db.session.get(Division, "440000")
        officer = province.officer_name or ""
    assert plan is not None and "仍有疑问，请联系：广东省" in html and officer in html
    forbidden = client.get("/review/")
    page = forbidden.get_data(as_text=True)
    assert forbidden.status_code == 403 and "无权" in page and "仍有疑问，请联系：广东省" in page
    anonymous = app.test_client().get("/no-such-page")
    text = anonymous.get_data(as_text=True)
    assert anonymous.status_code == 404 and "请先登录" in text and "省级教育行政部门" in text


def test_a_format_error_says_the_expected_format(app, client):
    with_demo(app)
    login(client, "zjxx_weekly")
    bad = client.post("/school/info", data={"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师",
                                            "contact_phone": "12345", "address": "广州市天河区示范路 1 号"})
    assert bad.status_code == 422
    assert "联系电话：格式不正确，应为11 位手机号或带区号的固定电话" in bad.get_data(as_text=True)


def test_an_expired_form_token_keeps_the_form_reachable_and_a_lost_login_says_nothing_was_lost(app, client):
    with_demo(app)
    app.config["WTF_CSRF_ENABLED"] = True
    login_page = client.get("/login").get_data(as_text=True)
    token = login_page.split('name="csrf_token" value="')[1].split('"')[0]
    client.post("/login", data={"username": "zjxx_weekly", "password": "demo2026pilot", "csrf_token": token})
    stale = client.post("/school/declarations/new", data={**declaration_form(app), "csrf_token": "stale"})
    html = stale.get_data(as_text=True)
    assert stale.status_code == 400 and 'href="/school/declarations/new" id="back-to-form"' in html
    assert "已保留在本浏览器中" in html
    anonymous = app.test_client()
    lost = anonymous.post("/school/declarations/new", data={**declaration_form(app), "csrf_token": "x"})
    assert lost.status_code == 302 and lost.headers["Location"].endswith("/login")
    assert "登录已过期" in anonymous.get("/login").get_data(as_text=True)
    with app.app_context():
        assert db.session.scalars(select(Declaration)).all() == []

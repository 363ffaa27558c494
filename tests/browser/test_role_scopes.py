"""In the browser: the analyst adds an expert role scoped to two certificates nationally and its user on the 角色 page;
the expert sees, in 我的待办, exactly the expert reviews of those two certificates in two provinces, each with its
school, certificate and plan named, and completes one with the task's form."""
from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.accounts.models import User
from app.extensions import db
from app.processes import admin as process_admin
from app.processes.services import shipped_forms
from tests.browser.test_analyst import ARTIFACTS, client_of, field, first_log_in, log_in, nav, post, status
from tests.factories import certificate_id, declaration_form, school_account
from tests.test_role_scopes import expert_review_xml

pytestmark = pytest.mark.browser
expect = pytest.importorskip("playwright.sync_api").expect

GD_SCHOOL, JS_SCHOOL = "珠江信息职业学院", "金陵工程职业技术学院"
WEB = "Web前端开发职业技能等级证书"
BIM = "建筑信息模型（BIM）职业技能等级证书"
LOGISTICS = "物流管理职业技能等级证书"


def declare(server: Any, username: str, certificate: str) -> int:
    """A school completes its info and submits a declaration of the certificate (Flask client, same database)."""
    client = client_of(server, username)
    info = {"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师",
            "contact_phone": "13900001111", "address": "示范路 1 号"}
    assert post(client, "/school/info", "/school/info", info).status_code == 302
    form = declaration_form(server.app, certificate_id=str(certificate_id(server.app, certificate)))
    response = post(client, "/school/declarations/new", "/school/declarations/new", {**form, "action": "submit"})
    assert response.status_code == 302
    with server.app.app_context():
        from app.declarations.models import Declaration
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def publish_expert_review(server: Any) -> None:
    """广东 and 江苏 publish an expert review (lane cert_expert) before their provincial review."""
    with server.app.app_context():
        session = db.session()
        analyst = session.scalars(select(User).where(User.username == "analyst")).one()
        forms = shipped_forms(server.app.config["XPILOT"].bpmn_path)
        for province in ("440000", "320000"):
            process_admin.publish(session, analyst, "declaration", expert_review_xml(), forms, province, "专家评审")
        session.commit()


def test_an_expert_of_two_certificates_completes_a_task_from_the_inbox(browsing: Any) -> None:
    server = browsing.server
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")
    nav(analyst, "角色")
    new_role = analyst.locator("#new-role")
    field(new_role, "角色代码").fill("cert_expert")
    field(new_role, "角色名称").fill("证书专家")
    field(new_role, "范围").select_option(value="certificates")
    new_role.get_by_label(WEB).check()
    new_role.get_by_label(BIM).check()
    new_role.get_by_role("button", name="新增角色").click()
    expect(analyst.get_by_text("已新增角色“证书专家”（cert_expert）")).to_be_visible()
    row = analyst.locator('tr[data-role="cert_expert"]')
    expect(row).to_contain_text("按证书")
    expect(row).to_contain_text(f"证书：{WEB}、{BIM}")
    member = analyst.locator("#new-member")
    field(member, "角色").select_option(value="cert_expert")
    field(member, "账号").fill("expert_wang")
    field(member, "姓名/单位").fill("王专家")
    member.get_by_role("button", name="新增用户").click()  # 所属省份 left empty: every province
    expect(analyst.get_by_role("heading", name="请记录账号和初始密码")).to_be_visible()
    password = analyst.locator("#new-password").inner_text().strip()

    publish_expert_review(server)
    gd_web, gd_logistics = declare(server, "zjxx_weekly", WEB), declare(server, "zjxx_weekly", LOGISTICS)
    js_user = school_account(server.app, JS_SCHOOL)
    js_bim, js_logistics = declare(server, js_user, BIM), declare(server, js_user, LOGISTICS)
    assert {status(server, d) for d in (gd_web, gd_logistics, js_bim, js_logistics)} == {"专家评审中"}

    expert = browsing.new_page("expert")
    first_log_in(expert, "expert_wang", password, "Expert2026pass")
    nav(expert, "我的待办")
    expect(expert.get_by_role("heading", name="我的待办（2）")).to_be_visible()
    rows = expert.locator("#inbox tbody tr")
    expect(rows).to_have_count(2)
    expect(expert.locator("#inbox")).not_to_contain_text(LOGISTICS)
    js_row = rows.filter(has_text=JS_SCHOOL)
    expect(js_row).to_contain_text("专家评审")
    expect(js_row).to_contain_text(f"{BIM}（中级）")
    expect(js_row).to_contain_text("2026年江苏省1+X证书试点申报（第一批）")
    expect(rows.filter(has_text=GD_SCHOOL)).to_contain_text(WEB)
    ARTIFACTS.mkdir(exist_ok=True)
    expert.screenshot(path=str(ARTIFACTS / "role-scopes-expert-inbox.png"), full_page=True)

    js_row.get_by_role("link", name="办理").click()
    expect(expert.get_by_role("heading", name=f"专家评审：{JS_SCHOOL}")).to_be_visible()
    expert.get_by_label("审核通过", exact=True).check()
    field(expert, "审核意见").fill("师资与场地符合该证书要求")
    expert.get_by_role("button", name="提交").click()
    expect(expert.get_by_text("“专家评审”已办理")).to_be_visible()
    expect(expert.get_by_role("heading", name="我的待办（1）")).to_be_visible()
    assert status(server, js_bim) == "待审核"
    assert {status(server, d) for d in (gd_web, gd_logistics, js_logistics)} == {"专家评审中"}

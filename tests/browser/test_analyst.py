"""An analyst gives 广东 a city-level first review in the browser, then takes it back.

The analyst works only through the pages: the roles page (角色) for the new role and its user, the
process pages (流程管理) to open the declaration diagram, the bpmn-js editor and its side panel, 校验
(problems, diff, dry run), publishing for 广东省, migrating waiting instances and 恢复为全国版本. Schools
declare through the Flask client (their browser flows are tests/browser/test_flows.py); the city
reviewer and the school look at their pages in the browser.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.processes.models import ProcessInstance, ProcessVersion
from tests.factories import declaration_form, school_account

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser

PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "test-artifacts"
VARIANT = PROJECT / "bpmn" / "variants" / "declaration-city-review.bpmn"
GD_SCHOOL = "珠江信息职业学院"  # 广州
NEW_NAME = "市级教育局初审"


# ---------------------------------------------------------------- helpers

def field(scope: Any, label: str) -> Any:
    """The control tied to the visible <label> with exactly this text."""
    return scope.get_by_label(re.compile(rf"^\s*{re.escape(label)}(\s*\*)?\s*$"))


def log_in(page: Any, username: str, password: str = DEMO_PASSWORD) -> None:
    page.goto("/login")
    field(page, "账号").fill(username)
    field(page, "密码").fill(password)
    page.get_by_role("button", name="登录", exact=True).click()


def nav(page: Any, label: str) -> None:
    page.locator("header nav").get_by_role("link", name=label, exact=True).click()


def accept_next_dialog(page: Any) -> None:
    page.once("dialog", lambda dialog: dialog.accept())


def diagram_ready(page: Any) -> None:
    expect(page.locator("#xp-canvas[data-ready=true]")).to_have_count(1)
    expect(page.locator("#xp-canvas .bjs-powered-by")).to_be_visible()  # the bpmn.io watermark stays (license)


def saved_xml(page: Any) -> str:
    return page.evaluate("() => window.xpModeler.saveXML({ format: true }).then(r => r.xml)")


def panel_field(page: Any, label: str) -> Any:
    return field(page.locator("#xp-panel"), label)


def post(client: Any, form_page: str, url: str, data: dict[str, Any]) -> Any:
    """POST like a browser would: with the CSRF token of the page that shows the form (CSRF is on here)."""
    page = client.get(form_page).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post(url, data={**data, "csrf_token": token})


def client_of(server: Any, username: str) -> Any:
    client = server.app.test_client()
    response = post(client, "/login", "/login", {"username": username, "password": DEMO_PASSWORD})
    assert response.status_code == 302
    return client


def add_role_with_user(page: Any, code: str, name: str, scope: str, username: str, display_name: str, *,
                       province: str, city: str | None = None) -> str:
    """On the 角色 page: add a review role (范围 province or city) and one user for it; return the initial password."""
    nav(page, "角色")
    new_role = page.locator("#new-role")
    field(new_role, "角色代码").fill(code)
    field(new_role, "角色名称").fill(name)
    field(new_role, "范围").select_option(value=scope)
    new_role.get_by_role("button", name="新增角色").click()
    expect(page.get_by_text(f"已新增角色“{name}”（{code}）")).to_be_visible()
    member = page.locator("#new-member")
    field(member, "角色").select_option(value=code)
    field(member, "所属省份").select_option(label=province)
    if city is not None:
        field(member, "所属城市").select_option(label=city)
    field(member, "账号").fill(username)
    field(member, "姓名/单位").fill(display_name)
    member.get_by_role("button", name="新增用户").click()
    expect(page.get_by_role("heading", name="请记录账号和初始密码")).to_be_visible()
    return page.locator("#new-password").inner_text().strip()


def first_log_in(page: Any, username: str, password: str, new_password: str) -> None:
    """Log in with an issued password and change it, as the first login requires."""
    log_in(page, username, password)
    field(page, "当前密码").fill(password)
    field(page, "新密码").fill(new_password)
    field(page, "确认新密码").fill(new_password)
    page.get_by_role("button", name="保存新密码").click()


def declare(server: Any, username: str, level: str, action: str = "submit") -> int:
    """A school declares through the Flask client against the same app and database."""
    client = client_of(server, username)
    info = {"education_level": "高职专科", "ownership": "公办", "contact_name": "陈老师",
            "contact_phone": "13900001111", "address": "广州市天河区示范路 1 号"}
    assert post(client, "/school/info", "/school/info", info).status_code == 302
    response = post(client, "/school/declarations/new", "/school/declarations/new",
                    {**declaration_form(server.app, level=level), "action": action})
    assert response.status_code == 302
    with server.app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def province_review(server: Any, declaration_id: int) -> None:
    client = client_of(server, "gd_reviewer")
    url = f"/review/declarations/{declaration_id}"
    assert post(client, url, url, {"decision": "approve"}).status_code == 302
    server.run_jobs()


def status(server: Any, declaration_id: int) -> str:
    with server.app.app_context():
        return db.session.get(Declaration, declaration_id).status


def version_of(server: Any, declaration_id: int) -> ProcessVersion:
    with server.app.app_context():
        instance = db.session.scalars(select(ProcessInstance).where(
            ProcessInstance.subject_type == "declaration", ProcessInstance.subject_id == declaration_id)).one()
        version = db.session.get(ProcessVersion, instance.version_id)
        db.session.expunge(version)
        return version


def jiangsu_school_account(server: Any) -> str:
    return school_account(server.app, "金陵工程职业技术学院")


# ---------------------------------------------------------------- the story

def test_analyst_adds_a_city_review_for_guangdong_and_restores_the_national_process(browsing: Any) -> None:
    server = browsing.server
    ARTIFACTS.mkdir(exist_ok=True)
    in_flight = declare(server, "zjxx_weekly", "初级")  # submitted before any change: national process
    assert status(server, in_flight) == "待审核"

    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")

    # 流程管理: the declaration process, its national version as a diagram.
    nav(analyst, "流程管理")
    expect(analyst.get_by_role("heading", name="流程管理")).to_be_visible()
    card = analyst.locator("#process-declaration")
    expect(card.get_by_text("各省均使用全国版本")).to_be_visible()
    expect(card.locator(".running-count")).to_have_text("1")
    card.get_by_role("link", name="查看流程图").click()
    diagram_ready(analyst)
    expect(analyst.locator('#xp-canvas [data-element-id="province_review"]')).to_be_visible()
    analyst.get_by_role("link", name="以此为底稿编辑").click()
    expect(analyst.get_by_role("heading", name="编辑证书试点申报流程")).to_be_visible()
    diagram_ready(analyst)

    # Upload the variant: the lane names a role that does not exist yet, so 校验 lists the problem.
    field(analyst, "适用范围").select_option(label="广东省")
    field(analyst, "上传 .bpmn 文件").set_input_files(str(VARIANT))
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验未通过：1 个问题")).to_be_visible()
    problem = analyst.locator(".xp-problems li").first
    expect(problem).to_contain_text("第 58 行")
    expect(problem).to_contain_text("泳道“city_reviewer”不是已知角色")
    diagram_ready(analyst)
    expect(analyst.locator('#xp-canvas [data-element-id="city_review"]')).to_be_visible()  # the upload is open
    problem.get_by_role("button", name=re.compile("city_review")).click()
    expect(analyst.locator("#xp-panel .xp-element-id code")).to_have_text("city_review")
    assert analyst.evaluate("() => window.xpModeler.get('selection').get().map(e => e.id)") == ["city_review"]
    expect(analyst.locator('#xp-canvas [data-element-id="city_review"].xp-problem')).to_have_count(1)

    # 角色 (in another tab, keeping the editor): add the city review role and a 广州 user for it.
    roles = analyst.context.new_page()
    roles.goto("/")
    city_password = add_role_with_user(roles, "city_reviewer", "市级初审员", "city", "gz_city", "广州市教育局初审员",
                                       province="广东省", city="广州市")
    assert len(city_password) == 12
    roles.goto("/admin/roles")
    expect(roles.locator('tr[data-role="city_reviewer"]')).to_contain_text("gz_city（广州市教育局初审员，广东省广州市）")
    roles.close()

    # Edit through the side panel: rename the city review, try a status and undo it.
    analyst.locator('#xp-canvas [data-element-id="province_review"]').click()
    expect(panel_field(analyst, "名称")).to_have_value("省级审核")
    analyst.locator('#xp-canvas [data-element-id="city_review"]').click()
    expect(analyst.locator("#xp-panel h3")).to_have_text("用户任务")
    expect(panel_field(analyst, "名称")).to_have_value("市级初审")
    expect(panel_field(analyst, "表单文件")).to_have_value("review-form.json")
    expect(panel_field(analyst, "状态表达式")).to_have_value("'市级初审中'")
    panel_field(analyst, "名称").fill(NEW_NAME)
    panel_field(analyst, "名称").press("Enter")
    expect(analyst.locator("#xp-dirty")).to_have_text("有尚未校验的修改")
    panel_field(analyst, "状态表达式").fill("'试行中'")
    panel_field(analyst, "状态表达式").press("Enter")
    assert 'value="&#39;试行中&#39;"' in saved_xml(analyst)  # moddle writes quotes as character references
    analyst.get_by_role("button", name="撤销").click()
    expect(panel_field(analyst, "状态表达式")).to_have_value("'市级初审中'")
    xml = saved_xml(analyst)
    assert f'name="{NEW_NAME}"' in xml and "试行中" not in xml and 'value="&#39;市级初审中&#39;"' in xml
    assert 'spiffworkflow:serviceTaskOperator id="sms_send"' in xml  # extension elements survive the editor
    assert xml.count("<spiffworkflow:parameter ") == 6

    # 校验 again (the editor's diagram): valid, the diff shows the added tasks, the dry run the statuses.
    field(analyst, "适用范围").select_option(label="广东省")
    field(analyst, "试运行场景").select_option(label="提交 → 通过")
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(analyst.locator("#diff-added")).to_contain_text(NEW_NAME)
    expect(analyst.locator("#diff-added")).to_contain_text("初审结论")
    steps = analyst.locator("#dry-run tbody tr")
    expect(steps).to_have_count(4)
    expect(steps.locator(".status")).to_have_text(["草稿", "市级初审中", "待审核", "审核通过"])
    expect(steps.nth(1)).to_contain_text(NEW_NAME)
    diagram_ready(analyst)
    analyst.screenshot(path=str(ARTIFACTS / "analyst-checked.png"), full_page=True)

    # Publish for 广东省.
    expect(analyst.locator("#publish-scope")).to_have_text("广东省")
    field(analyst, "发布说明").fill("广东省增加市级初审")
    analyst.get_by_role("button", name="发布到广东省").click()
    expect(analyst.get_by_text(re.compile(r"已发布证书试点申报流程版本 #\d+（广东省）"))).to_be_visible()
    expect(analyst.locator("#version-scope")).to_have_text("广东省")
    diagram_ready(analyst)
    with server.app.app_context():
        published = db.session.scalars(select(ProcessVersion).where(
            ProcessVersion.province_code == "440000", ProcessVersion.active.is_(True))).one()
        assert f'name="{NEW_NAME}"' in published.bpmn_xml and published.note == "广东省增加市级初审"
        published_id = published.id

    # 迁移等待中的实例: the declaration in flight has passed the changed step, so it stays on its version.
    accept_next_dialog(analyst)
    analyst.get_by_role("button", name="迁移等待中的实例").click()
    expect(analyst.locator("#migration-summary")).to_contain_text("已迁移 0 个，未迁移 1 个")
    expect(analyst.locator("#migration-report")).to_contain_text("填写并提交申报")

    # A 广州 school's new declaration goes to the city review first.
    new = declare(server, "zjxx_weekly", "中级")
    assert status(server, new) == "市级初审中"
    assert version_of(server, new).id == published_id
    school = browsing.new_page("school")
    log_in(school, "zjxx_weekly")
    school.goto(f"/school/declarations/{new}")
    expect(school.locator("#declaration-status")).to_have_text("市级初审中")

    # The analyst sees where it waits.
    analyst.goto(f"/processes/versions/{published_id}")
    analyst.locator("#instances").get_by_role("row").filter(has_text=f"declaration #{new}").get_by_role("link").first.click()
    diagram_ready(analyst)
    expect(analyst.locator('#xp-canvas [data-element-id="city_review"].xp-current')).to_have_count(1)
    expect(analyst.locator('#xp-canvas [data-element-id="fill_declaration"].xp-done')).to_have_count(1)
    expect(analyst.locator('#xp-canvas [data-element-id="province_review"].xp-done')).to_have_count(0)
    analyst.screenshot(path=str(ARTIFACTS / "analyst-instance.png"), full_page=True)

    # The city reviewer (its first login: change the password) works it in 我的待办.
    city = browsing.new_page("city")
    first_log_in(city, "gz_city", city_password, "gzcity2026pw")
    city.goto("/tasks/")
    row = city.get_by_role("row").filter(has_text=GD_SCHOOL)
    expect(row).to_contain_text(NEW_NAME)
    row.get_by_role("link", name="办理").click()
    field(city, "审核通过").check()
    city.get_by_role("button", name="提交", exact=True).click()
    expect(city.get_by_text(f"“{NEW_NAME}”已办理")).to_be_visible()
    assert status(server, new) == "待审核"
    school.reload()
    expect(school.locator("#declaration-status")).to_have_text("待审核")

    # Then 省级审核; the declaration in flight finishes on its old (national) version.
    province_review(server, new)
    province_review(server, in_flight)
    assert status(server, new) == "审核通过" and status(server, in_flight) == "审核通过"
    assert version_of(server, in_flight).province_code is None

    # Another province keeps the national process.
    jiangsu = declare(server, jiangsu_school_account(server), "初级")
    assert status(server, jiangsu) == "待审核" and version_of(server, jiangsu).province_code is None

    # 恢复为全国版本 in the browser: 广东's new declarations use the national process again.
    nav(analyst, "流程管理")
    row = analyst.locator('#process-declaration tr[data-province="440000"]')
    expect(row).to_contain_text("广东省")
    accept_next_dialog(analyst)
    row.get_by_role("button", name="恢复为全国版本").click()
    expect(analyst.get_by_text("广东省的证书试点申报流程已恢复为全国版本")).to_be_visible()
    expect(analyst.locator("#process-declaration").get_by_text("各省均使用全国版本")).to_be_visible()
    after = declare(server, "zjxx_weekly", "高级")
    assert status(server, after) == "待审核" and version_of(server, after).province_code is None
    analyst.screenshot(path=str(ARTIFACTS / "analyst-restored.png"), full_page=True)


def test_the_side_panel_edits_every_extension_the_engine_reads_and_undo_reverts_them(browsing: Any) -> None:
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")
    analyst.goto("/processes/declaration/edit")
    diagram_ready(analyst)

    def select(element_id: str) -> None:
        analyst.evaluate("id => { const m = window.xpModeler; m.get('selection').select(m.get('elementRegistry').get(id)); }",
                         element_id)

    def enter(label: str, value: str) -> None:
        panel_field(analyst, label).fill(value)
        panel_field(analyst, label).blur()  # the panel applies a value when the field loses focus

    # Service task parameters: change one, add an optional one, remove one.
    select("notify_approved")
    expect(panel_field(analyst, "操作")).to_have_value("sms_send")
    params = analyst.locator("#xp-panel .xp-param")
    expect(params).to_have_count(4)  # phone, template (必填), vars, message_ref (可选)
    field(params.nth(1), "值表达式").fill("'rejected_reminder'")  # another template of the registry (校验 checks it exists)
    field(params.nth(1), "值表达式").press("Enter")
    field(params.nth(3), "值表达式").fill("'approved-notice'")
    field(params.nth(3), "值表达式").press("Enter")
    field(params.nth(2), "值表达式").fill("")
    field(params.nth(2), "值表达式").press("Enter")
    xml = saved_xml(analyst)
    approved = xml[xml.index('id="notify_approved"'):xml.index("</bpmn:serviceTask>", xml.index('id="notify_approved"'))]
    assert 'value="&#39;rejected_reminder&#39;"' in approved
    assert '<spiffworkflow:parameter id="message_ref" type="str" value="&#39;approved-notice&#39;" />' in approved
    assert 'id="vars"' not in approved

    # Conditions: change one, add one where there was none.
    select("Flow_approved")
    enter("条件表达式", "decision == 'approve' and trainee_count > 0")
    select("Flow_to_fill")
    expect(panel_field(analyst, "条件表达式")).to_have_value("")
    enter("条件表达式", "True")
    xml = saved_xml(analyst)
    assert "decision == 'approve' and trainee_count &gt; 0" in xml, xml[xml.index('id="Flow_approved"'):][:400]
    assert re.search(r'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">True</bpmn:conditionExpression>', xml)

    # A lane's role: change it, see it in the XML, undo it.
    select("Lane_province_reviewer")
    field(analyst.locator("#xp-panel"), "泳道角色").select_option(value="province_admin")
    assert 'id="Lane_province_reviewer" name="province_admin"' in saved_xml(analyst)
    analyst.get_by_role("button", name="撤销").click()
    assert 'id="Lane_province_reviewer" name="province_reviewer"' in saved_xml(analyst)
    expect(field(analyst.locator("#xp-panel"), "泳道角色")).to_have_value("province_reviewer")

    # The edited diagram passes 校验, and the diff names what changed.
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(analyst.locator("#diff-changed")).to_contain_text("notify_approved")
    diagram_ready(analyst)

    # New tasks start without extension elements: the panel creates them.
    analyst.evaluate("""() => {
        const m = window.xpModeler, reg = m.get('elementRegistry'), factory = m.get('elementFactory');
        const pool = reg.get('Participant_declaration');
        m.get('modeling').createShape(factory.createShape({ type: 'bpmn:UserTask' }), { x: 600, y: 420 }, pool);
        m.get('modeling').createShape(factory.createShape({ type: 'bpmn:ServiceTask' }), { x: 850, y: 420 }, pool);
    }""")
    ids = analyst.evaluate("""() => window.xpModeler.get('elementRegistry')
        .filter(e => (e.type === 'bpmn:UserTask' || e.type === 'bpmn:ServiceTask') && !e.businessObject.name).map(e => e.id)""")
    assert len(ids) == 2
    user_task, service_task = ids
    select(user_task)
    enter("名称", "补充材料核查")
    panel_field(analyst, "表单文件").select_option("review-form.json")
    enter("状态表达式", "'核查中'")
    select(service_task)
    enter("名称", "短信提醒")
    panel_field(analyst, "操作").select_option("sms_send")
    params = analyst.locator("#xp-panel .xp-param")
    field(params.nth(0), "值表达式").fill("school_phone")
    field(params.nth(0), "值表达式").press("Enter")
    xml = saved_xml(analyst)
    task = xml[xml.index(f'id="{user_task}"'):xml.index("</bpmn:userTask>", xml.index(f'id="{user_task}"'))]
    assert 'name="补充材料核查"' in task
    assert '<spiffworkflow:property name="formJsonSchemaFilename" value="review-form.json" />' in task
    assert '<spiffworkflow:property name="status" value="&#39;核查中&#39;" />' in task
    service = xml[xml.index(f'id="{service_task}"'):xml.index("</bpmn:serviceTask>", xml.index(f'id="{service_task}"'))]
    assert '<spiffworkflow:serviceTaskOperator id="sms_send" resultVariable="sms_send_result">' in service
    assert '<spiffworkflow:parameter id="phone" type="str" value="school_phone" />' in service
    # Each edit was one undo step: undo the operation's parameter, the operation, then the name.
    for _ in range(3):
        analyst.get_by_role("button", name="撤销").click()
    service = re.search(rf'<bpmn:serviceTask id="{service_task}".*?(/>|</bpmn:serviceTask>)', saved_xml(analyst), re.S)
    assert "serviceTaskOperator" not in service.group(0) and "短信提醒" not in service.group(0)


def test_an_analyst_declares_a_status_in_the_panel_and_undo_takes_it_back(browsing: Any) -> None:
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")
    analyst.goto("/processes/declaration/edit")
    diagram_ready(analyst)
    declared = ["草稿", "待审核", "审核通过", "审核不通过", "已过期"]

    def words() -> list[str]:
        return [row.input_value() for row in analyst.locator("#xp-panel .xp-status input").all()]

    # Nothing selected: the panel lists the process's statuses in display order.
    expect(analyst.locator("#xp-panel legend")).to_have_text("流程状态")
    expect(analyst.locator("#xp-panel .xp-status")).to_have_count(5)
    assert words() == declared
    expect(analyst.get_by_label("“审核不通过”的含义")).to_have_value("returned")

    panel_field(analyst, "新状态名称").fill("专家评审中")
    panel_field(analyst, "新状态含义").select_option(label="处理中")
    analyst.get_by_role("button", name="添加状态").click()
    expect(analyst.locator("#xp-panel .xp-status")).to_have_count(6)
    assert words() == [*declared, "专家评审中"]
    xml = saved_xml(analyst)
    assert '<spiffworkflow:property name="status:专家评审中" value="waiting" />' in xml
    assert xml.index('name="status:已过期"') < xml.index('name="status:专家评审中"')

    # One undo step takes it back.
    analyst.get_by_role("button", name="撤销").click()
    expect(analyst.locator("#xp-panel .xp-status")).to_have_count(5)
    xml = saved_xml(analyst)
    assert "专家评审中" not in xml and '<spiffworkflow:property name="status:已过期" value="expired" />' in xml

    # Redone, it travels with 校验, which accepts it.
    analyst.get_by_role("button", name="重做").click()
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    checked = analyst.locator('#xp-publish-form textarea[name="xml"]').input_value()
    assert 'name="status:专家评审中" value="waiting"' in checked
    diagram_ready(analyst)
    expect(analyst.locator("#xp-panel .xp-status")).to_have_count(6)

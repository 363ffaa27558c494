"""The analyst's process pages through the Flask client: list, view, check, diff, dry run, publish, migrate, roles."""
from __future__ import annotations

import html
import io
import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.accounts import roles
from app.accounts.models import User
from app.accounts.role_models import Role
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.extensions import db
from app.processes.models import ProcessInstance, ProcessVersion, ServiceCall
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, with_demo

PROJECT = Path(__file__).resolve().parents[1]
NATIONAL = (PROJECT / "bpmn" / "declaration.bpmn").read_text("utf-8")
VARIANT = (PROJECT / "bpmn" / "variants" / "declaration-city-review.bpmn").read_text("utf-8")


# ---------------------------------------------------------------- helpers

def _analyst(app):
    client = app.test_client()
    assert login(client, "analyst").status_code == 302
    return client


def _text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def _versions(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(ProcessVersion))


def _version_id(app, key: str, province: str | None = None, active: bool = True) -> int:
    with app.app_context():
        scope = ProcessVersion.province_code.is_(None) if province is None else ProcessVersion.province_code == province
        return db.session.scalars(select(ProcessVersion.id).where(
            ProcessVersion.process_key == key, scope, ProcessVersion.active.is_(active))
            .order_by(ProcessVersion.id.desc())).first()


def _diagram_config(response) -> dict:
    match = re.search(r'<script type="application/json" id="xp-diagram-config">(.*?)</script>',
                      response.get_data(as_text=True), re.S)
    assert match, "the page carries its diagram as JSON"
    return json.loads(match.group(1))


def _add_city_role(app) -> None:
    with app.app_context():
        session = db.session()
        analyst = session.scalars(select(User).where(User.username == "analyst")).one()
        roles.create_role(session, analyst, "city_reviewer", "市级初审员", "city")
        session.commit()


def _upload(client, xml: str | bytes, *, province: str = "", scenario: str = "submit_approve", name: str = "draft.bpmn"):
    raw = xml.encode("utf-8") if isinstance(xml, str) else xml
    return client.post("/processes/declaration/check", data={
        "province_code": province, "scenario": scenario, "xml": "",
        "bpmn_file": (io.BytesIO(raw), name)}, content_type="multipart/form-data")


def _publish(client, xml: str, province: str = "440000", note: str = "广东省增加市级初审"):
    return client.post("/processes/declaration/publish", data={"xml": xml, "province_code": province, "note": note})


def _declare(app, username: str = "zjxx_weekly", level: str = "初级", action: str = "submit") -> int:
    client = app.test_client()
    login(client, username)
    complete_info(client)
    assert client.post("/school/declarations/new",
                       data={**declaration_form(app, level=level), "action": action}).status_code == 302
    with app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def _instance_of(app, declaration_id: int) -> int:
    with app.app_context():
        return db.session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.subject_type == "declaration", ProcessInstance.subject_id == declaration_id)).one()


# ---------------------------------------------------------------- listing and viewing

def test_process_list_shows_every_process_with_versions_in_force_and_running_counts(app):
    with_demo(app)
    _declare(app)
    client = _analyst(app)
    page = _text(client.get("/processes"))
    for name in ("院校注册", "证书试点申报", "申报计划"):
        assert name in page
    declaration = page[page.index('id="process-declaration"'):page.index('id="process-plan"')]
    assert re.search(r'class="running-count">1<', declaration)
    assert "各省均使用全国版本" in declaration
    _add_city_role(app)
    assert _publish(client, VARIANT).status_code == 302
    page = _text(client.get("/processes"))
    declaration = page[page.index('id="process-declaration"'):page.index('id="process-plan"')]
    assert 'data-province="440000"' in declaration and "广东省" in declaration and "恢复为全国版本" in declaration
    history = _text(client.get("/processes/declaration"))
    assert "生效中" in history and "已停用" not in history  # the national version stays in force beside Guangdong's
    assert "广东省增加市级初审" in history


def test_a_version_opens_as_a_diagram_with_its_xml_as_json_and_downloads_as_bpmn(app):
    with_demo(app)
    client = _analyst(app)
    version_id = _version_id(app, "declaration")
    response = client.get(f"/processes/versions/{version_id}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "bpmn-navigated-viewer.production.min.js" in body
    assert "<bpmn:definitions" not in body, "diagram XML must never be written into the page as markup"
    assert _diagram_config(response)["xml"] == NATIONAL
    download = client.get(f"/processes/versions/{version_id}/download")
    assert download.status_code == 200 and download.mimetype == "application/xml"
    assert "attachment" in download.headers["Content-Disposition"]
    assert download.headers["Content-Disposition"].endswith('.bpmn"')
    assert download.get_data(as_text=True) == NATIONAL


def test_a_diagram_is_escaped_even_when_it_tries_to_close_the_script_tag(app):
    with_demo(app)
    client = _analyst(app)
    hostile = NATIONAL.replace('name="新建申报"', 'name="&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
    response = _upload(client, hostile)
    body = response.get_data(as_text=True)
    assert "</script><script>alert(1)" not in body
    assert _diagram_config(response)["xml"] == hostile


def test_the_editor_opens_on_the_version_in_force_with_the_forms_operations_and_roles_it_may_use(app):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    response = client.get("/processes/declaration/edit?province=440000")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "bpmn-modeler.production.min.js" in body and 'name="csrf_token"' in body
    config = _diagram_config(response)
    assert config["xml"] == NATIONAL
    assert re.search(r"/static/js/spiffworkflow-moddle\.json\?v=[0-9a-f]{12}$", config["moddleUrl"])
    assert "declaration-form.json" in config["forms"] and "review-form.json" in config["forms"]
    assert set(config["operations"]["sms_send"]["required"]) == {"phone", "template"}
    assert {"school", "province_reviewer", "city_reviewer"} <= {r["code"] for r in config["roles"]}
    assert '<option value="440000" selected>' in body
    assert client.get(app.config.get("APPLICATION_ROOT", "/").rstrip("/") + config["moddleUrl"]).status_code == 200


# ---------------------------------------------------------------- 校验: problems, hostile uploads

def test_a_bad_diagram_lists_every_problem_with_element_id_name_and_line(app):
    with_demo(app)
    client = _analyst(app)
    bad = VARIANT.replace('<spiffworkflow:property name="formJsonSchemaFilename" value="review-form.json" />\n'
                          '          <spiffworkflow:property name="status" value="\'市级初审中\'" />',
                          '<spiffworkflow:property name="status" value="\'市级初审中\'" />')
    response = client.post("/processes/declaration/check", data={"xml": bad, "province_code": "440000"})
    assert response.status_code == 422
    page = _text(response)
    assert "校验未通过：2 个问题" in page
    problems = re.findall(r'<li data-element-id="([^"]*)" data-line="(\d*)">', page)
    assert problems == [("city_review", "58"), ("city_review", "58")]
    assert "元素 <code>city_review</code>（市级初审）" in page
    assert "泳道“city_reviewer”不是已知角色" in page
    assert "用户任务必须指定表单（formJsonSchemaFilename）" in page
    assert "第 58 行" in page
    assert _diagram_config(response)["problems"] == ["city_review"]
    assert 'id="xp-publish-form"' not in page, "an invalid draft offers no publishing"


def test_an_xml_syntax_error_is_reported_with_its_line(app):
    with_demo(app)
    client = _analyst(app)
    broken = NATIONAL.replace("</bpmn:process>", "</bpmn:proces>")
    page = _text(client.post("/processes/declaration/check", data={"xml": broken}))
    assert "XML 格式错误" in page and re.search(r'data-line="\d+"', page)


ENTITY_BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
               + NATIONAL.split("?>", 1)[1].replace('name="新建申报"', 'name="&lol2;"'))
EXTERNAL_ENTITY = ('<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                   + NATIONAL.split("?>", 1)[1].replace('name="新建申报"', 'name="&xxe;"'))
SCRIPT_TASK = NATIONAL.replace(
    '<bpmn:exclusiveGateway id="Gateway_fill" name="填报">',
    '<bpmn:scriptTask id="evil_script" name="清理"><bpmn:script>import os; os.system("rm -rf /")</bpmn:script>'
    '</bpmn:scriptTask>\n    <bpmn:exclusiveGateway id="Gateway_fill" name="填报">')
DUNDER_CONDITION = VARIANT.replace("<bpmn:conditionExpression>decision == 'approve'</bpmn:conditionExpression>",
                                   "<bpmn:conditionExpression>().__class__.__base__.__subclasses__()"
                                   "</bpmn:conditionExpression>", 1)
DUNDER_STATUS = NATIONAL.replace('value="\'待审核\'"', 'value="decision.__class__"')
DUNDER_PARAMETER = NATIONAL.replace('value="school_phone"', 'value="__import__(\'os\').system(\'id\')"', 1)


@pytest.mark.parametrize(("xml", "reason"), [
    (ENTITY_BOMB, "不允许 DTD 或实体声明（DOCTYPE/ENTITY）"),
    (EXTERNAL_ENTITY, "不允许 DTD 或实体声明（DOCTYPE/ENTITY）"),
    (SCRIPT_TASK, "不允许脚本任务（scriptTask）"),
    (DUNDER_CONDITION, "条件表达式不合法"),
    (DUNDER_STATUS, "属性 status 的表达式不合法"),
    (DUNDER_PARAMETER, "参数 phone 的表达式不合法"),
], ids=["entity-bomb", "external-entity", "script-task", "dunder-condition", "dunder-status", "dunder-parameter"])
def test_hostile_diagrams_are_refused_with_a_reason_and_nothing_is_published(app, xml, reason):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    before = _versions(app)
    checked = _upload(client, xml, province="440000")
    assert checked.status_code == 422
    page = _text(checked)
    assert reason in page and "校验未通过" in page
    assert "root:" not in page  # no entity was ever expanded
    if "DOCTYPE" in xml:  # a refused declaration is never opened in the editor
        assert "<!DOCTYPE" not in _diagram_config(checked)["xml"]
    published = _publish(client, xml)
    assert published.status_code == 422 and reason in _text(published)
    assert _versions(app) == before


def test_a_3_mb_upload_is_refused_as_too_large(app):
    with_demo(app)
    client = _analyst(app)
    padded = NATIONAL.replace("</bpmn:definitions>", "<!--" + "x" * (3 * 1024 * 1024) + "--></bpmn:definitions>")
    response = _upload(client, padded)
    assert response.status_code == 422
    page = _text(response)
    assert "上传的内容过大（3.0 MB）：流程图文件不能超过 2.0 MB" in page
    assert _versions(app) == 3


def test_a_50_mb_upload_gets_a_clear_message_not_a_413_page(app):
    with_demo(app)
    client = _analyst(app)
    response = _upload(client, b"<x>" + b"0" * (50 * 1024 * 1024) + b"</x>")
    assert response.status_code == 422
    page = _text(response)
    assert "上传的内容过大（50.0 MB）：流程图文件不能超过 2.0 MB，未做任何修改" in page
    assert "编辑证书试点申报流程" in page  # the editor page, not an error page
    published = client.post("/processes/declaration/publish", data={
        "xml": "x" * (3 * 1024 * 1024), "province_code": "440000", "note": "n"})
    assert published.status_code == 422 and "文件过大（3072 KB，上限 2048 KB）" in _text(published)
    assert len(published.get_data()) < 1024 * 1024, "a refused diagram is not sent back to the editor"
    assert _versions(app) == 3


def test_a_3_mb_diagram_typed_into_the_editor_is_refused_by_the_validator_limit(app):
    with_demo(app)
    client = _analyst(app)
    padded = NATIONAL.replace("</bpmn:definitions>", "<!--" + "x" * (2 * 1024 * 1024) + "--></bpmn:definitions>")
    response = client.post("/processes/declaration/check", data={"xml": padded})
    assert response.status_code == 422 and "上限 2048 KB" in _text(response)
    assert len(response.get_data()) < 1024 * 1024, "a refused diagram is not sent back to the editor"
    padded = padded.replace("x" * 1024, "x" * 1536)  # 3 MB: over the form field limit of a multipart post
    multipart = client.post("/processes/declaration/check", data={"xml": padded}, content_type="multipart/form-data")
    assert multipart.status_code == 422 and "流程图文件不能超过 2.0 MB" in _text(multipart)


# ---------------------------------------------------------------- diff, dry run, publish, revert, migrate

def test_checking_the_city_review_variant_shows_the_diff_and_the_dry_run(app):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    response = _upload(client, VARIANT, province="440000", scenario="submit_reject_resubmit_approve")
    assert response.status_code == 200
    page = _text(response)
    assert "校验通过" in page
    assert "与广东省现行版本" in page
    added = page[page.index('id="diff-added"'):]
    added = added[:added.index("</ul>")]
    assert "市级初审" in added and "city_review" in added and "初审结论" in added
    assert "province_review" in page[page.index('id="diff-changed"'):]
    dry = page[page.index('id="dry-run"'):page.index("</table>", page.index('id="dry-run"'))]
    assert re.findall(r'<span class="status s-[^"]+">([^<]+)</span>', dry) == [
        "草稿", "市级初审中", "待审核", "审核不通过", "市级初审中", "待审核", "审核通过"]
    assert "短信通知审核不通过" in dry
    assert _diagram_config(response)["xml"] == VARIANT  # the upload opens in the editor
    form = page[page.index('id="xp-publish-form"'):]
    assert 'name="province_code" value="440000"' in form and "发布到广东省" in form
    assert _versions(app) == 3, "checking publishes nothing"


def test_publishing_for_a_province_changes_only_that_province(app):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    response = _publish(client, VARIANT)
    assert response.status_code == 302
    version_id = _version_id(app, "declaration", "440000")
    assert response.headers["Location"].endswith(f"/processes/versions/{version_id}")
    page = _text(client.get(response.headers["Location"]))
    assert "已发布证书试点申报流程版本" in page and "（广东省）" in page
    assert "迁移等待中的实例" in page and "恢复为全国版本" in page
    with app.app_context():
        version = db.session.get(ProcessVersion, version_id)
        assert version.note == "广东省增加市级初审" and version.published_by == "analyst"
    assert _version_id(app, "declaration") is not None  # the national version stays in force
    gd = _declare(app)
    with app.app_context():
        assert db.session.get(Declaration, gd).status == "市级初审中"


def test_publishing_needs_a_note_and_a_valid_diagram(app):
    with_demo(app)
    client = _analyst(app)
    no_note = _publish(client, NATIONAL, note=" ")
    assert no_note.status_code == 422 and "发布说明：请说明这次修改了什么" in _text(no_note)
    unknown_lane = _publish(client, VARIANT)  # city_reviewer is not a role yet
    assert unknown_lane.status_code == 422 and "泳道“city_reviewer”不是已知角色" in _text(unknown_lane)
    wrong_process = client.post("/processes/registration/publish", data={"xml": NATIONAL, "note": "x"})
    assert wrong_process.status_code == 422 and "流程 id 应为 registration" in _text(wrong_process)
    assert client.post("/processes/declaration/publish", data={
        "xml": NATIONAL, "province_code": "999999", "note": "x"}).status_code == 400
    assert _versions(app) == 3


def test_a_province_is_restored_to_the_national_process(app):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    assert _publish(client, VARIANT).status_code == 302
    response = client.post("/processes/declaration/revert", data={"province_code": "440000"})
    assert response.status_code == 302
    assert "广东省的证书试点申报流程已恢复为全国版本" in _text(client.get("/processes"))
    assert _version_id(app, "declaration", "440000") is None
    with app.app_context():
        assert db.session.get(Declaration, _declare(app)).status == "待审核"
    again = client.post("/processes/declaration/revert", data={"province_code": "440000"}, follow_redirects=True)
    assert "本来就使用全国版本" in _text(again)


def test_migrating_waiting_instances_reports_each_one(app):
    with_demo(app)
    draft = _declare(app, action="save")
    submitted = _declare(app, level="中级")
    _add_city_role(app)
    client = _analyst(app)
    assert _publish(client, VARIANT).status_code == 302
    version_id = _version_id(app, "declaration", "440000")
    response = client.post(f"/processes/versions/{version_id}/migrate")
    assert response.status_code == 200
    page = _text(response)
    assert "已迁移 <strong>1</strong> 个，未迁移 <strong>1</strong> 个" in page
    rows = re.findall(r"<tr><td><a href=\"/processes/instances/(\d+)\">.*?</tr>", page, re.S)
    assert sorted(int(r) for r in rows) == sorted([_instance_of(app, draft), _instance_of(app, submitted)])
    refused = page[page.index(f"declaration #{submitted}"):]
    assert "未迁移" in refused[:300] and "填写并提交申报" in refused[:600]
    assert "已迁移" in page[page.index(f"declaration #{draft}"):][:200]
    with app.app_context():
        assert db.session.get(ProcessInstance, _instance_of(app, draft)).version_id == version_id
        assert db.session.get(ProcessInstance, _instance_of(app, submitted)).version_id != version_id
    old = _version_id(app, "declaration")
    assert client.post("/processes/declaration/revert", data={"province_code": "440000"}).status_code == 302
    retired = client.post(f"/processes/versions/{version_id}/migrate")
    assert retired.status_code == 400 and "只能把等待中的实例迁移到生效中的版本" in _text(retired)
    assert old


# ---------------------------------------------------------------- instances and incidents

def test_an_instance_shows_its_path_current_task_and_history(app):
    with_demo(app)
    decl = _declare(app)
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    assert reviewer.post(f"/review/declarations/{decl}", data={"decision": "reject", "comment": "请补充"}).status_code == 302
    run_jobs(app)
    instance_id = _instance_of(app, decl)
    client = _analyst(app)
    process_page = _text(client.get("/processes/declaration"))
    assert f'href="/processes/instances/{instance_id}"' in process_page and "珠江信息职业学院" in process_page
    response = client.get(f"/processes/instances/{instance_id}")
    assert response.status_code == 200
    config = _diagram_config(response)
    assert config["completed"][:4] == ["StartEvent_1", "Gateway_fill", "fill_declaration", "province_review"]
    assert "notify_rejected" in config["completed"]
    assert config["current"] == ["fill_declaration"]
    page = _text(response)
    assert "珠江信息职业学院" in page and "审核不通过" in page
    history = page[page.index('id="task-history"'):page.index('id="call-history"')]
    assert "省级审核" in history and "广东省教育厅审核员" in history and "等待办理" in history
    calls = page[page.index('id="call-history"'):]
    assert "notify_rejected" in calls and "sms_send" in calls and "已完成" in calls


def test_a_failed_service_call_is_listed_and_retried(app):
    with_demo(app)
    decl = _declare(app)
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    reviewer.post(f"/review/declarations/{decl}", data={"decision": "reject", "comment": "请补充"})
    with app.app_context():
        call = db.session.scalars(select(ServiceCall).where(ServiceCall.status == "pending")).one()
        call.status, call.attempts, call.last_error = "failed", 4, "ConnectionError: 短信网关超时"
        call_id = call.id
        db.session.commit()
    from app.queue import jobs
    jobs.redis.flushdb()  # the call's first job is gone, as after its retries ran out
    client = _analyst(app)
    page = _text(client.get("/processes/incidents"))
    assert "ConnectionError: 短信网关超时" in page and "notify_rejected" in page
    response = client.post(f"/processes/incidents/{call_id}/retry", follow_redirects=True)
    assert "已重新排队：notify_rejected（sms_send）" in _text(response)
    assert run_jobs(app) >= 1
    with app.app_context():
        assert db.session.get(ServiceCall, call_id).status == "done"
    assert "没有失败的服务任务" in _text(client.get("/processes/incidents"))
    assert client.post(f"/processes/incidents/{call_id}/retry").status_code == 404


# ---------------------------------------------------------------- roles

def test_the_roles_page_adds_a_city_role_and_a_user_who_can_log_in(app):
    with_demo(app)
    client = _analyst(app)
    response = client.post("/admin/roles", data={"code": "city_reviewer", "name": "市级初审员", "scope": "city"})
    assert response.status_code == 302
    page = _text(client.get("/admin/roles"))
    assert "已新增角色“市级初审员”（city_reviewer）" in page
    assert 'data-role="city_reviewer"' in page and "市级" in page
    missing_city = client.post("/admin/roles/members", data={
        "role": "city_reviewer", "province_code": "440000", "city_code": "", "username": "gz_city",
        "display_name": "广州市教育局初审员"})
    assert missing_city.status_code == 422 and "市级角色须选择所属省份内的地级市" in _text(missing_city)
    wrong_city = client.post("/admin/roles/members", data={
        "role": "city_reviewer", "province_code": "320000", "city_code": "440100", "username": "gz_city",
        "display_name": "广州市教育局初审员"})
    assert wrong_city.status_code == 422
    created = client.post("/admin/roles/members", data={
        "role": "city_reviewer", "province_code": "440000", "city_code": "440100", "username": "gz_city",
        "display_name": "广州市教育局初审员", "phone": "", "password": ""})
    assert created.status_code == 200 and created.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="new-password">([^<]+)<', created.get_data(as_text=True)).group(1)
    assert len(password) == 12
    with app.app_context():
        user = db.session.scalars(select(User).where(User.username == "gz_city")).one()
        assert (user.role, user.province_code, user.city_code, user.must_change_password) == (
            "city_reviewer", "440000", "440100", True)
    assert "gz_city（广州市教育局初审员，广东省广州市）" in _text(client.get("/admin/roles"))
    staff = app.test_client()
    assert login(staff, "gz_city", password).status_code == 302
    typed = client.post("/admin/roles/members", data={
        "role": "city_reviewer", "province_code": "440000", "city_code": "440300", "username": "sz_city",
        "display_name": "深圳市教育局初审员", "password": "short"})
    assert typed.status_code == 422 and "初始密码" in _text(typed)
    typed = client.post("/admin/roles/members", data={
        "role": "city_reviewer", "province_code": "440000", "city_code": "440300", "username": "sz_city",
        "display_name": "深圳市教育局初审员", "password": "Shenzhen2026"})
    assert 'id="new-password">Shenzhen2026<' in typed.get_data(as_text=True)


def test_a_bad_role_code_is_refused_with_its_reason(app):
    with_demo(app)
    client = _analyst(app)
    response = client.post("/admin/roles", data={"code": "City Reviewer", "name": "市", "scope": "county"})
    assert response.status_code == 422
    page = _text(response)
    assert "角色代码：小写字母开头" in page and "角色名称：2–32 个字" in page and "范围：请选择省级、市级、按证书或全国" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Role).where(Role.builtin.is_(False))) == 0


# ---------------------------------------------------------------- who may do this

ANALYST_PAGES = [("get", "/processes"), ("get", "/processes/declaration"), ("get", "/processes/versions/1"),
                 ("get", "/processes/versions/1/download"), ("get", "/processes/declaration/edit"),
                 ("post", "/processes/declaration/check"), ("post", "/processes/declaration/publish"),
                 ("post", "/processes/declaration/revert"), ("post", "/processes/versions/1/migrate"),
                 ("get", "/processes/instances/1"), ("get", "/processes/incidents"),
                 ("post", "/processes/incidents/1/retry"), ("get", "/admin/roles"), ("post", "/admin/roles"),
                 ("post", "/admin/roles/members"), ("post", "/admin/roles/organisations")]


@pytest.mark.parametrize("username", ["zjxx_weekly", "gd_reviewer", "gd_admin"])
def test_only_analysts_and_the_ministry_admin_reach_the_process_pages(app, username):
    with_demo(app)
    client = app.test_client()
    login(client, username)
    for method, url in ANALYST_PAGES:
        response = getattr(client, method)(url, data={"xml": NATIONAL, "province_code": "440000", "note": "x",
                                                      "code": "sneaky_role", "name": "偷偷", "scope": "city"})
        assert response.status_code == 403, (method, url)
    assert _versions(app) == 3
    with app.app_context():
        assert db.session.get(Role, "sneaky_role") is None
    menu = _text(client.get("/"))
    assert "流程管理" not in menu and ">故障<" not in menu and ">角色<" not in menu


def test_anonymous_visitors_are_sent_to_log_in(app):
    response = app.test_client().get("/processes")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_ministry_admin_and_the_analyst_see_the_menu_entries(app):
    with_demo(app)
    for username in ("analyst", "ministry"):
        client = app.test_client()
        login(client, username, DEMO_PASSWORD)
        for url in ("/processes", "/processes/declaration/edit", "/processes/versions/1", "/admin/roles"):
            page = _text(client.get(url))
            assert ">流程管理</a>" in page and ">故障</a>" in page and ">角色</a>" in page, url


def test_the_editor_posts_need_the_csrf_token(app):
    with_demo(app)
    _add_city_role(app)
    client = _analyst(app)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/processes/declaration/check", data={"xml": VARIANT}).status_code == 400
    assert _publish(client, VARIANT).status_code == 400
    assert _upload(client, VARIANT).status_code == 400
    assert client.post("/admin/roles", data={"code": "x_role", "name": "某角色", "scope": "city"}).status_code == 400
    page = client.get("/processes/declaration/edit").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    checked = client.post("/processes/declaration/check", data={"xml": VARIANT, "csrf_token": token,
                                                                "province_code": "440000"})
    assert checked.status_code == 200
    header = client.post("/processes/declaration/check", data={"xml": VARIANT}, headers={"X-CSRFToken": token})
    assert header.status_code == 200
    assert _versions(app) == 3
    published = client.post("/processes/declaration/publish", data={
        "xml": VARIANT, "province_code": "440000", "note": "试行", "csrf_token": token})
    assert published.status_code == 302 and _versions(app) == 4


def test_other_processes_are_checked_and_diffed_without_a_declaration_dry_run(app):
    with_demo(app)
    client = _analyst(app)
    plan = (PROJECT / "bpmn" / "plan.bpmn").read_text("utf-8")
    response = client.post("/processes/plan/check", data={"xml": plan, "scenario": "submit_approve"})
    assert response.status_code == 200
    page = _text(response)
    assert "校验通过" in page and "任务没有变化" in page
    assert 'id="dry-run"' not in page and "此流程在本范围还没有场景" in page
    wrong = client.post("/processes/plan/check", data={"xml": NATIONAL})
    assert wrong.status_code == 422 and "流程 id 应为 plan，图中为 declaration" in _text(wrong)
    assert client.get("/processes/unknown/edit").status_code == 404

"""Dry-run scenarios analysts write: stored per process and scope, run on drafts of every process (registration,
declaration, plan) with steps named by the forms, judged against what they expect, and run at publish."""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from app.declarations.models import Declaration, DeclarationEvent
from app.extensions import db
from app.processes.models import ProcessScenario, ProcessVersion
from app.processes.services import publish_version, shipped_forms
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, with_demo

PROJECT = Path(__file__).resolve().parents[1]
NATIONAL = (PROJECT / "bpmn" / "declaration.bpmn").read_text("utf-8")
PLAN = (PROJECT / "bpmn" / "plan.bpmn").read_text("utf-8")
REGISTRATION = (PROJECT / "bpmn" / "registration.bpmn").read_text("utf-8")

# The national declaration with a third choice in review: 退回修改 sends the declaration back to the school without
# a rejection (its own flow, no SMS); its form names the choice with x-enum-labels.
RETURNING = NATIONAL.replace(
    '<bpmn:outgoing>Flow_rejected</bpmn:outgoing>\n    </bpmn:exclusiveGateway>',
    '<bpmn:outgoing>Flow_rejected</bpmn:outgoing>\n      <bpmn:outgoing>Flow_returned</bpmn:outgoing>\n'
    '    </bpmn:exclusiveGateway>').replace(
    '<bpmn:incoming>Flow_back_to_school</bpmn:incoming>',
    '<bpmn:incoming>Flow_back_to_school</bpmn:incoming>\n      <bpmn:incoming>Flow_returned</bpmn:incoming>').replace(
    '<bpmn:sequenceFlow id="Flow_to_end"',
    '<bpmn:sequenceFlow id="Flow_returned" name="退回修改" sourceRef="Gateway_decision" targetRef="Gateway_fill">\n'
    '      <bpmn:conditionExpression>decision == \'return\'</bpmn:conditionExpression>\n'
    '    </bpmn:sequenceFlow>\n    <bpmn:sequenceFlow id="Flow_to_end"')

# A registration that waits for the province admin's approval before the account is texted.
APPROVED_REGISTRATION = (PROJECT / "bpmn" / "variants" / "registration-province-approval.bpmn").read_text("utf-8")

def _analyst(app: Any) -> Any:
    client = app.test_client()
    assert login(client, "analyst").status_code == 302
    return client


def _text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def _base_id(app: Any, key: str) -> int:
    with app.app_context():
        return db.session.scalars(select(ProcessVersion.id).where(
            ProcessVersion.process_key == key, ProcessVersion.province_code.is_(None),
            ProcessVersion.active.is_(True))).one()


def _post(client: Any, app: Any, key: str, action: str, xml: str, scenario: Any = None, *, province: str = "",
          base: int | None = None, **extra: Any) -> Any:
    data = {"xml": xml, "base_version_id": str(base or _base_id(app, key)), "province_code": province,
            "scenario": json.dumps(scenario, ensure_ascii=False), **extra}
    return client.post(f"/processes/{key}/scenarios/{action}", data=data)


def _stored(app: Any) -> list[tuple[str, str | None, str]]:
    with app.app_context():
        return [(s.process_key, s.province_code, s.name) for s in db.session.scalars(
            select(ProcessScenario).order_by(ProcessScenario.id))]


REJECTED = {"name": "提交后审核不通过", "steps": [
    {"kind": "task", "task": "fill_declaration", "values": {}},
    {"kind": "task", "task": "province_review", "values": {"decision": "reject", "comment": "请补充师资证明"}}],
    "expect_status": "审核不通过", "expect_sms": "review_rejected"}


# ---------------------------------------------------------------- the declaration process

def test_a_declaration_scenario_runs_on_the_draft_with_the_forms_words_statuses_sms_and_data(app):
    with_demo(app)
    client = _analyst(app)
    response = _post(client, app, "declaration", "run", NATIONAL, REJECTED)
    assert response.status_code == 200
    body = response.get_json()
    assert body["passed"] is True and body["run"]["failures"] == []
    steps = body["run"]["steps"]
    assert [s["action"] for s in steps] == ["开始", "填写并提交申报", "省级审核：审核不通过"]
    assert [s["status"] for s in steps] == ["草稿", "待审核", "审核不通过"]
    assert steps[2]["path"] == ["省级审核", "审核结论", "短信通知审核不通过", "填报"]
    assert steps[2]["waiting_for"] == ["填写并提交申报（school）"]
    [message] = steps[2]["messages"]
    assert message["template"] == "review_rejected" and message["phone"] == "13800000000"
    assert "演示学院申报的演示证书（初级）试点审核不通过，审核意见：请补充师资证明" in message["text"]
    assert steps[2]["data"]["decision"] == "reject" and steps[2]["data"]["comment"] == "请补充师资证明"
    assert _stored(app) == [], "running saves nothing"


def test_a_failed_expectation_is_said_in_chinese_with_what_happened(app):
    with_demo(app)
    client = _analyst(app)
    wrong = dict(REJECTED, expect_status="审核通过", expect_sms="review_approved")
    body = _post(client, app, "declaration", "run", NATIONAL, wrong).get_json()
    assert body["passed"] is False
    assert body["run"]["failures"] == ["预期最终状态为“审核通过”，实际为“审核不通过”",
                                       "预期发送短信“review_approved”，实际只发送了：review_rejected"]
    stuck = {"name": "审核两次", "steps": [REJECTED["steps"][0], REJECTED["steps"][1], REJECTED["steps"][1]]}
    body = _post(client, app, "declaration", "run", NATIONAL, stuck).get_json()
    assert body["run"]["failures"] == [
        "第 3 步（省级审核：审核不通过）：此时没有等待办理的“省级审核”（等待办理的是：填写并提交申报）"]


def test_a_scenario_is_saved_listed_edited_and_deleted_per_scope(app):
    with_demo(app)
    client = _analyst(app)
    saved = _post(client, app, "declaration", "save", NATIONAL, REJECTED, province="440000")
    assert saved.status_code == 200, saved.get_json()
    body = saved.get_json()
    assert body["message"] == "已保存场景“提交后审核不通过”"
    listed = {s["name"]: s for s in body["scenarios"]}
    assert listed["提交 → 通过"]["builtin"] is True
    mine = listed["提交后审核不通过"]
    assert mine["builtin"] is False and mine["names"] == ["填写并提交申报", "省级审核：审核不通过"]
    assert mine["expect_status"] == "审核不通过" and mine["expect_sms"] == "review_rejected"
    assert _stored(app) == [("declaration", "440000", "提交后审核不通过")]
    # Another scope does not list it; the editor of 广东 does, and offers it as its 试运行场景.
    national = _post(client, app, "declaration", "outline", NATIONAL).get_json()
    assert "提交后审核不通过" not in {s["name"] for s in national["scenarios"]}
    page = _text(client.get("/processes/declaration/edit?province=440000"))
    assert ">提交后审核不通过</option>" in page
    # Edit in place: same row, new name and steps.
    scenario_id = int(mine["key"].split(":")[1])
    edited = dict(REJECTED, name="不通过（改）", steps=REJECTED["steps"][:1], expect_status="待审核", expect_sms="")
    assert _post(client, app, "declaration", "save", NATIONAL, edited, province="440000",
                 scenario_id=str(scenario_id)).status_code == 200
    assert _stored(app) == [("declaration", "440000", "不通过（改）")]
    # The same name twice in a scope is refused; so is a built-in's name.
    again = _post(client, app, "declaration", "save", NATIONAL, edited, province="440000")
    assert again.status_code == 422 and again.get_json()["errors"]["name"] == "场景名称：已有名为“不通过（改）”的场景"
    builtin_name = _post(client, app, "declaration", "save", NATIONAL, dict(edited, name="提交 → 通过"),
                         province="440000")
    assert builtin_name.status_code == 422
    deleted = client.post(f"/processes/declaration/scenarios/{scenario_id}/delete",
                          data={"xml": NATIONAL, "base_version_id": str(_base_id(app, "declaration")),
                                "province_code": "440000"})
    assert deleted.status_code == 200 and deleted.get_json()["message"] == "已删除场景“不通过（改）”"
    assert _stored(app) == []


def test_a_wrong_scenario_is_refused_naming_the_step_and_field_and_nothing_is_saved(app):
    with_demo(app)
    client = _analyst(app)
    bad = {"name": "", "steps": [{"kind": "task", "task": "no_such_task"},
                                 {"kind": "task", "task": "province_review", "values": {"decision": "maybe"}},
                                 {"kind": "timer", "timer": "nothing"}],
           "expect_status": "不存在的状态", "expect_sms": "no_template"}
    response = _post(client, app, "declaration", "save", NATIONAL, bad)
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors == {"name": "场景名称：必填", "steps.1": "第 1 步：流程图中没有用户任务 no_such_task",
                      "steps.2": "第 2 步：“省级审核”的“审核结论”只能选：审核通过、审核不通过",
                      "steps.3": "第 3 步：流程图中没有定时器 nothing",
                      "expect_status": "预期最终状态：“不存在的状态”不是此流程的状态（可选：草稿、待审核、审核通过、审核不通过、已过期）",
                      "expect_sms": "预期发送的短信：没有名为“no_template”的短信模板"}
    assert _stored(app) == []
    control = _post(client, app, "declaration", "save", NATIONAL, dict(REJECTED, name="坏\x00名"))
    assert control.status_code == 422 and "控制字符" in control.get_json()["error"]
    broken = _post(client, app, "declaration", "run", "<bpmn/>", REJECTED)
    assert broken.status_code == 422 and broken.get_json()["problems"]
    assert _stored(app) == []
    school = app.test_client()
    login(school, "gd_reviewer")
    assert _post(school, app, "declaration", "save", NATIONAL, REJECTED).status_code == 403


# ---------------------------------------------------------------- the plan and registration processes

def test_a_plan_scenario_fires_timers_and_lets_the_deadline_pass(app):
    with_demo(app)
    client = _analyst(app)
    outline = _post(client, app, "plan", "outline", PLAN).get_json()["outline"]
    assert outline["tasks"] == [] and [t["id"] for t in outline["timers"]] == [
        "wait_close", "wait_review_deadline", "wait_announce_end"]
    scenario = {"name": "截止到公示结束", "steps": [{"kind": "timer", "timer": "wait_close"}, {"kind": "deadline"},
                                             {"kind": "deadline"}], "expect_status": "公示结束"}
    body = _post(client, app, "plan", "run", PLAN, scenario).get_json()
    assert body["passed"] is True
    steps = body["run"]["steps"]
    assert [s["action"] for s in steps] == ["开始", "定时器“申报截止”到时", "期限已过（所有等待中的定时器到时）",
                                            "期限已过（所有等待中的定时器到时）"]
    assert [s["status"] for s in steps] == ["", "申报已截止", "结果公示中", "公示结束"]
    assert steps[1]["path"] == ["申报截止", "截止申报，草稿过期", "短信通知只有过期草稿的院校"]
    assert steps[3]["data"]["end_announcement_result"] == {"dry_run": True}
    too_far = dict(scenario, steps=[*scenario["steps"], {"kind": "deadline"}])
    body = _post(client, app, "plan", "run", PLAN, too_far).get_json()
    assert body["run"]["failures"] == ["第 4 步（期限已过（所有等待中的定时器到时））：此时没有在等待的定时器"]
    assert _post(client, app, "plan", "save", PLAN, scenario).status_code == 200
    assert _stored(app) == [("plan", None, "截止到公示结束")]


def test_a_registration_scenario_approves_an_account_named_by_the_form(app):
    with_demo(app)
    client = _analyst(app)
    answer = _post(client, app, "registration", "outline", APPROVED_REGISTRATION).get_json()
    assert "outline" in answer, answer
    outline = answer["outline"]
    [task] = outline["tasks"]
    assert task["id"] == "approve_registration" and task["lane"] == "province_admin"
    decision = next(f for f in task["fields"] if f["name"] == "decision")
    assert decision["options"] == [["approve", "审核通过（开通账号）"], ["reject", "审核不通过"]]
    assert outline["templates"] == ["account_refused"]
    approved = {"name": "审批通过后开通账号", "steps": [
        {"kind": "task", "task": "approve_registration", "values": {"decision": "approve"}}],
        "expect_status": "账号已开通"}
    body = _post(client, app, "registration", "run", APPROVED_REGISTRATION, approved).get_json()
    assert body["passed"] is True, body["run"]["failures"]
    assert [s["status"] for s in body["run"]["steps"]] == ["待省级审核", "账号已开通"]
    assert body["run"]["steps"][1]["action"] == "审核院校注册：审核通过（开通账号）"
    refused = dict(approved, name="审批不通过", expect_sms="account_refused", steps=[
        {"kind": "task", "task": "approve_registration", "values": {"decision": "reject", "comment": "非本省院校"}}])
    body = _post(client, app, "registration", "run", APPROVED_REGISTRATION, refused).get_json()
    assert body["run"]["failures"] == ["预期最终状态为“账号已开通”，实际为“注册未通过”"]
    assert body["run"]["steps"][1]["messages"][0]["template"] == "account_refused"
    assert "非本省院校" in body["run"]["steps"][1]["messages"][0]["text"]
    # A scenario with no step checks what happens on its own from the start.
    national = {"name": "注册即开通账号", "steps": [], "expect_status": "账号已开通"}
    assert _post(client, app, "registration", "save", REGISTRATION, national).status_code == 200
    assert _stored(app) == [("registration", None, "注册即开通账号")]


# ---------------------------------------------------------------- publishing

def _publish(client: Any, app: Any, xml: str, province: str, base: int | None = None) -> Any:
    return client.post("/processes/declaration/publish", data={
        "xml": xml, "province_code": province, "base_version_id": str(base or _base_id(app, "declaration")),
        "note": "广东省试行"})


def test_a_failing_saved_scenario_blocks_publishing_to_its_scope_until_fixed(app):
    with_demo(app)
    client = _analyst(app)
    wrong = dict(REJECTED, name="不通过应发通知", expect_sms="review_approved")
    assert _post(client, app, "declaration", "save", NATIONAL, wrong, province="440000").status_code == 200
    versions = _count(app, ProcessVersion)
    blocked = _publish(client, app, RETURNING, "440000")
    assert blocked.status_code == 422
    page = _text(blocked)
    assert "场景“不通过应发通知”未通过：预期发送短信“review_approved”，实际只发送了：review_rejected" in page
    assert _count(app, ProcessVersion) == versions, "nothing published"
    checked = client.post("/processes/declaration/check", data={"xml": RETURNING, "province_code": "440000"})
    assert checked.status_code == 422 and "场景“不通过应发通知”未通过" in _text(checked)
    # The scenario of 广东 does not hold back another scope.
    assert _publish(client, app, RETURNING, "320000").status_code == 302
    # The CLI's deploy runs the same gate.
    path = Path(app.config["XPILOT"].instance_path) / "returning.bpmn"
    path.write_text(RETURNING, "utf-8")
    result = app.test_cli_runner().invoke(args=["process", "deploy", str(path), "--province", "440000"])
    assert result.exit_code == 1 and "场景“不通过应发通知”未通过" in result.output
    # Fixed, the scenario passes and the version is published.
    scenario_id = _only_scenario_id(app)
    assert _post(client, app, "declaration", "save", NATIONAL, REJECTED | {"name": "不通过应发通知"},
                 province="440000", scenario_id=str(scenario_id)).status_code == 200
    assert _publish(client, app, RETURNING, "440000").status_code == 302
    assert _count(app, ProcessVersion) == versions + 2


def test_a_step_that_breaks_a_saved_scenario_names_the_scenario_and_step_at_publish(app):
    with_demo(app)
    client = _analyst(app)
    returned = {"name": "退回修改后重新提交", "steps": [
        {"kind": "task", "task": "fill_declaration"},
        {"kind": "task", "task": "province_review", "values": {"decision": "return", "comment": "请补充"}},
        {"kind": "task", "task": "fill_declaration"}], "expect_status": "待审核"}
    with app.app_context():  # 广东's version with 退回修改 and its form
        base = publish_version(db.session(), "declaration", RETURNING_LABELLED,
                               _forms(app, **{"review-return-form.json": LABELLED_REVIEW}), province_code="440000",
                               published_by="test").id
        db.session.commit()
    # Written against that draft, it names the choice by its label.
    saved = _post(client, app, "declaration", "save", RETURNING_LABELLED, returned, province="440000",
                  base=base).get_json()
    mine = next(s for s in saved["scenarios"] if s["name"] == "退回修改后重新提交")
    assert mine["names"] == ["填写并提交申报", "省级审核：退回修改", "填写并提交申报"]
    body = _post(client, app, "declaration", "run", RETURNING_LABELLED, returned, province="440000",
                 base=base).get_json()
    assert body["passed"] is True
    assert [s["action"] for s in body["run"]["steps"]] == ["开始", "填写并提交申报", "省级审核：退回修改",
                                                          "填写并提交申报"]
    assert [s["status"] for s in body["run"]["steps"]] == ["草稿", "待审核", "草稿", "待审核"]
    assert body["run"]["steps"][2]["messages"] == []
    # The national diagram has no 退回修改: publishing it to 广东 runs the scenario and fails on its step 2.
    versions = _count(app, ProcessVersion)
    page = _text(_publish(client, app, NATIONAL, "440000", base=base))
    assert "场景“退回修改后重新提交”未通过：第 2 步：“省级审核”的“审核结论”只能选：审核通过、审核不通过" in page
    assert _count(app, ProcessVersion) == versions


# ---------------------------------------------------------------- choices are named by the form everywhere

LABELLED_REVIEW = copy.deepcopy(json.loads((PROJECT / "bpmn" / "forms" / "review-form.json").read_text("utf-8")))
LABELLED_REVIEW["properties"]["decision"]["enum"].append("return")
LABELLED_REVIEW["properties"]["decision"]["x-enum-labels"]["return"] = "退回修改"
RETURNING_LABELLED = RETURNING.replace('value="review-form.json"', 'value="review-return-form.json"')


def _forms(app: Any, **extra: Any) -> dict[str, Any]:
    return {**shipped_forms(app.config["XPILOT"].bpmn_path), **extra}


def test_a_choice_without_a_name_for_people_is_refused_at_publish(app):
    with_demo(app)
    unlabelled = copy.deepcopy(LABELLED_REVIEW)
    del unlabelled["properties"]["decision"]["x-enum-labels"]["return"]
    with app.app_context():
        try:
            publish_version(db.session(), "declaration", RETURNING_LABELLED,
                            _forms(app, **{"review-return-form.json": unlabelled}), province_code="440000",
                            published_by="test")
        except Exception as exc:  # noqa: BLE001 - the message is what is checked
            message = str(getattr(exc, "problems", exc))
        else:
            raise AssertionError("an unnamed choice was published")
    assert "选项 return 没有中文名称" in message and "x-enum-labels" in message


def test_the_history_names_a_decision_by_the_forms_label_never_its_value(app):
    with_demo(app)
    with app.app_context():
        publish_version(db.session(), "declaration", RETURNING_LABELLED,
                        _forms(app, **{"review-return-form.json": LABELLED_REVIEW}), province_code="440000",
                        published_by="test")
        db.session.commit()
    school = app.test_client()
    login(school, "zjxx_weekly")
    complete_info(school)
    assert school.post("/school/declarations/new",
                       data={**declaration_form(app), "action": "submit"}).status_code == 302
    with app.app_context():
        decl_id = db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    review_page = _text(reviewer.get(f"/review/declarations/{decl_id}"))
    assert "退回修改" in review_page
    assert reviewer.post(f"/review/declarations/{decl_id}",
                         data={"decision": "return", "comment": "请补充场地照片"}).status_code == 302
    run_jobs(app)
    with app.app_context():
        event = db.session.scalars(select(DeclarationEvent).where(DeclarationEvent.declaration_id == decl_id)
                                   .order_by(DeclarationEvent.id.desc())).first()
        assert (event.action, event.label, event.comment) == ("task", "退回修改", "请补充场地照片")
    page = _text(school.get(f"/school/declarations/{decl_id}"))
    rows = re.findall(r"<tr><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td>", page)
    assert "退回修改" in rows and "return" not in rows and "办理" not in rows
    assert "请补充场地照片" in page


def _count(app: Any, model: Any) -> int:
    with app.app_context():
        return int(db.session.scalar(select(func.count()).select_from(model)))


def _only_scenario_id(app: Any) -> int:
    with app.app_context():
        return int(db.session.scalars(select(ProcessScenario.id)).one())

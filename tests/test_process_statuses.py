"""The diagram owns the process: statuses declared by the process, and a publish gate that cannot break a province.

A province's variant renames every national status and adds its own steps and statuses; the queue, closure,
results, the announcement, dashboards, exports and school pages follow it with no Python change.
"""
from __future__ import annotations

import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from app import clock
from app.accounts import roles
from app.accounts.models import User
from app.accounts.services import create_staff
from app.declarations.models import Declaration
from app.demo import DEMO_PASSWORD
from app.engine.specs import InvalidProcess
from app.extensions import db
from app.plans.models import DeclarationPlan, PlanResult
from app.processes import admin as process_admin
from app.processes.jobs import sweep
from app.processes.models import HumanTask, ProcessIncident, ProcessInstance, ProcessVersion
from app.processes.services import shipped_forms
from tests.conftest import run_jobs
from tests.factories import complete_info, declaration_form, login, with_demo

PROJECT = Path(__file__).resolve().parents[1]
NATIONAL = (PROJECT / "bpmn" / "declaration.bpmn").read_text("utf-8")
PROVINCE = "440000"

# The province's words for the national statuses, and two statuses of its own.
RENAMED = {"草稿": "填报中", "待审核": "省级审核中", "审核通过": "省级审核通过", "审核不通过": "退回修改",
           "已过期": "逾期未交"}
EXPERT_REVIEW = """    <bpmn:userTask id="expert_review" name="专家评审">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="formJsonSchemaFilename" value="review-form.json" />
          <spiffworkflow:property name="status" value="'专家评审中'" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_approved</bpmn:incoming>
      <bpmn:outgoing>Flow_to_expert_decision</bpmn:outgoing>
    </bpmn:userTask>
    <bpmn:exclusiveGateway id="Gateway_expert" name="专家评审结论" default="Flow_expert_rejected">
      <bpmn:incoming>Flow_to_expert_decision</bpmn:incoming>
      <bpmn:outgoing>Flow_expert_approved</bpmn:outgoing>
      <bpmn:outgoing>Flow_expert_rejected</bpmn:outgoing>
    </bpmn:exclusiveGateway>
    <bpmn:sequenceFlow id="Flow_to_expert_decision" sourceRef="expert_review" targetRef="Gateway_expert" />
    <bpmn:sequenceFlow id="Flow_expert_approved" sourceRef="Gateway_expert" targetRef="notify_approved">
      <bpmn:conditionExpression>decision == 'approve'</bpmn:conditionExpression>
    </bpmn:sequenceFlow>
    <bpmn:sequenceFlow id="Flow_expert_rejected" sourceRef="Gateway_expert" targetRef="notify_rejected" />
"""


def expert_variant() -> str:
    """The national diagram with every status renamed, a 专家评审 step after provincial review, and 未通过."""
    xml = NATIONAL
    for old, new in RENAMED.items():
        xml = xml.replace(f"status:{old}\"", f"status:{new}\"").replace(f"'{old}'", f"'{new}'")
    xml = xml.replace('<spiffworkflow:property name="status:省级审核中" value="waiting" />',
                      '<spiffworkflow:property name="status:省级审核中" value="waiting" />\n'
                      '        <spiffworkflow:property name="status:专家评审中" value="waiting" />')
    xml = xml.replace('<spiffworkflow:property name="status:退回修改" value="returned" />',
                      '<spiffworkflow:property name="status:退回修改" value="returned" />\n'
                      '        <spiffworkflow:property name="status:未通过" value="rejected" />')
    xml = xml.replace('    </bpmn:laneSet>', '      <bpmn:lane id="Lane_expert" name="expert_reviewer">\n'
                      '        <bpmn:flowNodeRef>expert_review</bpmn:flowNodeRef>\n'
                      '        <bpmn:flowNodeRef>Gateway_expert</bpmn:flowNodeRef>\n      </bpmn:lane>\n    </bpmn:laneSet>')
    xml = xml.replace('<bpmn:sequenceFlow id="Flow_approved" name="审核通过" sourceRef="Gateway_decision" '
                      'targetRef="notify_approved">',
                      '<bpmn:sequenceFlow id="Flow_approved" name="审核通过" sourceRef="Gateway_decision" '
                      'targetRef="expert_review">')
    xml = xml.replace('      <bpmn:incoming>Flow_approved</bpmn:incoming>\n      <bpmn:outgoing>Flow_to_end</bpmn:outgoing>',
                      '      <bpmn:incoming>Flow_expert_approved</bpmn:incoming>\n'
                      '      <bpmn:outgoing>Flow_to_end</bpmn:outgoing>')
    xml = xml.replace('      <bpmn:incoming>Flow_rejected</bpmn:incoming>\n',
                      '      <bpmn:incoming>Flow_rejected</bpmn:incoming>\n'
                      '      <bpmn:incoming>Flow_expert_rejected</bpmn:incoming>\n')
    return xml.replace('  </bpmn:process>', EXPERT_REVIEW + '  </bpmn:process>')


def due_soon_variant() -> str:
    """The national diagram with a reminder: an open draft is marked 即将截止 two days before 申报截止时间."""
    xml = NATIONAL.replace('<spiffworkflow:property name="status:草稿" value="draft" />',
                           '<spiffworkflow:property name="status:草稿" value="draft" />\n'
                           '        <spiffworkflow:property name="status:即将截止" value="draft" />')
    return xml.replace('  </bpmn:process>', """    <bpmn:boundaryEvent id="due_soon" name="截止前两天" cancelActivity="false" attachedToRef="fill_declaration">
      <bpmn:extensionElements>
        <spiffworkflow:properties>
          <spiffworkflow:property name="status" value="'即将截止'" />
        </spiffworkflow:properties>
      </bpmn:extensionElements>
      <bpmn:outgoing>Flow_due_soon</bpmn:outgoing>
      <bpmn:timerEventDefinition id="due_soon_timer"><bpmn:timeDate>add_days(ends_at, -2)</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:boundaryEvent>
    <bpmn:endEvent id="End_due_soon" name="已提醒"><bpmn:incoming>Flow_due_soon</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="Flow_due_soon" sourceRef="due_soon" targetRef="End_due_soon" />
  </bpmn:process>""")


def _analyst() -> User:
    return db.session.scalars(select(User).where(User.username == "analyst")).one()


def _publish(app, xml: str, note: str) -> ProcessVersion:
    with app.app_context():
        session = db.session()
        version = process_admin.publish(session, _analyst(), "declaration", xml,
                                        shipped_forms(app.config["XPILOT"].bpmn_path), PROVINCE, note)
        session.commit()
        return version


def _refused(app, xml: str, key: str = "declaration") -> list[str]:
    with app.app_context():
        with pytest.raises(InvalidProcess) as caught:
            process_admin.validate(db.session(), key, xml, shipped_forms(app.config["XPILOT"].bpmn_path))
        return [str(p) for p in caught.value.problems]


def _declare(app, client, level: str, action: str = "submit") -> int:
    assert client.post("/school/declarations/new",
                       data={**declaration_form(app, level=level), "action": action}).status_code == 302
    with app.app_context():
        return db.session.scalars(select(Declaration.id).order_by(Declaration.id.desc())).first()


def _decl(app, decl_id: int) -> Declaration:
    with app.app_context():
        decl = db.session.get(Declaration, decl_id)
        db.session.expunge(decl)
        return decl


def _plan(app) -> DeclarationPlan:
    with app.app_context():
        plan = db.session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == PROVINCE)).one()
        db.session.expunge(plan)
        return plan


def _move_and_wake(app, delta: timedelta) -> None:
    clock.move(delta)
    with app.app_context():
        sweep()
    run_jobs(app)


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


# -- a whole season under a province's own words ----------------------------------------------------------------

def test_a_province_that_renames_every_status_and_adds_two_runs_a_whole_season(app):
    with_demo(app)
    with app.app_context():
        session = db.session()
        roles.create_role(session, _analyst(), "expert_reviewer", "省级评审专家", "province")
        create_staff(session, role="expert_reviewer", username="gd_expert", password=DEMO_PASSWORD,
                     province_code=PROVINCE, display_name="广东省评审专家")
        session.commit()
    _publish(app, expert_variant(), "广东省增加专家评审，状态用本省的说法")
    school = app.test_client()
    login(school, "zjxx_weekly")
    complete_info(school)
    approved = _declare(app, school, "初级")
    returned = _declare(app, school, "中级")
    draft = _declare(app, school, "高级", action="save")
    assert _decl(app, approved).status == "省级审核中" and _decl(app, draft).status == "填报中"
    assert _decl(app, draft).status_meaning == "draft"

    reviewer, expert = app.test_client(), app.test_client()
    login(reviewer, "gd_reviewer")
    login(expert, "gd_expert")
    assert reviewer.post(f"/review/declarations/{approved}", data={"decision": "approve"}).status_code == 302
    assert reviewer.post(f"/review/declarations/{returned}",
                         data={"decision": "reject", "comment": "师资情况不足，请补充"}).status_code == 302
    run_jobs(app)
    assert _decl(app, approved).status == "专家评审中" and _decl(app, approved).status_meaning == "waiting"
    assert _decl(app, returned).status == "退回修改" and _decl(app, returned).status_meaning == "returned"
    assert not _decl(app, returned).locked and _decl(app, approved).locked  # the SMS sent, the school's task opened

    # The queue offers every status of the province's process; its own new one lists what waits for the expert.
    queue = _text(reviewer.get("/review/"))
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', queue.split('name="status"')[1].split("</select>")[0])
    assert [label for _, label in options] == ["等待省级审核", "省级审核中", "专家评审中", "省级审核通过", "退回修改",
                                               "未通过", "逾期未交", "全部"]
    expert_queue = _text(reviewer.get("/review/", query_string={"status": "专家评审中"}))
    assert "本省申报（专家评审中）（共 1 条）" in expert_queue
    everything = _text(reviewer.get("/review/", query_string={"status": "全部"}))
    assert "（共 2 条）" in everything  # the open draft is the school's own
    board = _text(app.test_client().get("/"))  # nothing public leaks; the dashboards come next
    assert "专家评审中" not in board
    admin = app.test_client()
    login(admin, "gd_admin")
    dashboard = _text(admin.get("/province/dashboard"))
    assert re.search(r"专家评审中</span></td><td>1</td>", dashboard)
    assert re.search(r"填报中</span></td><td>1</td>", dashboard) and re.search(r"退回修改</span></td><td>1</td>", dashboard)

    # The expert approves in the staff inbox; the province's word for approved follows.
    with app.app_context():
        task_id = db.session.scalars(select(HumanTask.id).where(HumanTask.lane == "expert_reviewer",
                                                                HumanTask.completed_at.is_(None))).one()
    assert expert.post(f"/tasks/{task_id}", data={"decision": "approve"}).status_code == 302
    run_jobs(app)
    assert _decl(app, approved).status == "省级审核通过" and _decl(app, approved).status_meaning == "approved"
    page = _text(school.get(f"/school/declarations/{approved}"))
    assert "省级审核通过" in page and "专家评审：审核通过" in page  # the history names the step and its decision

    # The window closes: the draft expires and the returned one is decided for good, in the province's words.
    plan = _plan(app)
    _move_and_wake(app, plan.ends_at - clock.now() + timedelta(minutes=1))
    assert _decl(app, draft).status == "逾期未交" and _decl(app, draft).status_meaning == "expired"
    assert _decl(app, returned).status == "未通过" and _decl(app, returned).status_meaning == "rejected"
    # Results at the review deadline: the approved certificate makes the school a pilot school, announced.
    _move_and_wake(app, plan.review_deadline - clock.now() + timedelta(minutes=1))
    with app.app_context():
        result = db.session.scalars(select(PlanResult).where(PlanResult.plan_id == plan.id)).one()
        assert result.is_pilot and result.approved_count == 1 and result.declared_count == 3
    announcement = _text(app.test_client().get(f"/announcements/{plan.id}"))
    assert "珠江信息职业学院" in announcement
    assert "试点院校" in _text(school.get("/school/"))
    export = admin.get("/province/dashboard/export", query_string={"plan_id": plan.id})
    assert export.status_code == 200
    book = load_workbook(io.BytesIO(export.data), read_only=True)
    statuses = {row[10] for row in book.worksheets[0].iter_rows(min_row=2, values_only=True)}
    assert {"省级审核通过", "未通过", "逾期未交"} <= statuses
    ministry = app.test_client()
    login(ministry, "ministry")
    national = _text(ministry.get("/ministry/dashboard"))
    assert re.search(r"广东省</td><td>3</td><td>0</td><td>1</td><td>1</td>", national)


# -- the publish gate ----------------------------------------------------------------------------------------------

def test_an_unknown_variable_is_refused_with_element_name_and_line(app):
    xml = NATIONAL.replace("<bpmn:conditionExpression>decision == 'approve'</bpmn:conditionExpression>",
                           "<bpmn:conditionExpression>decision == 'approve' and deadline_passed</bpmn:conditionExpression>")
    problems = _refused(app, xml)
    line = next(i for i, text in enumerate(xml.splitlines(), 1) if "deadline_passed" in text)
    assert len(problems) == 1
    assert f"第 {line} 行 元素 Flow_approved （审核通过）" in problems[0] and "deadline_passed" in problems[0]


def test_the_plan_times_are_data_of_every_declaration_so_a_timer_on_them_passes(app):
    with app.app_context():
        parsed = process_admin.validate(db.session(), "declaration", due_soon_variant(),
                                        shipped_forms(app.config["XPILOT"].bpmn_path))
    assert parsed.vocabulary.meaning_of("即将截止") == "draft"


def test_a_status_outside_the_vocabulary_is_refused(app):
    xml = NATIONAL.replace("<spiffworkflow:property name=\"status\" value=\"'待审核'\" />",
                           "<spiffworkflow:property name=\"status\" value=\"'专家评审中'\" />")
    problems = _refused(app, xml)
    assert any("状态“专家评审中”没有在流程的状态声明中" in p and "province_review" in p for p in problems)
    computed = NATIONAL.replace("<spiffworkflow:property name=\"status\" value=\"'待审核'\" />",
                                "<spiffworkflow:property name=\"status\" value=\"school_name\" />")
    assert any("状态表达式只能是加引号的状态名" in p for p in _refused(app, computed))


def test_a_vocabulary_without_an_approved_status_or_with_an_unknown_meaning_is_refused_at_the_pool(app):
    xml = NATIONAL.replace('<spiffworkflow:property name="status:审核通过" value="approved" />',
                           '<spiffworkflow:property name="status:审核通过" value="passed" />')
    problems = _refused(app, xml)
    assert any("状态“审核通过”的含义“passed”不是可选的含义之一" in p and "Participant_declaration" in p for p in problems)
    without = NATIONAL.replace('<spiffworkflow:property name="status:审核通过" value="approved" />', "")
    problems = _refused(app, without)
    assert any("缺少这些含义的状态：通过（approved）" in p and "Participant_declaration" in p for p in problems)
    assert any("状态“审核通过”没有在流程的状态声明中" in p and "notify_approved" in p for p in problems)


def test_a_plain_task_and_a_manual_task_are_refused(app):
    for tag in ("task", "manualTask"):
        xml = NATIONAL.replace('<bpmn:userTask id="province_review" name="省级审核">',
                               f'<bpmn:{tag} id="province_review" name="省级审核">').replace(
            "</bpmn:userTask>\n    <bpmn:exclusiveGateway id=\"Gateway_decision\"",
            f"</bpmn:{tag}>\n    <bpmn:exclusiveGateway id=\"Gateway_decision\"")
        problems = _refused(app, xml)
        assert any("没有人能办理它" in p and "province_review" in p for p in problems), (tag, problems)


def test_an_unknown_process_key_is_refused_by_the_command_line_and_the_gate(app, tmp_path):
    stray = NATIONAL.replace('id="declaration"', 'id="main"').replace('processRef="declaration"', 'processRef="main"')
    assert any("未知的流程“main”" in p for p in _refused(app, stray, key="main"))
    path = tmp_path / "main.bpmn"
    path.write_text(stray, "utf-8")
    runner = app.test_cli_runner()
    result = runner.invoke(args=["process", "deploy", str(path)])
    assert result.exit_code == 1 and "未知的流程“main”" in result.output
    with app.app_context():
        assert db.session.scalars(select(ProcessVersion).where(ProcessVersion.process_key == "main")).first() is None


def test_a_diagram_one_of_whose_generated_paths_errors_is_refused_with_the_path(app):
    # The rejection SMS reads a date from the comment: only the reject branch fails, and only a walk through it
    # finds that; the saved scenarios would find it too late.
    xml = NATIONAL.replace("""value="{'school': school_name, 'certificate': certificate_name, 'level': level, 'comment': comment}" />""",
                           """value="{'school': school_name, 'certificate': certificate_name, 'level': level, 'comment': add_days(comment, 1)}" />""")
    problems = _refused(app, xml)
    assert len(problems) == 1
    # Each choice on the path is named by its form (x-enum-labels), never by its raw value.
    assert re.search(r"试运行出错（路径：开始 → 填写并提交申报（school）：[初中高]级 → 省级审核（province_reviewer）：审核不通过）",
                     problems[0])
    assert "notify_rejected" in problems[0]


def test_a_step_that_fails_only_after_a_timer_fires_is_refused(app):
    # The reminder texts the school, with a text built from the school's name as if it were a date: only a walk that
    # fires the timer reaches it.
    reminder = """<bpmn:serviceTask id="remind" name="短信提醒">
      <bpmn:extensionElements>
        <spiffworkflow:serviceTaskOperator id="sms_send" resultVariable="sms_result">
          <spiffworkflow:parameters>
            <spiffworkflow:parameter id="phone" type="str" value="school_phone" />
            <spiffworkflow:parameter id="template" type="str" value="'review_approved'" />
            <spiffworkflow:parameter id="vars" type="dict" value="{'school': add_days(school_name, 1), 'certificate': certificate_name, 'level': level}" />
          </spiffworkflow:parameters>
        </spiffworkflow:serviceTaskOperator>
      </bpmn:extensionElements>
      <bpmn:incoming>Flow_due_soon</bpmn:incoming>
      <bpmn:outgoing>Flow_reminded</bpmn:outgoing>
    </bpmn:serviceTask>
    <bpmn:sequenceFlow id="Flow_reminded" sourceRef="remind" targetRef="End_due_soon" />
    <bpmn:endEvent id="End_due_soon" name="已提醒"><bpmn:incoming>Flow_reminded</bpmn:incoming></bpmn:endEvent>"""
    broken = due_soon_variant().replace(
        '<bpmn:endEvent id="End_due_soon" name="已提醒"><bpmn:incoming>Flow_due_soon</bpmn:incoming></bpmn:endEvent>',
        reminder).replace('targetRef="End_due_soon" />\n  </bpmn:process>', 'targetRef="remind" />\n  </bpmn:process>')
    broken = broken.replace('<bpmn:flowNodeRef>notify_rejected</bpmn:flowNodeRef>',
                            '<bpmn:flowNodeRef>notify_rejected</bpmn:flowNodeRef>\n        <bpmn:flowNodeRef>remind</bpmn:flowNodeRef>')
    problems = _refused(app, broken)
    assert len(problems) == 1 and "定时器“截止前两天”到时" in problems[0] and "remind" in problems[0], problems


def test_the_shipped_diagrams_pass_the_gate(app):
    with app.app_context():
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        for key in ("declaration", "plan", "registration"):
            process_admin.validate(db.session(), key, (PROJECT / "bpmn" / f"{key}.bpmn").read_text("utf-8"), forms)


# -- run time ---------------------------------------------------------------------------------------------------

def test_a_broken_expression_at_run_time_goes_to_incidents_while_other_instances_work(app):
    with_demo(app)
    school = app.test_client()
    login(school, "zjxx_weekly")
    complete_info(school)
    before = _declare(app, school, "初级")  # on the national version
    # A version stored before the gate (so never checked) reads a name its instances do not hold.
    broken_xml = NATIONAL.replace("<bpmn:conditionExpression>decision == 'approve'</bpmn:conditionExpression>",
                                  "<bpmn:conditionExpression>decision == 'approve' and expert_ok</bpmn:conditionExpression>")
    with app.app_context():
        session = db.session()
        from app.engine.specs import content_hash
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        session.add(ProcessVersion(process_key="declaration", province_code=PROVINCE, bpmn_xml=broken_xml, forms=forms,
                                   content_hash=content_hash(broken_xml, forms), active=True, note="旧版本",
                                   published_by="legacy"))
        session.commit()
    after = _declare(app, school, "中级")
    reviewer = app.test_client()
    login(reviewer, "gd_reviewer")
    refused = reviewer.post(f"/review/declarations/{after}", data={"decision": "approve"})
    assert refused.status_code == 422
    message = _text(refused)
    assert "已记录为故障并通知流程分析员处理" in message and "expert_ok" not in message
    assert _decl(app, after).status == "待审核"  # nothing half-done
    # The declaration on the national version goes on.
    assert reviewer.post(f"/review/declarations/{before}", data={"decision": "approve"}).status_code == 302
    run_jobs(app)
    assert _decl(app, before).status_meaning == "approved"
    with app.app_context():
        incident = db.session.scalars(select(ProcessIncident)).one()
        instance_id = _decl(app, after).instance_id
        assert (incident.instance_id, incident.element_id, incident.province_code) == (instance_id, "Flow_approved", PROVINCE) \
            or (incident.instance_id, incident.province_code) == (instance_id, PROVINCE)
        assert "expert_ok" in incident.error
    # A second try counts on the same incident; the analyst sees it with its element and error.
    reviewer.post(f"/review/declarations/{after}", data={"decision": "approve"})
    analyst = app.test_client()
    login(analyst, "analyst")
    page = _text(analyst.get("/processes/incidents"))
    assert "expert_ok" in page and f"#{instance_id}" in page
    with app.app_context():
        assert db.session.scalars(select(ProcessIncident)).one().occurrences == 2


def test_extending_the_deadline_moves_the_reminder_of_an_open_draft(app):
    with_demo(app)
    _publish(app, due_soon_variant(), "截止前两天提醒")
    school = app.test_client()
    login(school, "zjxx_weekly")
    complete_info(school)
    draft = _declare(app, school, "初级", action="save")
    plan = _plan(app)
    with app.app_context():
        instance = db.session.get(ProcessInstance, _decl(app, draft).instance_id)
        assert instance.next_wake_at == plan.ends_at - timedelta(days=2)
    admin = app.test_client()
    login(admin, "gd_admin")
    new_end = plan.ends_at + timedelta(days=5)
    assert admin.post(f"/province/plans/{plan.id}/extend",
                      data={"ends_at": clock.format_local(new_end), "reason": "部分学校网络故障"}).status_code == 302
    new_end = _plan(app).ends_at
    with app.app_context():
        instance = db.session.get(ProcessInstance, _decl(app, draft).instance_id)
        assert instance.next_wake_at == new_end - timedelta(days=2)
    # At the old reminder time nothing happens; at the new one the draft is marked, and still expires at the end.
    _move_and_wake(app, plan.ends_at - timedelta(days=2) - clock.now() + timedelta(hours=1))
    assert _decl(app, draft).status == "草稿"
    _move_and_wake(app, new_end - timedelta(days=2) - clock.now() + timedelta(hours=1))
    assert _decl(app, draft).status == "即将截止" and _decl(app, draft).status_meaning == "draft"
    assert "即将截止" in _text(school.get("/school/"))
    _move_and_wake(app, new_end - clock.now() + timedelta(minutes=1))
    assert _decl(app, draft).status == "已过期"


def test_no_national_status_word_is_compared_in_python_or_templates():
    words = ("草稿", "待审核", "审核通过", "审核不通过", "已过期")
    found = subprocess.run(["grep", "-rnE", "'(" + "|".join(words) + ")'|\"(" + "|".join(words) + ")\"",
                            "app", "--include=*.py", "--include=*.html"], cwd=PROJECT, capture_output=True, text=True)
    lines = [line for line in found.stdout.splitlines() if not line.startswith("app/engine/vocabulary.py:")]
    assert lines == [], "\n".join(lines)

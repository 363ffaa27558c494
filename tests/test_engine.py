"""The engine: shipped diagrams, bounded state across reject loops, safe expressions, hostile diagrams, timers."""
from __future__ import annotations

import json
import time
from datetime import UTC

import pytest
from sqlalchemy import select

from app.engine import engine
from app.engine.expressions import ExpressionError, evaluate
from app.engine.specs import InvalidProcess
from app.extensions import db
from app.processes.models import ProcessInstance, ServiceCall
from app.processes.services import shipped_forms

START_DATA = {"school_phone": "13800138000", "school_name": "测试学院", "certificate_name": "测试证书",
              "level": "初级", "decision": "", "comment": ""}


def _loop(session, instance_id, decision):
    eng = engine()
    fill = next(t for t in eng.open_tasks(session, instance_id) if t.lane == "school")
    eng.complete_task(session, instance_id, fill.task_id, actor_id=None, lanes=["school"], data={"majors": ["1"]})
    review = next(t for t in eng.open_tasks(session, instance_id) if t.lane == "province_reviewer")
    outcome = eng.complete_task(session, instance_id, review.task_id, actor_id=None, lanes=["province_reviewer"],
                                data={"decision": decision, "comment": "请补充材料"})
    call = session.scalars(select(ServiceCall).where(ServiceCall.instance_id == instance_id,
                                                     ServiceCall.status == "pending")).one()
    assert eng.complete_service(session, call, {"message_id": 0})
    session.commit()
    return outcome


def test_shipped_diagrams_are_valid(app):
    with app.app_context():
        forms = shipped_forms(app.config["XPILOT"].bpmn_path)
        for key in ("registration", "declaration"):
            xml = (app.config["XPILOT"].bpmn_path / f"{key}.bpmn").read_text("utf-8")
            assert engine().parse(xml, forms).process_id == key


def test_state_stays_bounded_across_reject_loops_and_the_process_still_ends(app):
    with app.app_context():
        session = db.session()
        outcome = engine().start(session, "declaration", subject_type="engine_test", subject_id=1,
                                 province_code="440000", data=START_DATA)
        session.commit()
        iid = outcome.instance_id
        _loop(session, iid, "reject")
        size_after_one = len(session.get(ProcessInstance, iid).state)
        tasks_after_one = len(json.loads(session.get(ProcessInstance, iid).state)["tasks"])
        for _ in range(30):
            _loop(session, iid, "reject")
        state = session.get(ProcessInstance, iid).state
        assert len(json.loads(state)["tasks"]) <= tasks_after_one
        assert len(state) < size_after_one * 1.2
        assert session.get(ProcessInstance, iid).status == "审核不通过"
        _loop(session, iid, "approve")
        instance = session.get(ProcessInstance, iid)
        assert instance.completed and instance.status == "审核通过"


@pytest.mark.parametrize("payload", [
    "().__class__.__base__.__subclasses__()", "__import__('os').system('id')", "open('/etc/passwd').read()",
    "'a' * 100000000", "9 ** 9 ** 9", "[x for x in range(10**9)]", "(lambda: 1)()", "eval('1')",
    "getattr(decision, '__class__')", "decision.__class__", "_secret",
])
def test_expression_environment_refuses_escape_payloads(payload):
    with pytest.raises(ExpressionError):
        evaluate(payload, {"decision": "approve", "_secret": 1})


def test_expressions_do_what_diagrams_need():
    assert evaluate("'审核不通过' if decision == 'reject' else '草稿'", {"decision": "reject"}) == "审核不通过"
    assert evaluate("{'school': school_name, 'n': len(majors)}", {"school_name": "甲", "majors": [1, 2]}) == {
        "school": "甲", "n": 2}
    assert evaluate("add_seconds('2026-01-01T00:00:00+08:00', 60)", {}) == "2026-01-01T00:01:00+08:00"


def _diagram(body: str, lanes: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="D" targetNamespace="x">
  <bpmn:process id="declaration" isExecutable="true">{lanes}
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    {body}
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="t" />
    <bpmn:sequenceFlow id="f2" sourceRef="t" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


HOSTILE = {
    "script task": (_diagram('<bpmn:scriptTask id="t" name="坏脚本"><bpmn:incoming>f1</bpmn:incoming>'
                             '<bpmn:outgoing>f2</bpmn:outgoing><bpmn:script>import os</bpmn:script></bpmn:scriptTask>'),
                    "不允许脚本任务"),
    "unknown operation": (_diagram(
        '<bpmn:serviceTask id="t"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="shell_exec">'
        '<spiffworkflow:parameters /></spiffworkflow:serviceTaskOperator></bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>'
        '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>'), "未注册"),
    "dunder parameter": (_diagram(
        '<bpmn:serviceTask id="t"><bpmn:extensionElements><spiffworkflow:serviceTaskOperator id="sms_send">'
        '<spiffworkflow:parameters><spiffworkflow:parameter id="phone" type="str" value="().__class__" />'
        '<spiffworkflow:parameter id="template" type="str" value="\'x\'" /></spiffworkflow:parameters>'
        '</spiffworkflow:serviceTaskOperator></bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>'
        '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>'), "Attribute"),
    "user task without lane": (_diagram(
        '<bpmn:userTask id="t"><bpmn:extensionElements><spiffworkflow:properties>'
        '<spiffworkflow:property name="formJsonSchemaFilename" value="review-form.json" />'
        '</spiffworkflow:properties></bpmn:extensionElements><bpmn:incoming>f1</bpmn:incoming>'
        '<bpmn:outgoing>f2</bpmn:outgoing></bpmn:userTask>'), "泳道"),
    "entity expansion": ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
                         '<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL">&lol2;'
                         '</bpmn:definitions>', "DTD"),
    "external entity": ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>',
                        "DTD"),
    "huge file": ("<x>" + "a" * (3 * 1024 * 1024) + "</x>", "文件过大"),
    "not xml": ("<bpmn:definitions", "XML 格式错误"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_diagrams_are_refused_with_a_reason(app, name):
    xml, reason = HOSTILE[name]
    with app.app_context(), pytest.raises(InvalidProcess) as info:
        engine().parse(xml, shipped_forms(app.config["XPILOT"].bpmn_path))
    assert reason in str(info.value), str(info.value)


def test_problems_name_element_and_line(app):
    xml, _ = HOSTILE["script task"]
    with app.app_context(), pytest.raises(InvalidProcess) as info:
        engine().parse(xml, {})
    problem = info.value.problems[0]
    assert problem.element_id == "t" and problem.element_name == "坏脚本" and problem.line == 6


TIMER = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL" id="D" targetNamespace="x">
  <bpmn:process id="timer_demo" isExecutable="true">
    <bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
    <bpmn:intermediateCatchEvent id="wait"><bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing>
      <bpmn:timerEventDefinition><bpmn:timeDate>due</bpmn:timeDate></bpmn:timerEventDefinition>
    </bpmn:intermediateCatchEvent>
    <bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
    <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="wait" />
    <bpmn:sequenceFlow id="f2" sourceRef="wait" targetRef="end" />
  </bpmn:process>
</bpmn:definitions>"""


def _start_timer_demo(session, due: str):
    """Deploy the TIMER diagram and start one instance of it waiting until `due` (committed)."""
    from app.processes.models import ProcessVersion

    parsed = engine().parse(TIMER, {})
    session.add(ProcessVersion(process_key="timer_demo", content_hash=parsed.content_hash, bpmn_xml=TIMER,
                               forms={}, active=True))
    session.flush()
    outcome = engine().start(session, "timer_demo", subject_type="test", subject_id=1, province_code=None,
                             data={"due": due})
    session.commit()
    return outcome


def test_timer_is_scheduled_and_woken_by_a_job(app):
    from datetime import datetime, timedelta

    from tests.conftest import run_jobs

    with app.app_context():
        session = db.session()
        outcome = _start_timer_demo(session, (datetime.now(UTC) + timedelta(seconds=1)).isoformat())
        instance = session.get(ProcessInstance, outcome.instance_id)
        assert not instance.completed and instance.next_wake_at is not None
    time.sleep(2.2)
    run_jobs(app)
    with app.app_context():
        assert db.session.get(ProcessInstance, outcome.instance_id).completed


def test_instance_lock_is_kept_across_flushes_and_forgotten_with_a_savepoint(app):
    """A lock taken in a transaction is not asked for again after a flush (its end releases nothing), but is
    after a rolled-back savepoint (which releases the row locks taken inside it) and in the next transaction."""
    from sqlalchemy import event

    from app.sms.models import AuditEntry

    with app.app_context():
        session = db.session()
        outcome = _start_timer_demo(session, "2099-01-01T00:00:00+00:00")
        locks: list[str] = []

        def count(_conn, _cursor, statement, *_args):
            if statement.lstrip().startswith("SELECT") and "FROM process_instance" in statement:
                locks.append(statement)  # the lock (FOR UPDATE on PostgreSQL; SQLite locks the database on write)

        bind = session.get_bind()
        event.listen(bind, "before_cursor_execute", count)
        try:
            first = engine().lock(session, outcome.instance_id)
            session.add(AuditEntry(action="test", target="instance", detail="flush inside the transaction"))
            session.flush()
            assert engine().lock(session, outcome.instance_id) is first
            assert len(locks) == 1
            before = len(locks)
            savepoint = session.begin_nested()
            engine().lock(session, outcome.instance_id)
            savepoint.rollback()
            engine().lock(session, outcome.instance_id)
            assert len(locks) == before + 1  # asked again once the savepoint was rolled back
            session.commit()
            engine().lock(session, outcome.instance_id)
            assert len(locks) == before + 2  # and in the next transaction
            session.rollback()
        finally:
            event.remove(bind, "before_cursor_execute", count)

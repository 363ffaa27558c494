"""Forms as process data: the checks at publish, the draft's forms in the editor, and the editor's preview."""
from __future__ import annotations

import copy
import html
import json
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from app.engine.specs import InvalidProcess, Problem
from app.extensions import db
from app.forms import build_form, parse_submission
from app.forms.checks import schema_problems
from app.processes import admin as process_admin
from app.processes.models import ProcessVersion
from app.processes.services import shipped_forms
from tests.factories import login, with_demo

PROJECT = Path(__file__).resolve().parents[1]
NATIONAL = (PROJECT / "bpmn" / "declaration.bpmn").read_text("utf-8")
FORMS = shipped_forms(PROJECT / "bpmn")
REVIEW_FORM = "province-review.json"
# The province review filling its own form: the decision, plus a score the approval condition reads.
PROVINCE_REVIEW = {
    "title": "省级审核", "type": "object", "required": ["decision", "score"],
    "properties": {
        "decision": {"type": "string", "title": "审核结论", "enum": ["approve", "reject"],
                     "x-enum-labels": {"approve": "审核通过", "reject": "审核不通过"}, "x-widget": "radio"},
        "score": {"type": "integer", "title": "评审得分", "minimum": 0, "maximum": 100},
        "visit_date": {"type": "string", "format": "date", "title": "实地考察日期"},
        "comment": {"type": "string", "title": "审核意见", "maxLength": 1000, "x-widget": "textarea"},
    },
}


def _diagram(*, approve_when: str = "decision == 'approve'", fill_status: str | None = None) -> str:
    xml = NATIONAL.replace('<spiffworkflow:property name="formJsonSchemaFilename" value="review-form.json" />',
                           f'<spiffworkflow:property name="formJsonSchemaFilename" value="{REVIEW_FORM}" />')
    xml = xml.replace("<bpmn:conditionExpression>decision == 'approve'</bpmn:conditionExpression>",
                      f"<bpmn:conditionExpression>{html.escape(approve_when)}</bpmn:conditionExpression>")
    if fill_status is not None:
        xml = re.sub(r'(<spiffworkflow:property name="status" value=")[^"]*(" />)',
                     lambda m: m.group(1) + html.escape(fill_status) + m.group(2), xml, count=1)
    return xml


def _forms(review: dict[str, Any] | None = None, **others: Any) -> dict[str, Any]:
    return {**FORMS, REVIEW_FORM: review if review is not None else PROVINCE_REVIEW, **others}


def _problems(app, xml: str, forms: dict[str, Any]) -> list[Problem]:
    with app.app_context():
        try:
            process_admin.validate(db.session(), "declaration", xml, forms)
        except InvalidProcess as exc:
            return list(exc.problems)
        return []


def _analyst(app):
    with_demo(app)
    client = app.test_client()
    assert login(client, "analyst").status_code == 302
    return client


# ---------------------------------------------------------------- what the renderer can show

def test_the_shipped_forms_are_within_what_the_renderer_shows() -> None:
    assert {name: schema_problems(schema) for name, schema in FORMS.items()} == {name: [] for name in FORMS}
    assert schema_problems(PROVINCE_REVIEW) == []


def test_enum_labels_must_label_every_choice_and_only_the_choices() -> None:
    form = copy.deepcopy(PROVINCE_REVIEW)
    form["properties"]["decision"]["x-enum-labels"] = {"approve": "审核通过", "maybe": "再看看"}
    problems = schema_problems(form)
    assert "字段 decision：x-enum-labels 中的 maybe 不是可选值（可选值：approve, reject）" in problems
    assert "字段 decision：x-enum-labels 缺少这些可选值的显示文字：reject" in problems
    form["properties"]["decision"]["x-enum-labels"] = {"approve": "通过", "reject": "通过"}
    assert schema_problems(form) == ["字段 decision：x-enum-labels 中不同的可选值用了相同的显示文字：通过"]
    form["properties"]["score"]["x-enum-labels"] = {"1": "一"}
    assert "字段 score：x-enum-labels 只能用于有可选值（enum）的字段" in schema_problems(form)


def test_a_form_outside_the_renderers_dialect_is_refused_field_by_field() -> None:
    form = {"type": "object", "required": ["score", "ghost"], "properties": {
        "score": {"type": "integer", "title": "得分", "minimum": 10, "maximum": 5},
        "1st": {"type": "string", "title": "第一"},
        "files": {"type": "object", "title": "附件"},
        "agree": {"type": "boolean", "title": "同意", "x-widget": "radio"},
        "note": {"type": "string"},
        "choice": {"type": "string", "title": "选择", "x-widget": "select"},
        "cert": {"type": "integer", "title": "证书", "x-options": "all_certificates"},
    }}
    problems = schema_problems(form)
    assert "必填字段 ghost 不在表单的字段中" in problems
    assert "字段 score：取值的下限 10 大于上限 5" in problems
    assert any(p.startswith("字段 1st：字段名只能用英文字母开头") for p in problems)
    assert any(p.startswith("字段 files：类型 'object' 不受支持") for p in problems)
    assert "字段 agree：控件 radio 不能用于是/否类型的字段" in problems
    assert "字段 note：缺少标题（title）：标题是学校和工作人员看到的字段名称" in problems
    assert "字段 choice：控件 select 需要选项：请设置 enum（可选值）" in problems
    assert any(p.startswith("字段 cert：选项列表 x-options 'all_certificates' 不存在") for p in problems)
    assert schema_problems({"type": "object", "properties": {"a": {"type": "strin"}}})[0].startswith(
        "不是合法的 JSON Schema")


def test_dates_and_yes_no_boxes_render_and_parse_as_the_editor_writes_them() -> None:
    form = build_form({"type": "object", "required": ["on"], "properties": {
        "on": {"type": "string", "format": "date", "title": "日期"}, "ok": {"type": "boolean", "title": "已核实"}}})
    assert [(f.name, f.widget) for f in form.fields] == [("on", "date"), ("ok", "checkbox")]
    values, errors, _ = parse_submission(form, MultiDict({"on": "2026-02-30"}))
    assert errors == {"on": "日期：请输入日期（年-月-日，如 2026-09-01）"}
    values, errors, _ = parse_submission(form, MultiDict({"on": "2026-09-01"}))
    assert (values, errors) == ({"on": "2026-09-01", "ok": False}, {})  # an unticked box means no
    values, errors, _ = parse_submission(form, MultiDict({"on": "2026-09-01", "ok": "1"}))
    assert values["ok"] is True


# ---------------------------------------------------------------- the publish gate

def test_a_task_form_missing_from_the_draft_is_named_at_its_task(app) -> None:
    problems = _problems(app, _diagram(), dict(FORMS))
    assert [(p.element_id, p.message) for p in problems] == [("province_review", f"表单文件 {REVIEW_FORM} 不存在")]
    assert _problems(app, _diagram(approve_when="decision == 'approve' and score >= 60"), _forms()) == []


def test_bad_enum_labels_are_refused_at_the_task_that_uses_the_form(app) -> None:
    form = copy.deepcopy(PROVINCE_REVIEW)
    form["properties"]["decision"]["x-enum-labels"] = {"approve": "审核通过", "reject": "审核不通过", "hold": "暂缓"}
    problems = _problems(app, _diagram(), _forms(form))
    assert [(p.element_id, p.message) for p in problems] == [
        ("province_review", f"表单 {REVIEW_FORM}：字段 decision：x-enum-labels 中的 hold 不是可选值（可选值：approve, reject）")]


def test_an_expression_may_read_a_field_only_where_its_task_has_filled_it_for_certain(app) -> None:
    # After the review: the score is required there, so the approval condition may read it.
    assert _problems(app, _diagram(approve_when="decision == 'approve' and score >= 60"), _forms()) == []
    # The same condition on an optional field: left empty, the instance could not go on.
    optional = copy.deepcopy(PROVINCE_REVIEW)
    optional["required"] = ["decision"]
    problems = _problems(app, _diagram(approve_when="decision == 'approve' and score >= 60"), _forms(optional))
    assert [(p.element_id, p.message) for p in problems] == [(
        "Flow_approved", f"条件表达式 decision == 'approve' and score >= 60 读取表单字段 score，它在表单 "
                         f"省级审核（{REVIEW_FORM}） 中不是必填：留空时流程无法读取它，请把它设为必填")]
    # Before the review (the school's task, reached first from the start): the score is not there yet.
    problems = _problems(app, _diagram(fill_status="'审核不通过' if decision == 'reject' and score < 60 else '草稿'"),
                         _forms())
    assert [p.element_id for p in problems] == ["fill_declaration"]
    assert "读取表单字段 score，但流程走到这里时不一定已填写它（填写它的是：省级审核（province-review.json））" \
        in problems[0].message
    # A field no form has at all is the unknown-variable check's.
    problems = _problems(app, _diagram(approve_when="decision == 'approve' and grade >= 60"), _forms())
    assert len(problems) == 1 and "使用了流程实例中没有的变量：grade" in problems[0].message


def test_the_forms_the_app_reads_keep_the_fields_it_stores(app) -> None:
    declaration = copy.deepcopy(FORMS["declaration-form.json"])
    del declaration["properties"]["teachers"]
    declaration["required"].remove("teachers")
    problems = _problems(app, NATIONAL, {**FORMS, "declaration-form.json": declaration})
    assert [(p.element_id, p.message) for p in problems] == [(
        "fill_declaration", "表单 declaration-form.json：系统按字段名读取这些字段，不能删除或改名：teachers")]
    bad_name = _problems(app, NATIONAL, {**FORMS, "专家.json": PROVINCE_REVIEW})
    assert bad_name and bad_name[0].message.startswith("表单文件名“专家.json”不合法")


# ---------------------------------------------------------------- the editor: the draft's forms, the preview

def test_the_editor_checks_and_publishes_the_forms_it_was_sent_with_the_diagram(app) -> None:
    client = _analyst(app)
    xml = _diagram(approve_when="decision == 'approve' and score >= 60")
    page = client.get("/processes/declaration/edit")
    assert "表单" in page.get_data(as_text=True) and "js/form-editor.js" in page.get_data(as_text=True)
    # Without the new form: the check names it as missing.
    response = client.post("/processes/declaration/check", data={"xml": xml, "province_code": "440000"})
    assert response.status_code == 422 and f"表单文件 {REVIEW_FORM} 不存在" in html.unescape(response.get_data(as_text=True))
    forms_json = json.dumps(_forms(), ensure_ascii=False)
    response = client.post("/processes/declaration/check",
                           data={"xml": xml, "province_code": "440000", "forms_json": forms_json})
    text = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 200 and "校验通过" in text
    assert REVIEW_FORM in json.loads(re.search(r'id="xp-diagram-config">(.*?)</script>',
                                               response.get_data(as_text=True), re.S).group(1))["forms"]
    published = re.search(r'<form method="post" action="/processes/declaration/publish".*?</form>', text, re.S).group(0)
    assert '"评审得分"' in published  # the publish form carries the checked forms
    response = client.post("/processes/declaration/publish", data={
        "xml": xml, "province_code": "440000", "note": "省级审核加评审得分", "forms_json": forms_json})
    assert response.status_code == 302
    with app.app_context():
        version = db.session.scalars(select(ProcessVersion).where(
            ProcessVersion.province_code == "440000", ProcessVersion.active.is_(True))).one()
        assert version.forms[REVIEW_FORM] == PROVINCE_REVIEW and "review-form.json" in version.forms
    # Unreadable forms change nothing.
    response = client.post("/processes/declaration/publish", data={
        "xml": xml, "province_code": "440000", "note": "再发布", "forms_json": "{not json"})
    assert response.status_code == 422
    assert "没有读到编辑器中的表单" in html.unescape(response.get_data(as_text=True))


def test_the_preview_renders_the_draft_form_as_the_task_page_does_and_checks_a_trial_submission(app) -> None:
    client = _analyst(app)
    schema = json.dumps(PROVINCE_REVIEW, ensure_ascii=False)
    response = client.post("/processes/forms/preview", data={"form_schema": schema})
    text = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<label for="f-score">评审得分 <span class="req" aria-hidden="true">*</span></label>' in text
    assert '<input type="date" id="f-visit_date" name="visit_date"' in text
    assert 'value="approve" > 审核通过' in text and 'value="reject" > 审核不通过' in text
    tried = client.post("/processes/forms/preview", data={"form_schema": schema, "form_try": "1", "score": "120"})
    text = html.unescape(tried.get_data(as_text=True))
    assert "审核结论：必填" in text and "评审得分：不能大于 100" in text and 'value="120"' in text
    ok = client.post("/processes/forms/preview", data={"form_schema": schema, "form_try": "1", "score": "80",
                                                       "decision": "approve"})
    assert "试填通过" in ok.get_data(as_text=True)
    broken = client.post("/processes/forms/preview", data={"form_schema": '{"type": "object", "properties": {'})
    assert broken.status_code == 200 and "不是合法的 JSON" in broken.get_data(as_text=True)
    school = app.test_client()
    assert login(school, "zjxx_weekly").status_code == 302
    assert school.post("/processes/forms/preview", data={"form_schema": schema}).status_code == 403


@pytest.mark.parametrize("field_name", ["csrf_token", "form_try", "class"])
def test_field_names_the_pages_or_expressions_need_are_refused(field_name: str) -> None:
    form = {"type": "object", "properties": {field_name: {"type": "string", "title": "名"}}}
    assert schema_problems(form) and schema_problems(form)[0].startswith(f"字段 {field_name}：")


def test_process_deploy_reads_the_forms_folder_next_to_the_diagram_through_the_same_checks(app, tmp_path) -> None:
    with_demo(app)
    (tmp_path / "forms").mkdir()
    diagram = tmp_path / "declaration.bpmn"
    diagram.write_text(_diagram(approve_when="decision == 'approve' and score >= 60"), encoding="utf-8")
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["process", "deploy", str(diagram), "--province", "440000"])
    assert missing.exit_code == 1 and f"表单文件 {REVIEW_FORM} 不存在" in missing.output
    mislabelled = copy.deepcopy(PROVINCE_REVIEW)
    del mislabelled["properties"]["decision"]["x-enum-labels"]["reject"]
    (tmp_path / "forms" / REVIEW_FORM).write_text(json.dumps(mislabelled, ensure_ascii=False), encoding="utf-8")
    refused = runner.invoke(args=["process", "deploy", str(diagram), "--province", "440000"])
    assert refused.exit_code == 1 and "x-enum-labels 缺少这些可选值的显示文字：reject" in refused.output
    (tmp_path / "forms" / REVIEW_FORM).write_text(json.dumps(PROVINCE_REVIEW, ensure_ascii=False), encoding="utf-8")
    published = runner.invoke(args=["process", "deploy", str(diagram), "--province", "440000"])
    assert published.exit_code == 0, published.output
    with app.app_context():
        version = db.session.scalars(select(ProcessVersion).where(
            ProcessVersion.province_code == "440000", ProcessVersion.active.is_(True))).one()
        assert version.forms[REVIEW_FORM] == PROVINCE_REVIEW

"""An analyst gives 广东's new city review step its own form, in the browser only, and the reviewer fills it.

The analyst adds the role and its user on the roles page, opens the declaration process in the editor, uploads
the city-review diagram (the new user task 市级初审), creates the form city-review.json in the 表单 panel field by
field (a choice with labels, a new date field, a comment), previews it and tries a submission in the preview,
points the new task at it in the side panel, checks and publishes for 广东省. A 广州 school's declaration then
reaches the city reviewer, whose real task page shows the new field and refuses the task without it.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from sqlalchemy import select

from app.extensions import db
from app.processes.models import ProcessInstance, ProcessVersion
from tests.browser.test_analyst import (
    ARTIFACTS,
    VARIANT,
    add_role_with_user,
    declare,
    diagram_ready,
    field,
    first_log_in,
    log_in,
    panel_field,
    status,
)

expect = pytest.importorskip("playwright.sync_api").expect

pytestmark = pytest.mark.browser
PREVIEW = 20_000  # ms: the preview is a request to the server, slow on a busy machine


def add_field(forms: Any, name: str, title: str, kind: str) -> Any:
    """Add a field to the open form and set its name, title and type; return its row."""
    forms.get_by_role("button", name="添加字段").click()
    row = forms.locator(".xp-form-field").last
    field(row, "字段名").fill(name)
    field(row, "字段名").press("Enter")
    row = forms.locator(f'.xp-form-field[data-field="{name}"]')
    field(row, "标题").fill(title)
    field(row, "类型").select_option(label=kind)
    return forms.locator(f'.xp-form-field[data-field="{name}"]')


def test_an_analyst_adds_a_form_with_a_new_field_and_the_new_step_shows_it_on_the_real_task_page(browsing: Any) -> None:
    server = browsing.server
    ARTIFACTS.mkdir(exist_ok=True)
    analyst = browsing.new_page("analyst")
    log_in(analyst, "analyst")
    city_password = add_role_with_user(analyst, "city_reviewer", "市级初审员", "city", "gz_city", "广州市教育局初审员",
                                       province="广东省", city="广州市")

    # The editor, with the city review step uploaded: its task still fills the shipped review form.
    analyst.goto("/processes/declaration/edit")
    diagram_ready(analyst)
    field(analyst, "适用范围").select_option(label="广东省")
    field(analyst, "上传 .bpmn 文件").set_input_files(str(VARIANT))
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    diagram_ready(analyst)
    forms = analyst.locator("#xp-forms-card")
    expect(forms).to_have_attribute("data-ready", "true")
    used = forms.locator("#xp-forms-list li").filter(has=analyst.locator('[data-form="review-form.json"]'))
    expect(used).to_contain_text("市级初审")
    expect(used).to_contain_text("省级审核")

    # 新建表单 city-review.json, field by field.
    new_form = forms.locator("fieldset").filter(has_text="新建表单")
    field(new_form, "文件名").fill("city-review.json")
    field(new_form, "表单标题").fill("市级初审")
    new_form.get_by_role("button", name="新建表单").click()
    expect(analyst.locator("#xp-forms-message")).to_contain_text("已新建表单 city-review.json")
    decision = add_field(forms, "decision", "初审结论", "单选（按钮）")
    field(decision, "选项").fill("approve=初审通过\nreject=初审不通过")
    field(decision, "必填").check()
    visit = add_field(forms, "visit_date", "实地考察日期", "日期")
    field(visit, "必填").check()
    field(visit, "说明").fill("到校实地考察的日期")
    comment = add_field(forms, "comment", "初审意见", "文字（多行）")
    field(comment, "最多字数").fill("500")

    # The preview is the server's rendering: the labels of the choices, a date input, the checks of a submission.
    preview = analyst.locator("#xp-form-preview-body")
    expect(preview.locator("h4")).to_have_text("市级初审", timeout=PREVIEW)
    expect(field(preview, "实地考察日期")).to_have_attribute("type", "date", timeout=PREVIEW)
    expect(preview.get_by_label("初审通过")).to_be_visible(timeout=PREVIEW)
    expect(preview.get_by_text("到校实地考察的日期")).to_be_visible(timeout=PREVIEW)
    expect(field(preview, "初审意见")).to_have_attribute("maxlength", "500", timeout=PREVIEW)
    preview.get_by_label("初审通过").check()
    analyst.get_by_role("button", name="试填提交").click()
    expect(preview.locator(".field .error")).to_have_text(["实地考察日期：必填"], timeout=PREVIEW)
    expect(preview.locator(".flash.error")).to_have_text("提交的信息有 1 处需要修改，请查看标红的字段。")
    field(preview, "实地考察日期").fill("2026-09-15")
    analyst.get_by_role("button", name="试填提交").click()
    expect(preview.locator("#xp-form-try-ok")).to_be_visible(timeout=PREVIEW)
    forms.locator("summary").click()
    schema = json.loads(analyst.locator("#xp-form-json").input_value())
    assert schema["required"] == ["decision", "visit_date"]
    assert schema["properties"]["decision"]["x-enum-labels"] == {"approve": "初审通过", "reject": "初审不通过"}
    assert schema["properties"]["visit_date"] == {"type": "string", "title": "实地考察日期", "format": "date",
                                                  "description": "到校实地考察的日期"}

    # The new step fills the new form; the diagram's panel lists it at once.
    analyst.locator('#xp-canvas [data-element-id="city_review"]').click()
    panel_field(analyst, "表单文件").select_option("city-review.json")
    expect(analyst.locator("#xp-dirty")).to_have_text("有尚未校验的修改")
    own = forms.locator("#xp-forms-list li").filter(has=analyst.locator('[data-form="city-review.json"]'))
    expect(own).to_contain_text("任务：市级初审")
    analyst.screenshot(path=str(ARTIFACTS / "analyst-form-editor.png"), full_page=True)

    # 校验 with the forms, then publish them with the diagram for 广东省.
    analyst.get_by_role("button", name="校验", exact=True).click()
    expect(analyst.get_by_role("heading", name="校验通过")).to_be_visible()
    expect(forms.locator('#xp-forms-list [data-form="city-review.json"]')).to_be_visible()  # the draft's forms came back
    expect(analyst.locator("#xp-form-preview-body")).to_have_attribute("data-previewing", "city-review.json",
                                                                         timeout=PREVIEW)
    field(analyst, "发布说明").fill("广东省市级初审使用自己的表单，记录实地考察日期")
    analyst.get_by_role("button", name="发布到广东省").click()
    expect(analyst.get_by_text("已发布证书试点申报流程版本")).to_be_visible()
    with server.app.app_context():
        version = db.session.scalars(select(ProcessVersion).where(
            ProcessVersion.province_code == "440000", ProcessVersion.active.is_(True))).one()
        assert version.forms["city-review.json"] == schema
        assert 'value="city-review.json"' in version.bpmn_xml

    # A 广州 school declares; the city reviewer's real task page shows the new field.
    declaration = declare(server, "zjxx_weekly", "初级")
    assert status(server, declaration) == "市级初审中"
    city = browsing.new_page("city")
    first_log_in(city, "gz_city", city_password, "gzcity2026pw")
    city.goto("/tasks/")
    city.get_by_role("row").filter(has_text="市级初审").get_by_role("link", name="办理").click()
    expect(field(city, "实地考察日期")).to_have_attribute("type", "date")
    expect(city.get_by_text("到校实地考察的日期")).to_be_visible()
    field(city, "初审通过").check()
    city.get_by_role("button", name="提交", exact=True).click()
    expect(city.get_by_role("alert").filter(has_text="实地考察日期：必填")).to_be_visible()
    assert status(server, declaration) == "市级初审中"
    field(city, "实地考察日期").fill("2026-09-15")
    field(city, "初审通过").check()
    city.get_by_role("button", name="提交", exact=True).click()
    expect(city.get_by_text("“市级初审”已办理")).to_be_visible()
    assert status(server, declaration) == "待审核"
    with server.app.app_context():
        state = db.session.scalars(select(ProcessInstance.state).where(
            ProcessInstance.subject_type == "declaration", ProcessInstance.subject_id == declaration)).one()
        assert re.search(r'"visit_date":\s*"2026-09-15"', state)  # the task's data now holds the new field

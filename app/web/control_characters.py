"""Refuse control characters in form fields, query parameters and path parts before any view reads them.

NUL and the other C0 control characters (tab, line feed and carriage return excepted, which text areas
send) are never part of what anyone types; PostgreSQL refuses NUL outright, Excel refuses the others.
One hook answers 422 with a page naming the field in Chinese, so no view, service or query meets them.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from flask import Flask, current_app, render_template, request

from app.processes.services import shipped_forms

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The app's own fields (the JSON-schema forms' fields take their titles from the schemas).
FIELD_LABELS = {
    "username": "账号", "password": "密码", "current": "当前密码", "confirm": "确认新密码",
    "province": "所在省市", "city": "所在城市", "school": "院校名称", "phone": "手机号", "sms_code": "验证码", "q": "搜索内容",
    "province_code": "省份", "city_code": "所属城市", "display_name": "姓名/单位", "role": "角色",
    "plan_id": "申报计划", "name": "名称", "code": "代码", "scope": "范围", "reason": "原因", "note": "发布说明",
    "notes": "说明", "starts_at": "申报开始时间", "ends_at": "申报截止时间", "review_deadline": "审核截止时间",
    "announce_days": "公示天数", "certificate_ids": "开放申报的证书", "contact_name": "联系人",
    "contact_phone": "联系电话", "status": "状态", "certificate": "证书", "level": "证书等级", "from": "提交日期（起）",
    "to": "提交日期（止）", "sort": "排序", "per_page": "每页条数", "page": "页码", "registered": "注册情况",
    "ids": "选中的申报", "action": "操作", "back": "返回位置", "decision": "审核结论", "comment": "审核意见",
    "xml": "流程图", "scenario": "试运行场景", "base_version_id": "版本", "version": "版本", "kind": "类型",
    "csrf_token": "表单令牌", "key": "流程", "forms_json": "表单", "form_schema": "表单定义",
}

View = TypeVar("View", bound=Callable[..., Any])


def parses_own_form(view: View) -> View:
    """Mark a view that parses its body itself, inside its own limits (it checks the fields with first_refused)."""
    view.parses_own_form = True  # type: ignore[attr-defined]
    return view


def first_refused(pairs: Iterable[tuple[str, Any]]) -> str | None:
    """Return the name of the first field whose name or text holds a control character, else None."""
    for name, value in pairs:
        if CONTROL.search(name) or (isinstance(value, str) and CONTROL.search(value)):
            return name
    return None


def refusal(name: str) -> str:
    """Return the message that names a refused field in Chinese."""
    label = FIELD_LABELS.get(name) or _form_titles(current_app.config["XPILOT"].bpmn_path).get(name)
    shown = label or CONTROL.sub("\ufffd", name)[:40]
    return f"“{shown}”含有不允许的控制字符，请删除后重新提交"


@lru_cache(maxsize=4)
def _form_titles(bpmn_path: Path) -> dict[str, str]:
    return {name: prop["title"] for schema in shipped_forms(bpmn_path).values()
            for name, prop in schema.get("properties", {}).items() if prop.get("title")}


def init_app(app: Flask) -> None:
    """Check every request's query string, path parts and (unless the view parses it itself) form."""

    @app.before_request
    def _refuse_control_characters() -> tuple[str, int] | None:
        view = app.view_functions.get(request.endpoint or "")
        pairs: list[Iterable[tuple[str, Any]]] = [request.args.items(multi=True), (request.view_args or {}).items()]
        if not getattr(view, "parses_own_form", False):
            pairs.append(request.form.items(multi=True))
        for source in pairs:
            name = first_refused(source)
            if name is not None:
                return render_template("error.html", title="输入有误", message=refusal(name)), 422
        return None

"""What a form must be for the app to render it and for a diagram's expressions to read its fields.

The renderer (app.forms.build_form and templates/_form.html) understands a small dialect of JSON Schema: an object
whose properties are text, numbers, yes/no, dates, choices and multi-choices, with `x-widget`, `x-options` and
`x-enum-labels`. A form published with a version must stay within it, or schools and staff would see a field they
cannot fill.
"""
from __future__ import annotations

import keyword
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

# Option lists the app supplies by name (app.declarations.services): only the declaration form is given them.
OPTION_LISTS = {"plan_certificates": "申报计划开放的证书", "school_majors": "本校办学层次的专业"}
TYPES = {"string": "文字", "integer": "整数", "number": "数字", "boolean": "是/否", "array": "多选"}
WIDGETS: dict[str, tuple[str, ...]] = {  # widget -> the types it can show
    "text": ("string",), "textarea": ("string",), "date": ("string",), "number": ("integer", "number"),
    "select": ("string", "integer", "number"), "radio": ("string", "integer", "number"),
    "multiselect": ("array",), "checkbox": ("boolean",),
}
FORM_KEYS = {"$schema", "$id", "title", "description", "type", "required", "properties", "if", "then", "else",
             "allOf", "anyOf", "oneOf", "dependentRequired", "additionalProperties"}
FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")
FORM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\.json$")
MAX_FORM_BYTES = 256 * 1024
RESERVED = {"csrf_token", "form_schema", "form_try"}  # names the pages that show forms post themselves


def form_name_problem(name: str) -> str | None:
    """Return why a form's file name cannot be used, or None."""
    if not FORM_NAME.match(name) or ".." in name:
        return (f"表单文件名“{name}”不合法：只能用英文字母、数字、点、下划线和连字符，以 .json 结尾"
                "（如 expert-review.json）")
    return None


def schema_problems(schema: Any) -> list[str]:
    """Return every reason the renderer cannot show this form as schools and staff would fill it."""
    if not isinstance(schema, Mapping):
        return ["表单必须是一个 JSON 对象"]
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return [f"不是合法的 JSON Schema：{exc.message}"]
    problems: list[str] = []
    if schema.get("type") != "object":
        problems.append("表单的 type 必须是 \"object\"")
    unknown = sorted(set(schema) - FORM_KEYS)
    if unknown:
        problems.append(f"表单不支持这些关键字：{', '.join(unknown)}")
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return problems + ["表单没有字段（properties 为空）"]
    for name in schema.get("required", []):
        if name not in properties:
            problems.append(f"必填字段 {name} 不在表单的字段中")
    for name, prop in properties.items():
        problems.extend(f"字段 {name}：{p}" for p in field_problems(name, prop))
    return problems


def field_problems(name: str, prop: Any) -> list[str]:
    """Return the reasons one field cannot be rendered or read by expressions."""
    if not FIELD_NAME.match(name) or keyword.iskeyword(name):
        return ["字段名只能用英文字母开头，由字母、数字和下划线组成（最多 64 个字符），不能是 Python 关键字："
                "流程的表达式按字段名读取填写的值"]
    if name in RESERVED:
        return [f"字段名 {name} 是系统保留的名称，请换一个"]
    if not isinstance(prop, Mapping):
        return ["字段的定义必须是 JSON 对象"]
    problems: list[str] = []
    kind = prop.get("type", "string")
    if not isinstance(kind, str) or kind not in TYPES:
        return [f"类型 {kind!r} 不受支持（可用：{'、'.join(f'{k}（{v}）' for k, v in TYPES.items())}）"]
    if not str(prop.get("title") or "").strip():
        problems.append("缺少标题（title）：标题是学校和工作人员看到的字段名称")
    widget = prop.get("x-widget")
    if widget is not None and (not isinstance(widget, str) or widget not in WIDGETS):
        problems.append(f"控件 x-widget {widget!r} 不受支持（可用：{'、'.join(WIDGETS)}）")
    elif widget is not None and kind not in WIDGETS[widget]:
        problems.append(f"控件 {widget} 不能用于{TYPES[kind]}类型的字段")
    if prop.get("format") == "date" and kind != "string":
        problems.append("日期（format: date）只能用于 string 类型")
    if "x-options" in prop and (not isinstance(prop["x-options"], str) or prop["x-options"] not in OPTION_LISTS):
        problems.append(f"选项列表 x-options {prop['x-options']!r} 不存在（可用：" +
                        "、".join(f"{k}（{v}）" for k, v in OPTION_LISTS.items()) + "）")
    values = _choices(prop)
    if widget in ("select", "radio", "multiselect") and values is None and "x-options" not in prop:
        problems.append(f"控件 {widget} 需要选项：请设置 enum（可选值）")
    if kind == "array" and values is None and "x-options" not in prop:
        problems.append("多选字段需要选项：请设置 items.enum 或 x-options")
    if values is not None:
        problems.extend(_enum_problems(kind if kind != "array" else prop.get("items", {}).get("type", "string"),
                                       values, prop))
    elif "x-enum-labels" in prop:
        problems.append("x-enum-labels 只能用于有可选值（enum）的字段")
    problems.extend(_bounds_problems(prop))
    return problems


def _choices(prop: Mapping[str, Any]) -> list[Any] | None:
    if prop.get("type") == "array":
        items = prop.get("items")
        return items.get("enum") if isinstance(items, Mapping) and "enum" in items else None
    return prop["enum"] if "enum" in prop else None


def _enum_problems(kind: str, values: Any, prop: Mapping[str, Any]) -> list[str]:
    if not isinstance(values, list) or not values:
        return ["可选值 enum 不能为空"]
    problems = []
    python_type: Any = {"string": str, "integer": int, "number": (int, float)}.get(kind, str)
    wrong = [v for v in values if not isinstance(v, python_type) or isinstance(v, bool)]
    if wrong:
        problems.append(f"可选值 {', '.join(map(str, wrong))} 不是{TYPES.get(kind, kind)}")
    texts = [str(v) for v in values]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    if repeated:
        problems.append(f"可选值重复：{', '.join(repeated)}")
    if "x-enum-labels" in prop:
        labels = prop["x-enum-labels"]
        if not isinstance(labels, Mapping):
            return problems + ["x-enum-labels 必须是“可选值 → 显示文字”的对象"]
        extra = sorted(set(labels) - set(texts))
        if extra:
            problems.append(f"x-enum-labels 中的 {', '.join(extra)} 不是可选值（可选值：{', '.join(texts)}）")
        missing = [t for t in texts if not str(labels.get(t) or "").strip()]
        if missing:
            problems.append(f"x-enum-labels 缺少这些可选值的显示文字：{', '.join(missing)}")
        shown = [str(labels[t]) for t in texts if t in labels]
        same = sorted({s for s in shown if shown.count(s) > 1})
        if same:
            problems.append(f"x-enum-labels 中不同的可选值用了相同的显示文字：{', '.join(same)}")
    return problems


def _bounds_problems(prop: Mapping[str, Any]) -> list[str]:
    problems = []
    for low, high, label in (("minLength", "maxLength", "字数"), ("minimum", "maximum", "取值"),
                             ("minItems", "maxItems", "选择项数")):
        if low in prop and high in prop and isinstance(prop[low], (int, float)) \
                and isinstance(prop[high], (int, float)) and prop[low] > prop[high]:
            problems.append(f"{label}的下限 {prop[low]} 大于上限 {prop[high]}")
    return problems

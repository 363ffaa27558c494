"""JSON-schema forms: turn a schema into fields to render, and posted text into checked values."""
from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from typing import Any

import jsonschema


@dataclass
class Field:
    """One input of a rendered form."""

    name: str
    title: str
    kind: str  # string / integer / number / array / boolean
    widget: str  # text / textarea / select / multiselect / radio / number / date / checkbox
    required: bool
    description: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    min_length: int | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class FormSpec:
    """A form built from a JSON schema and the option lists the app supplies."""

    schema: dict[str, Any]
    fields: list[Field]

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    def choice_label(self, name: str, value: Any) -> str:
        """Return how the form names a choice of one of its fields (the value itself if it names none)."""
        found = self.field(name)
        return next((label for v, label in found.options if v == str(value)), str(value)) if found else str(value)

    @cached_property
    def validator(self) -> jsonschema.Draft202012Validator:
        """The schema's validator, built once per form (forms are kept between requests)."""
        return jsonschema.Draft202012Validator(self.schema)


def build_form(schema: Mapping[str, Any], options: Mapping[str, list[tuple[str, str]]] | None = None) -> FormSpec:
    """Build the fields of a schema; `x-options` names an option list given in options."""
    options = options or {}
    required = set(schema.get("required", []))
    fields = []
    resolved = dict(schema)
    resolved["properties"] = dict(schema.get("properties", {}))
    for name, prop in schema.get("properties", {}).items():
        kind = prop.get("type", "string")
        widget = prop.get("x-widget") or _default_widget(kind, prop)
        opts: list[tuple[str, str]] = []
        if "x-options" in prop:
            opts = list(options.get(prop["x-options"], []))
            values = [v for v, _ in opts]
            prop = dict(prop)
            if kind == "array":
                prop["items"] = {**prop.get("items", {}), "enum": values}
            else:
                prop["enum"] = [int(v) if kind == "integer" else v for v in values]
            resolved["properties"][name] = prop
        elif "enum" in prop:
            labels = prop.get("x-enum-labels", {})
            opts = [(str(v), labels.get(str(v), str(v))) for v in prop["enum"]]
        fields.append(Field(
            name=name, title=prop.get("title", name), kind=kind, widget=widget, required=name in required,
            description=prop.get("description", ""), options=opts,
            min_length=prop.get("minLength", prop.get("minItems")), max_length=prop.get("maxLength", prop.get("maxItems")),
            minimum=prop.get("minimum"), maximum=prop.get("maximum"),
        ))
    return FormSpec(resolved, fields)


def _default_widget(kind: str, prop: Mapping[str, Any]) -> str:
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "checkbox"
    return "date" if prop.get("format") == "date" else "text"


def parse_submission(form: FormSpec, posted: Any, required: Collection[str] | None = None,
                     ) -> tuple[dict[str, Any], dict[str, str], dict[str, Any]]:
    """Convert posted text to typed values; return (values, field errors, what the user typed).

    required: see validate (None: the schema's own required fields and completeness rules)."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    typed: dict[str, Any] = {}
    for f in form.fields:
        if f.kind == "array":
            raw_list = [v.strip() for v in posted.getlist(f.name) if v.strip()]
            typed[f.name] = raw_list
            values[f.name] = raw_list
            continue
        raw = (posted.get(f.name) or "").strip()
        typed[f.name] = raw
        if f.kind == "boolean":  # an unticked box is not posted: it means no
            values[f.name] = raw in ("1", "true", "on", "yes")
            continue
        if raw == "":
            continue
        if f.kind == "integer":
            try:
                values[f.name] = int(raw)
            except ValueError:
                errors[f.name] = f"{f.title}：请输入整数"
        elif f.kind == "number":
            try:
                values[f.name] = float(raw)
            except ValueError:
                errors[f.name] = f"{f.title}：请输入数字"
        elif f.widget == "date":
            try:
                values[f.name] = date.fromisoformat(raw).isoformat()
            except ValueError:
                errors[f.name] = f"{f.title}：请输入日期（年-月-日，如 2026-09-01）"
        else:
            values[f.name] = raw
    for name, message in validate(form, values, required).items():
        errors.setdefault(name, message)
    return values, errors, typed


# What makes a form complete rather than well-formed: a draft may still miss these (user guide: 保存，暂不提交审核
# is for a form that is 没有填写好或没想清楚).
_COMPLETENESS = ("required", "minLength", "minItems")


def validate(form: FormSpec, values: Mapping[str, Any], required: Collection[str] | None = None) -> dict[str, str]:
    """Check values against the schema; return one Chinese message per field.

    required: None checks everything; otherwise only these fields must be filled in, and the other fields are
    checked for type and format only (the rules a draft must meet to be stored).
    """
    errors: dict[str, str] = {}
    for error in sorted(form.validator.iter_errors(dict(values)), key=lambda e: len(e.path)):
        name = _field_of(error)
        if required is not None and error.validator in _COMPLETENESS and name not in required:
            continue
        f = form.field(name) if name else None
        title = f.title if f else (name or "表单")
        errors.setdefault(name or "__all__", f"{title}：{_message(error, f)}")
    return errors


def _field_of(error: jsonschema.ValidationError) -> str:
    if error.path:
        return str(error.path[0])
    if error.validator == "required":
        missing = error.message.split("'")
        return missing[1] if len(missing) > 1 else ""
    return ""


def _message(error: jsonschema.ValidationError, f: Field | None) -> str:
    v, arg = error.validator, error.validator_value
    if v == "required":
        return "必填"
    if v == "minLength":
        return "必填" if arg <= 1 else f"至少 {arg} 个字"
    if v == "maxLength":
        return f"不能超过 {arg} 个字"
    if v == "minimum":
        return f"不能小于 {arg}"
    if v == "maximum":
        return f"不能大于 {arg}"
    if v == "minItems":
        return "请至少选择一项" if arg == 1 else f"请至少选择 {arg} 项"
    if v == "maxItems":
        return f"最多选择 {arg} 项"
    if v == "uniqueItems":
        return "不能重复选择"
    if v in ("enum", "const"):
        return "请从列表中选择"
    if v == "pattern":
        return f"格式不正确，应为{f.description}" if f is not None and f.description else "格式不正确"
    if v == "type":
        return {"integer": "请输入整数", "number": "请输入数字", "string": "请输入文字", "array": "请选择"}.get(arg, "格式不正确")
    return "不符合要求"

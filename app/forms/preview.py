"""The form editor's preview: a draft schema rendered and filled in as the school or staff member will fill it."""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.forms import FormSpec, build_form, parse_submission
from app.forms.checks import MAX_FORM_BYTES, OPTION_LISTS, schema_problems

# Option lists are the plan's and the school's at run time; the preview shows one sample option of each.
SAMPLE_OPTIONS = {name: [("1", f"（示例）{label}")] for name, label in OPTION_LISTS.items()}


@dataclass
class FormPreview:
    """A draft form as the renderer shows it, or why it cannot be shown."""

    problems: list[str]
    form: FormSpec | None = None
    title: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def read_schema(text: str) -> tuple[Any, list[str]]:
    """Parse a form's JSON text; return (schema, problems)."""
    if len(text.encode("utf-8")) > MAX_FORM_BYTES:
        return None, [f"表单过大：不能超过 {MAX_FORM_BYTES // 1024} KB"]
    try:
        return json.loads(text), []
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        return None, [f"不是合法的 JSON{f'（第 {line} 行）' if line else ''}：{exc}"]


def preview(text: str, posted: Any | None = None) -> FormPreview:
    """Render a draft schema; with posted values, check them as submitting the real form would."""
    schema, problems = read_schema(text)
    if not problems:
        problems = schema_problems(schema)
    if problems:
        return FormPreview(problems)
    form = build_form(schema, SAMPLE_OPTIONS)
    title = str(schema.get("title") or "") if isinstance(schema, Mapping) else ""
    if posted is None:
        return FormPreview([], form, title)
    _, errors, typed = parse_submission(form, posted)
    return FormPreview([], form, title, typed, errors)

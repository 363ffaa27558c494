"""The SMS template registry: national templates (shipped in bpmn/sms-templates.json) and a province's own text of
one, edited by analysts in the browser; every save is kept as a revision.

A message is rendered when it is queued, from the template in force for its province (the province's own text,
else the national one), and keeps that text and the provider's template code: editing a template never changes a
message already queued.
"""
from __future__ import annotations

import json
import re
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app import clock
from app.sms.models import NATIONAL, SmsTemplate, SmsTemplateRevision

SHIPPED_FILE = "sms-templates.json"
NAME_RULE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
PLACEHOLDER_RULE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_TEXT = 500
# Sample values for previews and dry runs, by placeholder; others get a generic sample.
SAMPLES: dict[str, str] = {
    "school": "演示职业技术学院", "username": "4144010001", "password": "Ab3dE5fG", "certificate": "Web前端开发职业技能等级证书",
    "level": "中级", "comment": "请补充师资情况说明", "plan": "2026年第一批证书试点申报", "name": "张老师",
    "deadline": "2026-12-31 17:00",
}


class TemplateError(ValueError):
    """A template text that cannot be used, with the reason in Chinese."""


@dataclass(frozen=True)
class TemplateText:
    """A text a template name may render to, and the scope it is in force for ("" national)."""

    scope: str
    text: str
    system_variables: Mapping[str, str] = field(default_factory=dict)


def placeholders(text: str) -> list[str]:
    """Return the named placeholders of a text in order of appearance; raise TemplateError if it is malformed."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise TemplateError(f"花括号不成对（{exc}）：占位符写作 {{school}}，文字中的花括号写作 {{{{ 和 }}}}") from None
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if not PLACEHOLDER_RULE.match(name) or spec or conversion:
            raise TemplateError(f"占位符 {{{name}}} 不合法：只能是字母开头的字母、数字、下划线，如 {{school}}")
        if name not in names:
            names.append(name)
    return names


def render_text(text: str, params: Mapping[str, Any]) -> str:
    """Fill a template text; unknown placeholders stay visible rather than failing."""

    class _Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return text.format_map(_Keep({k: ("" if v is None else v) for k, v in params.items()}))


def resolve(session: Session, name: str, province_code: str | None) -> SmsTemplate | None:
    """Return the template in force for a province: its own text of the template, else the national one."""
    scopes = [NATIONAL] + ([province_code] if province_code else [])
    rows = session.scalars(select(SmsTemplate).where(SmsTemplate.name == name, SmsTemplate.scope.in_(scopes))).all()
    own = [r for r in rows if r.scope != NATIONAL]
    return own[0] if own else (rows[0] if rows else None)


def texts_for_scope(session: Session, province_code: str | None) -> dict[str, list[TemplateText]]:
    """Return every text each template may render to for instances of a version of this scope.

    A province's version renders the province's own text where it has one, else the national text; a national
    version runs in every province without its own version, so each province's own text counts too.
    """
    stmt = select(SmsTemplate)
    if province_code:
        stmt = stmt.where(or_(SmsTemplate.scope == NATIONAL, SmsTemplate.scope == province_code))
    rows = session.scalars(stmt.order_by(SmsTemplate.name, SmsTemplate.scope)).all()
    found: dict[str, list[TemplateText]] = {}
    for row in rows:
        found.setdefault(row.name, []).append(TemplateText(row.scope, row.text, dict(row.system_variables or {})))
    if province_code:
        for name, texts in found.items():
            own = [t for t in texts if t.scope == province_code]
            if own:
                found[name] = own
    return found


def shipped_templates(bpmn_path: Path) -> list[dict[str, Any]]:
    """Return the national templates shipped with the app."""
    data = json.loads((bpmn_path / SHIPPED_FILE).read_text("utf-8"))
    return list(data["templates"])


def install_national_templates(session: Session, bpmn_path: Path) -> int:
    """Add the shipped national templates the registry lacks (an analyst's edits are kept); return how many."""
    existing = {row.name: row for row in session.scalars(select(SmsTemplate).where(SmsTemplate.scope == NATIONAL))}
    added = 0
    for item in shipped_templates(bpmn_path):
        row = existing.get(item["name"])
        variables = dict(item.get("variables") or {})
        if row is not None:
            if dict(row.system_variables or {}) != variables:
                row.system_variables = variables  # what the app fills is the app's, not the analyst's
            continue
        placeholders(item["text"])  # a shipped text that does not parse is a defect of the release: fail loudly
        row = SmsTemplate(name=item["name"], scope=NATIONAL, label=item["label"], text=item["text"],
                          provider_code=item.get("provider_code", ""), system_variables=variables, version=1,
                          updated_at=clock.now(), updated_by="system")
        session.add(row)
        session.flush()
        session.add(_revision(row, "随系统安装"))
        added += 1
    if added:
        session.flush()
    return added


def _revision(row: SmsTemplate, note: str) -> SmsTemplateRevision:
    return SmsTemplateRevision(template_id=row.id, version=row.version, label=row.label, text=row.text,
                               provider_code=row.provider_code, note=note, changed_at=row.updated_at,
                               changed_by=row.updated_by)


def labels(session: Session, names: Iterable[str]) -> dict[str, str]:
    """Return what each named template is about (its national label)."""
    wanted = sorted(set(names))
    if not wanted:
        return {}
    return {name: label for name, label in session.execute(
        select(SmsTemplate.name, SmsTemplate.label).where(SmsTemplate.name.in_(wanted), SmsTemplate.scope == NATIONAL))}


def sample_params(names: Iterable[str], given: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return sample values for the placeholders (given values win) for a preview."""
    given = given or {}
    return {name: given.get(name) or SAMPLES.get(name, f"示例{name}") for name in names}

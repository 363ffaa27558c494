"""Analysts' work on the SMS template registry: list, add, edit with history, a province's own text, preview.

An edit that would leave a placeholder unfilled is refused: every published version in force that names the
template must fill each placeholder of the new text (the app fills the placeholders of the templates it sends
itself, listed as the template's system variables).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.core.errors import Forbidden, NotFound, ServiceError
from app.engine import engine
from app.engine.checks import message_usages
from app.masterdata.models import Division
from app.processes.models import ProcessVersion
from app.sms.models import NATIONAL, AuditEntry, SmsTemplate, SmsTemplateRevision
from app.sms.recipients import filled_by_selector
from app.sms.templates import MAX_TEXT, NAME_RULE, TemplateError, placeholders, render_text, sample_params

EDITORS = (ROLE_ANALYST, ROLE_MINISTRY_ADMIN)
PROCESS_NAMES = {"registration": "院校注册", "declaration": "证书试点申报", "plan": "申报计划"}


@dataclass
class TemplateGroup:
    """A national template and the provinces' own texts of it, as the list shows them."""

    national: SmsTemplate
    overrides: list[SmsTemplate] = field(default_factory=list)


@dataclass
class Usage:
    """A step of a version in force that sends the template."""

    version_id: int
    process: str
    scope: str
    element_id: str
    element_name: str
    filled: set[str] | None  # None: the app fills the placeholders


@dataclass(frozen=True)
class Preview:
    """A template text filled with sample data."""

    text: str
    params: dict[str, str]
    length: int
    error: str = ""


def require_editor(user: User) -> None:
    if user.role not in EDITORS:
        raise Forbidden("只有流程分析员和部级管理员可以管理短信模板")


def list_templates(session: Session, user: User) -> list[TemplateGroup]:
    """Return every national template with the provinces' own texts of it, by name."""
    require_editor(user)
    groups: dict[str, TemplateGroup] = {}
    rows = session.scalars(select(SmsTemplate).order_by(SmsTemplate.name, SmsTemplate.scope)).all()
    for row in rows:
        if row.scope == NATIONAL:
            groups[row.name] = TemplateGroup(row)
    for row in rows:
        if row.scope != NATIONAL and row.name in groups:
            groups[row.name].overrides.append(row)
    return list(groups.values())


def get_template(session: Session, user: User, template_id: int) -> SmsTemplate:
    require_editor(user)
    row = session.get(SmsTemplate, template_id)
    if row is None:
        raise NotFound("该短信模板不存在")
    return row


def new_values(session: Session, name: str, scope: str) -> dict[str, str]:
    """The form of a new template: a province's own text starts from the national one."""
    values = {"name": name.strip(), "scope": scope.strip(), "label": "", "text": "", "provider_code": "", "note": ""}
    national = session.scalars(select(SmsTemplate).where(SmsTemplate.name == values["name"],
                                                         SmsTemplate.scope == NATIONAL)).first()
    if national is not None:
        values.update(label=national.label, text=national.text, provider_code=national.provider_code)
    return values


def history(session: Session, template_id: int) -> list[SmsTemplateRevision]:
    """Return the saved states of a template, newest first."""
    return list(session.scalars(select(SmsTemplateRevision).where(SmsTemplateRevision.template_id == template_id)
                                .order_by(SmsTemplateRevision.version.desc())))


def preview(text: str, given: Mapping[str, str] | None = None) -> Preview:
    """Fill a text with sample data (given values win) as the phone would show it."""
    try:
        names = placeholders(text)
    except TemplateError as exc:
        return Preview("", {}, 0, str(exc))
    params = sample_params(names, given)
    shown = render_text(text, params)
    return Preview(shown, params, len(shown))


def create_template(session: Session, user: User, *, name: str, scope: str, label: str, text: str,
                    provider_code: str, note: str) -> SmsTemplate:
    """Add a national template, or a province's own text of a national one."""
    require_editor(user)
    name, scope = name.strip(), scope.strip()
    errors: dict[str, str] = {}
    national = session.scalars(select(SmsTemplate).where(SmsTemplate.name == name,
                                                         SmsTemplate.scope == NATIONAL)).first()
    if not NAME_RULE.match(name):
        errors["name"] = "模板名称：小写字母开头，只用小写字母、数字和下划线，2–64 个字符，如 rejected_reminder"
    elif scope == NATIONAL and national is not None:
        errors["name"] = f"模板名称：全国模板“{name}”已存在，请直接修改它"
    elif scope != NATIONAL and national is None:
        errors["name"] = f"模板名称：省份文字只能为已有的全国模板设置，“{name}”不是全国模板"
    if scope != NATIONAL:
        if session.get(Division, scope) is None or len(scope) != 6:
            errors["scope"] = "适用范围：请选择全国或一个省份"
        elif session.scalars(select(SmsTemplate.id).where(SmsTemplate.name == name,
                                                          SmsTemplate.scope == scope)).first() is not None:
            errors["scope"] = "适用范围：该省已有此模板的文字，请直接修改它"
    system = dict(national.system_variables or {}) if national is not None and scope != NATIONAL else {}
    row = SmsTemplate(name=name, scope=scope, label=label.strip() or (national.label if national else ""),
                      text=text.strip(), provider_code=provider_code.strip(), system_variables=system, version=1,
                      updated_at=clock.now(), updated_by=user.username)
    errors.update(_content_errors(session, row))
    if errors:
        raise ServiceError("短信模板未保存，请修改标红的字段", errors)
    session.add(row)
    session.flush()
    _record(session, user, row, note.strip() or "新建", "create_sms_template")
    return row


def update_template(session: Session, user: User, template_id: int, *, label: str, text: str, provider_code: str,
                    note: str) -> SmsTemplate:
    """Save a new version of a template; the previous one stays in its history. Messages already queued keep the
    text they were rendered with."""
    row = get_template(session, user, template_id)
    candidate = SmsTemplate(name=row.name, scope=row.scope, label=label.strip(), text=text.strip(),
                            provider_code=provider_code.strip(), system_variables=dict(row.system_variables or {}))
    errors = _content_errors(session, candidate)
    if not note.strip():
        errors["note"] = "修改说明：请说明这次改了什么、为什么"
    if errors:
        raise ServiceError("短信模板未保存，请修改标红的字段", errors)
    if (row.label, row.text, row.provider_code) == (candidate.label, candidate.text, candidate.provider_code):
        raise ServiceError("内容没有变化，未保存新版本", {})
    row.label, row.text, row.provider_code = candidate.label, candidate.text, candidate.provider_code
    row.version += 1
    row.updated_at = clock.now()
    row.updated_by = user.username
    session.flush()
    _record(session, user, row, note.strip(), "edit_sms_template")
    return row


def _record(session: Session, user: User, row: SmsTemplate, note: str, action: str) -> None:
    session.add(SmsTemplateRevision(template_id=row.id, version=row.version, label=row.label, text=row.text,
                                    provider_code=row.provider_code, note=note[:500], changed_at=row.updated_at,
                                    changed_by=user.username))
    where = row.scope or "全国"
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action=action, target=f"sms_template:{row.id}",
                           detail=f"{user.display_name or user.username} 保存短信模板 {row.name}（{where}）"
                                  f"第 {row.version} 版：{note[:200]}"))
    session.flush()


def _content_errors(session: Session, row: SmsTemplate) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not row.label:
        errors["label"] = "用途：请填写模板的用途，如“审核不通过通知”"
    elif len(row.label) > 64:
        errors["label"] = "用途：不能超过 64 个字"
    if len(row.provider_code) > 64:
        errors["provider_code"] = "服务商模板编号：不能超过 64 个字符"
    if not row.text:
        errors["text"] = "短信内容：请填写短信内容"
        return errors
    if len(row.text) > MAX_TEXT:
        errors["text"] = f"短信内容：不能超过 {MAX_TEXT} 个字"
        return errors
    try:
        names = placeholders(row.text)
    except TemplateError as exc:
        errors["text"] = f"短信内容：{exc}"
        return errors
    system = dict(row.system_variables or {})
    if system:
        extra = [n for n in names if n not in system]
        if extra:
            errors["text"] = (f"短信内容：此模板由系统发送，只能使用占位符 {'、'.join('{' + k + '}' for k in system)}"
                              f"（{'、'.join(system.values())}），不能使用 {'、'.join('{' + n + '}' for n in extra)}")
            return errors
    gaps = [f"{u.process}流程（{u.scope}）版本 #{u.version_id} 的步骤 {u.element_id}（{u.element_name}）没有填写 "
            + "、".join("{" + n + "}" for n in names if n not in u.filled)
            for u in usages(session, row.name, row.scope) if u.filled is not None and set(names) - u.filled]
    if gaps:
        errors["text"] = "短信内容：正在使用此模板的流程不能填写新的占位符，请先修改流程或去掉这些占位符：" + "；".join(gaps)
    return errors


def usages(session: Session, name: str, scope: str) -> list[Usage]:
    """Return the steps of the versions in force that would render this template's text of the scope."""
    versions = session.scalars(select(ProcessVersion).where(ProcessVersion.active.is_(True))).all()
    own_texts = {row.scope for row in session.scalars(select(SmsTemplate).where(SmsTemplate.name == name))}
    with_own_version = {(v.process_key, v.province_code) for v in versions if v.province_code}
    found = []
    eng = engine()
    for v in versions:
        if scope == NATIONAL:
            applies = v.province_code is None or v.province_code not in own_texts
        else:
            applies = v.province_code == scope or (v.province_code is None
                                                   and (v.process_key, scope) not in with_own_version)
        if not applies:
            continue
        for u in message_usages(eng.parsed(v)):
            if u.template != name:
                continue
            filled = None if u.filled is None else set(u.filled)
            if filled is not None and u.operation == "sms_many":
                filled |= set(filled_by_selector(u.selector, "plan_id" in u.param_names))
            found.append(Usage(v.id, PROCESS_NAMES.get(v.process_key, v.process_key), v.province_code or "全国",
                               u.element_id, u.element_name, filled))
    return found

"""Who a message to many goes to: declarative selectors a diagram passes to sms_many, checked at publish.

A selector is a literal dict, for example

    {'kind': 'schools_with_declaration', 'meaning': 'rejected'}    schools of the plan with a declaration 审核不通过
    {'kind': 'schools_all_declarations', 'meaning': 'expired'}     schools of the plan whose declarations all expired
    {'kind': 'province_reviewers'}                                 the reviewers of the province

`meaning` is a status meaning of app.engine.vocabulary (or a list of them), never a province's word, so that the
selector means the same whatever a province calls its statuses.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, ROLE_SCHOOL, User
from app.declarations.models import Declaration
from app.engine.vocabulary import MEANINGS
from app.masterdata.models import School

SCHOOL_VARIABLES = {"school": "院校名称"}
STAFF_VARIABLES = {"name": "姓名"}
PLAN_VARIABLES = {"plan": "申报计划名称（给出 plan_id 时）"}


@dataclass(frozen=True)
class SelectorKind:
    """A kind of selector: what it picks, whether it needs a meaning and a plan, what it fills per recipient."""

    label: str
    needs_meaning: bool
    needs_plan: bool
    fills: Mapping[str, str]


SELECTORS: dict[str, SelectorKind] = {
    "schools_with_declaration": SelectorKind("本计划中有申报处于所给状态含义的院校", True, True, SCHOOL_VARIABLES),
    "schools_all_declarations": SelectorKind("本计划中全部申报都处于所给状态含义的院校", True, True, SCHOOL_VARIABLES),
    "province_reviewers": SelectorKind("本省的省级审核员", False, False, STAFF_VARIABLES),
    "province_admins": SelectorKind("本省的省级管理员", False, False, STAFF_VARIABLES),
}


@dataclass(frozen=True)
class Recipient:
    """One account a message to many goes to, with the placeholders filled for it."""

    user_id: int
    phone: str
    variables: dict[str, str]


def selector_problems(selector: Any, has_plan: bool) -> list[str]:
    """Return why a selector cannot be used (empty when it can)."""
    kinds = "、".join(f"{k}（{v.label}）" for k, v in SELECTORS.items())
    if not isinstance(selector, dict):
        return [f"selector 参数必须是字典常量，如 {{'kind': 'schools_with_declaration', 'meaning': 'rejected'}}；"
                f"kind 可选：{kinds}"]
    kind = SELECTORS.get(str(selector.get("kind", "")))
    if kind is None:
        return [f"selector 的 kind “{selector.get('kind', '')}”未知，可选：{kinds}"]
    problems = []
    unknown = sorted(set(selector) - {"kind", "meaning"})
    if unknown:
        problems.append(f"selector 不认识这些键：{', '.join(unknown)}（只有 kind 和 meaning）")
    if kind.needs_meaning:
        meanings = meanings_of(selector)
        if not meanings or any(m not in MEANINGS for m in meanings):
            problems.append("selector 的 meaning 必须是状态含义（或其列表），可选："
                            + "、".join(f"{k}（{v[0]}）" for k, v in MEANINGS.items()))
    if kind.needs_plan and not has_plan:
        problems.append(f"selector “{selector['kind']}”按申报计划选择院校，服务任务须给出 plan_id 参数")
    return problems


def meanings_of(selector: Mapping[str, Any]) -> list[str]:
    """Return the status meanings a selector names."""
    value = selector.get("meaning")
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return list(value)
    return []


def filled_by_selector(selector: Any, has_plan: bool) -> dict[str, str]:
    """Return the placeholders sms_many fills for each recipient of this selector."""
    kind = SELECTORS.get(str(selector.get("kind", ""))) if isinstance(selector, dict) else None
    fills = dict(kind.fills) if kind else {}
    if has_plan:
        fills.update(PLAN_VARIABLES)
    return fills


def select_recipients(session: Session, selector: Mapping[str, Any], *, plan_id: int | None,
                      province_code: str | None) -> list[Recipient]:
    """Return the active accounts with a phone that the selector picks, in a stable order."""
    problems = selector_problems(dict(selector), plan_id is not None)
    if problems:
        raise ValueError("；".join(problems))
    kind = str(selector["kind"])
    if kind in ("province_reviewers", "province_admins"):
        role = ROLE_PROVINCE_REVIEWER if kind == "province_reviewers" else ROLE_PROVINCE_ADMIN
        staff = session.execute(select(User.id, User.phone, User.display_name, User.username).where(
            User.role == role, User.province_code == (province_code or ""), User.is_active_account.is_(True),
            User.phone.is_not(None), User.phone != "").order_by(User.id)).all()
        return [Recipient(r.id, r.phone, {"name": r.display_name or r.username}) for r in staff]
    meanings = meanings_of(selector)
    in_meaning = Declaration.status_meaning.in_(meanings)
    schools = select(Declaration.school_id).where(Declaration.plan_id == plan_id).group_by(Declaration.school_id)
    if kind == "schools_with_declaration":
        schools = schools.having(func.sum(case((in_meaning, 1), else_=0)) > 0)
    else:
        schools = schools.having(func.sum(case((in_meaning, 0), else_=1)) == 0)
    rows = session.execute(select(User.id, User.phone, School.name).join(School, School.id == User.school_id).where(
        User.school_id.in_(schools), User.role == ROLE_SCHOOL, User.is_active_account.is_(True),
        User.phone.is_not(None), User.phone != "").order_by(User.id)).all()
    return [Recipient(r.id, r.phone, {"school": r.name}) for r in rows]

"""Any staff role's inbox: the open tasks of its lanes in its scope, done through the task's own form.

Review roles added by analysts (for example a city-level first review) work here without new code: a
diagram lane names the role, users of the role see the tasks of their province or city.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import ROLE_PROVINCE_REVIEWER, ROLE_SCHOOL, User
from app.accounts.role_models import SCOPE_CITY, SCOPE_PROVINCE, Role
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import lifecycle
from app.declarations.models import Declaration
from app.engine import engine
from app.engine.runtime import EngineError, TaskNotAvailable
from app.forms import FormSpec, build_form, validate
from app.masterdata.models import Division, School
from app.processes.models import HumanTask, ProcessInstance, ProcessVersion

QUEUE_ROLES = (ROLE_PROVINCE_REVIEWER,)  # province_admin tasks (registration approvals, say) are done here


@dataclass
class Registrant:
    """Who a registration task is about: the school, where it is, and the phone that registered it."""

    school_name: str
    school_code: str
    province: str
    city: str
    phone: str
    registered_at: datetime


def registrants(session: Session, tasks: list[HumanTask]) -> dict[int, Registrant]:
    """Return, by task id, the registrant of each registration task (subject: the registered account)."""
    ids = {t.subject_id for t in tasks if t.subject_type == "user"}
    if not ids:
        return {}
    province, city = aliased(Division), aliased(Division)
    rows = session.execute(
        select(User.id, School.name, School.code, province.name, city.name, User.phone, User.created_at)
        .join(School, School.id == User.school_id).outerjoin(province, province.code == School.province_code)
        .outerjoin(city, city.code == School.city_code).where(User.id.in_(ids))).all()
    by_user = {r[0]: Registrant(r[1], r[2], r[3] or "", r[4] or "", r[5] or "", r[6]) for r in rows}
    return {t.id: by_user[t.subject_id] for t in tasks if t.subject_type == "user" and t.subject_id in by_user}


def _scoped(session: Session, user: User) -> Any:
    role = session.get(Role, user.role)
    if role is None or user.role == ROLE_SCHOOL:
        raise Forbidden("该账号没有待办事项")
    if user.role in QUEUE_ROLES:
        # Provincial review goes through the review queue, where claims keep two reviewers apart.
        raise Forbidden("省级审核请在“审核”队列中办理")
    stmt = select(HumanTask).where(HumanTask.lane == user.role, HumanTask.completed_at.is_(None))
    if role.scope in (SCOPE_PROVINCE, SCOPE_CITY):
        stmt = stmt.where(HumanTask.province_code == user.province_code)
    if role.scope == SCOPE_CITY:
        stmt = stmt.where(HumanTask.city_code == user.city_code)
    return stmt


def inbox(session: Session, user: User) -> list[tuple[HumanTask, Declaration | None]]:
    """Return the user's open tasks, oldest first, with their declarations (registrants: see registrants)."""
    tasks = list(session.scalars(_scoped(session, user).order_by(HumanTask.created_at, HumanTask.id).limit(500)))
    decls = {d.id: d for d in session.scalars(select(Declaration).where(Declaration.id.in_(
        [t.subject_id for t in tasks if t.subject_type == "declaration"])))} if tasks else {}
    return [(t, decls.get(t.subject_id) if t.subject_type == "declaration" else None) for t in tasks]


def task_context(session: Session, user: User, task_id: int) -> tuple[HumanTask, Declaration | None, FormSpec]:
    """Return an open task of the user's lanes and scope, its declaration and its form."""
    task = session.scalars(_scoped(session, user).where(HumanTask.id == task_id)).first()
    if task is None:
        raise NotFound("该事项不存在、已办结或不在您的范围内")
    instance = session.get(ProcessInstance, task.instance_id)
    version = session.get(ProcessVersion, instance.version_id) if instance else None
    forms = version.forms if version else {}
    if not task.form or task.form not in forms:
        raise NotFound("该事项的表单不存在")
    decl = session.get(Declaration, task.subject_id) if task.subject_type == "declaration" else None
    return task, decl, build_form(forms[task.form])


def complete(session: Session, user: User, task_id: int, values: Mapping[str, Any]) -> HumanTask:
    """Complete the task with the submitted form; a declaration's status follows its process."""
    task, decl, form = task_context(session, user, task_id)
    errors = validate(form, values)
    if errors:
        raise ServiceError("表单信息有误", errors)
    decision = values.get("decision")
    step = lifecycle.task_done(decl, user, task.title, decision, form.choice_label("decision", decision),
                               values.get("comment") or None) if decl is not None else None
    try:
        engine().complete_task(session, task.instance_id, task.task_id, actor_id=user.id, lanes=[user.role],
                               data=dict(values), side=step)
    except TaskNotAvailable:
        raise Forbidden("该事项已由他人处理，请刷新查看最新状态") from None
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc
    return task
    if step is not None:
        return task

"""Provincial review of submitted declarations (the minimal queue; plans and bulk work come later)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock
from app.engine.runtime import EngineError, TaskNotAvailable
from app.forms import FormSpec, build_form, validate
from app.models.declaration import Declaration
from app.models.masterdata import School
from app.models.process import HumanTask
from app.models.user import (
    ROLE_PROVINCE_ADMIN,
    ROLE_PROVINCE_REVIEWER,
    ROLE_SCHOOL,
    User,
)
from app.services.declarations import _event
from app.services.errors import Forbidden, NotFound, ServiceError

REVIEW_LANES = (ROLE_PROVINCE_REVIEWER,)


def _require_reviewer(user: User) -> str:
    if user.role not in (ROLE_PROVINCE_REVIEWER, ROLE_PROVINCE_ADMIN) or not user.province_code:
        raise Forbidden("只有省级审核员可以审核")
    return user.province_code


def queue(session: Session, user: User, page: int = 1, per_page: int = 20) -> tuple[list[tuple[HumanTask, Declaration]], int]:
    """Return the province's declarations waiting for review, oldest first, and their count."""
    province = _require_reviewer(user)
    base = (select(HumanTask, Declaration)
            .join(Declaration, (Declaration.instance_id == HumanTask.instance_id))
            .where(HumanTask.lane.in_(REVIEW_LANES), HumanTask.province_code == province,
                   HumanTask.completed_at.is_(None)))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.execute(base.order_by(HumanTask.created_at, HumanTask.id)
                           .offset((page - 1) * per_page).limit(per_page)).all()
    return [(t, d) for t, d in rows], total


def review_context(session: Session, user: User, declaration_id: int) -> tuple[Declaration, HumanTask | None, FormSpec]:
    """Return a declaration of the reviewer's province, its open review task and the review form."""
    from app.services.processes import engine

    province = _require_reviewer(user)
    decl = session.get(Declaration, declaration_id)
    if decl is None or decl.province_code != province:
        raise NotFound("申报不存在")
    task = session.scalars(select(HumanTask).where(
        HumanTask.instance_id == decl.instance_id, HumanTask.lane.in_(REVIEW_LANES),
        HumanTask.completed_at.is_(None))).first()
    version_forms = engine().resolve_version(session, "declaration", province).forms
    form_name = task.form if task is not None and task.form else "review-form.json"
    return decl, task, build_form(version_forms.get(form_name) or version_forms["review-form.json"])


def decide(session: Session, user: User, declaration_id: int, values: Mapping[str, Any]) -> Declaration:
    """Record a reviewer's decision on a declaration waiting for review."""
    from app.services.processes import engine

    decl, task, form = review_context(session, user, declaration_id)
    errors = validate(form, values)
    if errors:
        raise ServiceError("审核信息有误", errors)
    if task is None or decl.instance_id is None:
        raise Forbidden(f"该申报当前状态为“{decl.status}”，不在待审核状态，不能重复审核")
    try:
        outcome = engine().complete_task(session, decl.instance_id, task.task_id, actor_id=user.id,
                                         lanes=REVIEW_LANES, data={"decision": values["decision"],
                                                                   "comment": values.get("comment", "")})
    except TaskNotAvailable:
        raise Forbidden("该申报已由其他审核员处理，请刷新查看最新结果") from None
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc
    decl.status = outcome.status
    decl.locked = not any(t.lane == ROLE_SCHOOL for t in outcome.open_tasks)
    decl.decided_at = clock.now()
    decl.review_comment = values.get("comment") or None
    label = "审核通过" if values["decision"] == "approve" else "审核不通过"
    _event(session, decl, user, values["decision"], label, comment=values.get("comment") or label)
    return decl


def school_of(session: Session, decl: Declaration) -> School:
    """Return the declaring school."""
    school = session.get(School, decl.school_id)
    assert school is not None
    return school

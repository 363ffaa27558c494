"""One staff inbox (我的待办): the open tasks of every lane a staff user works, in its role's scope, each with its
subject named (school, certificate, plan), done through the task's own form.

Roles added by analysts work here without new code: a diagram lane names the role, and users of the role see the
tasks of their province, their city, their certificates (or their organisation's), or of the whole nation. The
provincial review tasks are here too; the review queue stays the specialised view for them, and a decision taken
here goes through the same service (claims keep two reviewers apart).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from app.accounts.models import User
from app.accounts.scopes import StaffScope, staff_scope
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import lifecycle
from app.declarations.models import Declaration
from app.engine import engine
from app.engine.runtime import EngineError, TaskNotAvailable
from app.forms import FormSpec, build_form, validate
from app.masterdata.models import Certificate, Division, School
from app.plans.models import DeclarationPlan, PlanCertificate
from app.processes.models import HumanTask, ProcessInstance, ProcessVersion
from app.review import services as review_service
from app.review.queue_queries import REVIEW_LANES

INBOX_LIMIT = 500


@dataclass
class TaskSubject:
    """What a task is about, by name: the school, the certificate (and level) and the plan."""

    school: str = ""
    certificate: str = ""
    plan: str = ""


@dataclass
class InboxRow:
    """One open task of the inbox with its subject named."""

    task: HumanTask
    subject: TaskSubject

    @property
    def is_review(self) -> bool:
        """Whether this is a provincial review task (the review queue is its specialised view)."""
        return self.task.lane in REVIEW_LANES and self.task.subject_type == "declaration"


def scope_terms(scope: StaffScope) -> list[Any]:
    """The terms that keep open human tasks to a scope's lanes, province, city and certificates."""
    terms: list[Any] = [HumanTask.lane.in_(scope.lanes), HumanTask.completed_at.is_(None)]
    if scope.province_code is not None:
        terms.append(HumanTask.province_code == scope.province_code)
    if scope.city_code is not None:
        terms.append(HumanTask.city_code == scope.city_code)
    if scope.certificate_ids is not None:
        certificates = sorted(scope.certificate_ids)
        # A declaration's certificate is read from the declaration (a school may change it before resubmitting);
        # a plan is within the scope when it offers one of the certificates.
        terms.append(or_(
            and_(HumanTask.subject_type == "declaration", HumanTask.subject_id.in_(
                select(Declaration.id).where(Declaration.certificate_id.in_(certificates)))),
            and_(HumanTask.subject_type == "plan", HumanTask.subject_id.in_(
                select(PlanCertificate.plan_id).where(PlanCertificate.certificate_id.in_(certificates))))))
    return terms


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
    return select(HumanTask).where(*scope_terms(staff_scope(session, user)))


def task_subjects(session: Session, tasks: list[HumanTask]) -> dict[tuple[str, int], TaskSubject]:
    """Name the subjects of tasks: one statement per kind of subject, never one per task."""
    ids: dict[str, set[int]] = {}
    for task in tasks:
        ids.setdefault(task.subject_type, set()).add(task.subject_id)
    named: dict[tuple[str, int], TaskSubject] = {}
    if ids.get("declaration"):
        for decl_id, school, certificate, level, plan in session.execute(
                select(Declaration.id, School.name, Certificate.name, Declaration.level, DeclarationPlan.name)
                .join(School, School.id == Declaration.school_id)
                .join(Certificate, Certificate.id == Declaration.certificate_id)
                .outerjoin(DeclarationPlan, DeclarationPlan.id == Declaration.plan_id)
                .where(Declaration.id.in_(ids["declaration"]))):
            named[("declaration", decl_id)] = TaskSubject(school, f"{certificate}（{level}）" if level else certificate,
                                                          plan or "")
    if ids.get("plan"):
        for plan_id, plan in session.execute(select(DeclarationPlan.id, DeclarationPlan.name)
                                             .where(DeclarationPlan.id.in_(ids["plan"]))):
            named[("plan", plan_id)] = TaskSubject(plan=plan)
    if ids.get("user"):  # a school's account (registration)
        for user_id, school in session.execute(select(User.id, School.name).join(School, School.id == User.school_id)
                                               .where(User.id.in_(ids["user"]))):
            named[("user", user_id)] = TaskSubject(school=school)
    return named


def inbox(session: Session, user: User) -> list[InboxRow]:
    """Return the user's open tasks of every lane it works, oldest first, with their subjects named."""
    tasks = list(session.scalars(_scoped(session, user).order_by(HumanTask.created_at, HumanTask.id)
                                 .limit(INBOX_LIMIT)))
    named = task_subjects(session, tasks)
    return [InboxRow(t, named.get((t.subject_type, t.subject_id), TaskSubject())) for t in tasks]


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
    if decl is not None and task.lane in REVIEW_LANES:
        # The provincial review: the same decision as in the review queue, under its claims.
        review_service.decide(session, user, decl.id, values)
        return task
    decision = values.get("decision")
    step = lifecycle.task_done(decl, user, task.title, decision, form.choice_label("decision", decision),
                               values.get("comment") or None) if decl is not None else None
    try:
        engine().complete_task(session, task.instance_id, task.task_id, actor_id=user.id, lanes=[task.lane],
                               data=dict(values), side=step)
    except TaskNotAvailable:
        raise Forbidden("该事项已由他人处理，请刷新查看最新状态") from None
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc
    return task

"""A plan's deadlines: closing the window, computing results, ending the announcement. Bulk and idempotent."""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_SCHOOL, User
from app.core.transactions import after_commit
from app.declarations import lifecycle
from app.declarations.models import Declaration
from app.engine import engine
from app.engine.vocabulary import APPROVED
from app.masterdata.models import School
from app.plans.models import PLAN_ANNOUNCING, PLAN_CLOSED, PLAN_FINISHED, DeclarationPlan, PlanResult
from app.processes.jobs import enqueue_deliveries
from app.processes.models import HumanTask
from app.sms import services as sms
from app.sms import templates as sms_templates
from app.sms.models import SmsMessage


def _lock_plan(session: Session, plan_id: int) -> DeclarationPlan:
    plan = session.scalars(select(DeclarationPlan).where(DeclarationPlan.id == plan_id).with_for_update()
                           .execution_options(populate_existing=True)).first()
    if plan is None:
        raise ValueError(f"申报计划 {plan_id} 不存在")
    return plan


def close_plan(session: Session, plan_id: int, notify_drafts: bool = True) -> dict[str, Any]:
    """Close the window: drafts expire, declarations returned to the school can no longer change, schools with only
    drafts are told (unless notify_drafts is False: the plan process then tells them with a message to many)."""
    plan = _lock_plan(session, plan_id)
    if plan.closed_at is not None:
        return {"already": True, "expired": 0, "notified": 0}
    plan.status = PLAN_CLOSED
    plan.closed_at = clock.now()
    open_school_tasks = (select(Declaration.id, Declaration.instance_id, Declaration.status,
                                Declaration.status_meaning, Declaration.school_id)
                         .join(HumanTask, and_(HumanTask.instance_id == Declaration.instance_id,
                                               HumanTask.lane == ROLE_SCHOOL, HumanTask.completed_at.is_(None)))
                         .where(Declaration.plan_id == plan_id))
    rows = session.execute(open_school_tasks).all()
    eng = engine()
    closed = lifecycle.close_window(session, rows, eng.vocabulary(session, "declaration", plan.province_code),
                                    plan.ends_at)
    instances = {r.id: r.instance_id for r in rows if r.instance_id}
    eng.terminate_many(session, [instances[i] for i in closed.expired if i in instances], closed.expired_status)
    for status in set(closed.final_status.values()):
        eng.terminate_many(session, [instances[i] for i, s in closed.final_status.items() if s == status and i in instances],
                           status)
    expired = set(closed.expired)
    notified = 0
    if notify_drafts:
        notified = _notify_draft_only_schools(session, plan, {r.school_id for r in rows if r.id in expired})
    return {"already": False, "expired": len(closed.expired), "locked_rejected": len(closed.locked),
            "notified": notified}


def _notify_draft_only_schools(session: Session, plan: DeclarationPlan, school_ids: set[int]) -> int:
    if not school_ids:
        return 0
    submitted = set(session.scalars(select(Declaration.school_id).where(
        Declaration.plan_id == plan.id, Declaration.submitted_at.is_not(None)).distinct()))
    targets = sorted(school_ids - submitted)
    recipients = session.execute(select(School.id, School.name, User.phone).join(User, User.school_id == School.id)
                                 .where(School.id.in_(targets), User.phone.is_not(None))).all() if targets else []
    keys = [f"plan:{plan.id}:drafts-expired:{r.id}" for r in recipients]
    existing = set(session.scalars(select(SmsMessage.idempotency_key).where(SmsMessage.idempotency_key.in_(keys)))) if keys else set()
    rows = []
    template = sms_templates.resolve(session, "drafts_expired", plan.province_code)
    if template is None:
        raise ValueError("未知短信模板：drafts_expired（请在“短信模板”页面添加）")
    backend = sms.configured_backend_name()
    for r, key in zip(recipients, keys):
        if key in existing:
            continue
        rows.append(sms.message_row(template, key=key, phone=r.phone, params={"school": r.name, "plan": plan.name},
                                    backend=backend, province_code=plan.province_code))
    if rows:
        session.execute(insert(SmsMessage), rows)
        ids = list(session.scalars(select(SmsMessage.id).where(SmsMessage.idempotency_key.in_([r["idempotency_key"] for r in rows]))))
        after_commit(session, lambda: enqueue_deliveries(ids))
    return len(rows)


def compute_results(session: Session, plan_id: int) -> dict[str, Any]:
    """Make every school with at least one approved certificate in the plan a 试点院校 for it."""
    plan = _lock_plan(session, plan_id)
    if plan.results_at is not None:
        return {"already": True}
    now = clock.now()
    counts = session.execute(
        select(Declaration.school_id, func.count(Declaration.id),
               func.sum(case((Declaration.status_meaning == APPROVED, 1), else_=0)))
        .where(Declaration.plan_id == plan_id).group_by(Declaration.school_id)).all()
    session.execute(delete(PlanResult).where(PlanResult.plan_id == plan_id))
    rows = [{"plan_id": plan_id, "school_id": school_id, "declared_count": int(declared),
             "approved_count": int(approved or 0), "is_pilot": int(approved or 0) > 0, "computed_at": now}
            for school_id, declared, approved in counts]
    if rows:
        session.execute(insert(PlanResult), rows)
    plan.status = PLAN_ANNOUNCING
    plan.results_at = now
    return {"already": False, "schools": len(rows), "pilots": sum(1 for r in rows if r["is_pilot"])}


def end_announcement(session: Session, plan_id: int) -> dict[str, Any]:
    """End the announcement period; the results stay as the final record."""
    plan = _lock_plan(session, plan_id)
    if plan.status != PLAN_FINISHED:
        plan.status = PLAN_FINISHED
    return {"status": plan.status}

"""A plan's deadlines: closing the window, computing results, ending the announcement. Bulk and idempotent."""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from app import clock
from app.extensions import after_commit
from app.models.declaration import (
    STATUS_APPROVED,
    STATUS_DRAFT,
    STATUS_EXPIRED,
    STATUS_REJECTED,
    Declaration,
    DeclarationEvent,
)
from app.models.masterdata import School
from app.models.plan import PLAN_ANNOUNCING, PLAN_CLOSED, PLAN_FINISHED, DeclarationPlan, PlanResult
from app.models.process import HumanTask
from app.models.sms import SmsMessage
from app.models.user import ROLE_SCHOOL, User
from app.services import sms


def _lock_plan(session: Session, plan_id: int) -> DeclarationPlan:
    plan = session.scalars(select(DeclarationPlan).where(DeclarationPlan.id == plan_id).with_for_update()
                           .execution_options(populate_existing=True)).first()
    if plan is None:
        raise ValueError(f"申报计划 {plan_id} 不存在")
    return plan


def close_plan(session: Session, plan_id: int) -> dict[str, Any]:
    """Close the window: drafts become 已过期, declarations sent back can no longer change, schools with only drafts are told."""
    from app.services.processes import engine

    plan = _lock_plan(session, plan_id)
    if plan.closed_at is not None:
        return {"already": True, "expired": 0, "notified": 0}
    now = clock.now()
    plan.status = PLAN_CLOSED
    plan.closed_at = now
    open_school_tasks = (select(Declaration.id, Declaration.instance_id, Declaration.status, Declaration.school_id)
                         .join(HumanTask, and_(HumanTask.instance_id == Declaration.instance_id,
                                               HumanTask.lane == ROLE_SCHOOL, HumanTask.completed_at.is_(None)))
                         .where(Declaration.plan_id == plan_id))
    rows = session.execute(open_school_tasks).all()
    drafts = [r for r in rows if r.status == STATUS_DRAFT]
    sent_back = [r for r in rows if r.status != STATUS_DRAFT]
    eng = engine()
    eng.terminate_many(session, [r.instance_id for r in drafts if r.instance_id], STATUS_EXPIRED)
    eng.terminate_many(session, [r.instance_id for r in sent_back if r.instance_id], STATUS_REJECTED)
    draft_ids = [r.id for r in drafts]
    for start in range(0, len(draft_ids), 1000):
        session.execute(update(Declaration).where(Declaration.id.in_(draft_ids[start:start + 1000]))
                        .values(status=STATUS_EXPIRED, locked=True, updated_at=now))
    session.execute(update(Declaration).where(Declaration.id.in_([r.id for r in sent_back]))
                    .values(locked=True, updated_at=now)) if sent_back else None
    if draft_ids:
        session.execute(insert(DeclarationEvent), [
            {"declaration_id": i, "at": now, "actor_name": "系统", "action": "expired", "status": STATUS_EXPIRED,
             "comment": f"申报截止（{clock.format_local(plan.ends_at)}），未提交的草稿已过期"} for i in draft_ids])
    notified = _notify_draft_only_schools(session, plan, {r.school_id for r in drafts})
    return {"already": False, "expired": len(draft_ids), "locked_rejected": len(sent_back), "notified": notified}


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
    for r, key in zip(recipients, keys):
        if key in existing:
            continue
        params = {"school": r.name, "plan": plan.name}
        rows.append({"idempotency_key": key, "phone": r.phone, "template": "drafts_expired", "params": params,
                     "body": sms.render("drafts_expired", params), "backend": "outbox", "status": "queued",
                     "attempts": 0, "province_code": plan.province_code, "created_at": clock.now()})
    if rows:
        session.execute(insert(SmsMessage), rows)
        ids = list(session.scalars(select(SmsMessage.id).where(SmsMessage.idempotency_key.in_([r["idempotency_key"] for r in rows]))))
        from app.services.jobs import enqueue_deliveries
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
               func.sum(case((Declaration.status == STATUS_APPROVED, 1), else_=0)))
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

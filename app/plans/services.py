"""Declaration plans (申报计划): publish, edit or withdraw before opening, extend the deadline after."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import clock, refcache
from app.accounts.models import ROLE_PROVINCE_ADMIN, ROLE_SCHOOL, User
from app.accounts.services import normalize_phone
from app.core.errors import Forbidden, NotFound, ServiceError
from app.core.transactions import savepoint
from app.declarations.models import Declaration
from app.engine import engine
from app.engine.runtime import StepFailed
from app.masterdata.models import Certificate, Division
from app.plans.models import PLAN_PUBLISHED, PLAN_WITHDRAWN, DeclarationPlan, PlanCertificate
from app.processes.models import ProcessInstance
from app.sms.models import AuditEntry

PHONE_OR_TEL = r"^(1[3-9][0-9]{9}|0[0-9]{2,3}-?[0-9]{7,8})\Z"


@dataclass
class PlanInput:
    """What the 发布申报计划 form posts, already parsed."""

    name: str
    starts_at: datetime | None
    ends_at: datetime | None
    review_deadline: datetime | None
    announce_days: int | None
    certificate_ids: list[int]
    contact_name: str
    contact_phone: str
    notes: str


def parse_plan_form(form: Any) -> tuple[PlanInput, dict[str, str]]:
    """Parse the posted plan form; times are entered in China time."""
    import re

    errors: dict[str, str] = {}

    def when(field: str, label: str) -> datetime | None:
        raw = (form.get(field) or "").strip()
        if not raw:
            errors[field] = f"{label}：必填"
            return None
        try:
            return clock.parse_local(raw)
        except ValueError:
            errors[field] = f"{label}：请按“年-月-日 时:分”填写"
            return None

    name = (form.get("name") or "").strip()
    if not 4 <= len(name) <= 100:
        errors["name"] = "计划名称：4–100 个字（含年度和批次，如“2026年第一批”）"
    starts_at = when("starts_at", "申报开始时间")
    ends_at = when("ends_at", "申报截止时间")
    review_deadline = when("review_deadline", "审核截止时间")
    days_raw = (form.get("announce_days") or "").strip()
    announce_days = int(days_raw) if days_raw.isdigit() else None
    if announce_days is None or not 1 <= announce_days <= 60:
        errors["announce_days"] = "公示天数：请填写 1–60 的整数"
    cert_ids = [int(v) for v in form.getlist("certificate_ids") if str(v).isdigit()]
    if not cert_ids:
        errors["certificate_ids"] = "开放申报的证书：请至少选择一个证书"
    contact_name = (form.get("contact_name") or "").strip()
    if not 2 <= len(contact_name) <= 32:
        errors["contact_name"] = "联系人：2–32 个字"
    contact_phone = normalize_phone(form.get("contact_phone") or "")
    if not re.match(PHONE_OR_TEL, contact_phone):
        errors["contact_phone"] = "联系电话：11 位手机号或带区号的固定电话"
    notes = (form.get("notes") or "").strip()
    if len(notes) > 2000:
        errors["notes"] = "说明：不能超过 2000 字"
    if starts_at and ends_at and ends_at <= starts_at:
        errors["ends_at"] = "申报截止时间：必须晚于申报开始时间"
    if ends_at and review_deadline and review_deadline <= ends_at:
        errors["review_deadline"] = "审核截止时间：必须晚于申报截止时间"
    return PlanInput(name, starts_at, ends_at, review_deadline, announce_days, cert_ids, contact_name,
                     contact_phone, notes), errors


def _require_admin(user: User) -> str:
    if user.role != ROLE_PROVINCE_ADMIN or not user.province_code:
        raise Forbidden("只有省级管理员可以管理申报计划")
    return user.province_code


def province_plans(session: Session, user: User) -> list[DeclarationPlan]:
    """Return the admin's province's plans, newest first."""
    province = _require_admin(user)
    return list(session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == province)
                                .order_by(DeclarationPlan.starts_at.desc(), DeclarationPlan.id.desc())))


def get_plan(session: Session, user: User, plan_id: int) -> DeclarationPlan:
    """Return a plan of the admin's own province."""
    province = _require_admin(user)
    plan = session.get(DeclarationPlan, plan_id)
    if plan is None or plan.province_code != province:
        raise NotFound("申报计划不存在")
    return plan


def _check_certificates(session: Session, ids: list[int], errors: dict[str, str]) -> list[int]:
    found = set(session.scalars(select(Certificate.id).where(Certificate.id.in_(ids)))) if ids else set()
    if ids and found != set(ids):
        errors["certificate_ids"] = "开放申报的证书：所选证书不在全国证书目录中"
    return sorted(found)


# The plan's data as its own process and every declaration process under it hold it (their expressions may use
# these names; a change to the plan is copied to both and their waiting timers recomputed).
PLAN_DATA_FIELDS = {"plan_id": "申报计划编号", "plan_name": "申报计划名称", "starts_at": "申报开始时间",
                    "ends_at": "申报截止时间", "review_deadline": "审核截止时间", "announce_ends_at": "公示结束时间",
                    "certificates": "开放申报的证书（名称列表）"}


def plan_data(session: Session, plan: DeclarationPlan) -> dict[str, Any]:
    """Return the plan's times and offered certificates as process data (kept between requests)."""
    def compute() -> dict[str, Any]:
        names = list(session.scalars(select(Certificate.name).join(
            PlanCertificate, PlanCertificate.certificate_id == Certificate.id)
            .where(PlanCertificate.plan_id == plan.id).order_by(Certificate.name)))
        return {"plan_id": plan.id, "plan_name": plan.name, "starts_at": plan.starts_at.isoformat(),
                "ends_at": plan.ends_at.isoformat(),
                "review_deadline": (plan.review_deadline or plan.ends_at).isoformat(),
                "announce_ends_at": plan.announce_ends_at.isoformat(), "certificates": names}
    key = ("plan data", plan.id, plan.ends_at.isoformat(), plan.starts_at.isoformat(),
           plan.review_deadline.isoformat() if plan.review_deadline else "", plan.announce_days, plan.name)
    return dict(refcache.cached(session, key, compute))


def _copy_plan_data(session: Session, plan: DeclarationPlan) -> int:
    """Give the plan's process and the waiting declaration processes under it the plan's new data (their timers
    follow it); return how many declaration processes failed on it (each recorded as an incident, left as it was)."""
    data = plan_data(session, plan)
    eng = engine()
    if plan.instance_id:
        eng.update_waiting(session, plan.instance_id, data)
    failed = 0
    waiting = session.scalars(select(ProcessInstance.id).join(
        Declaration, ProcessInstance.id == Declaration.instance_id)
        .where(Declaration.plan_id == plan.id, ProcessInstance.completed.is_(False)).order_by(Declaration.id)).all()
    for instance_id in waiting:
        try:
            with savepoint(session):
                eng.update_waiting(session, instance_id, data)
        except StepFailed:
            failed += 1
    return failed


def _apply(session: Session, plan: DeclarationPlan, data: PlanInput, errors: dict[str, str]) -> None:
    """Check the input against the clock and the catalog, then copy it onto the plan."""
    if data.ends_at and data.ends_at <= clock.now():
        errors.setdefault("ends_at", "申报截止时间：不能早于当前时间")
    cert_ids = _check_certificates(session, data.certificate_ids, errors)
    if errors:
        raise ServiceError("申报计划信息有误，请按提示修改", errors)
    assert data.starts_at and data.ends_at and data.review_deadline and data.announce_days
    plan.name, plan.starts_at, plan.ends_at = data.name, data.starts_at, data.ends_at
    plan.review_deadline, plan.announce_days = data.review_deadline, data.announce_days
    plan.contact_name, plan.contact_phone, plan.notes = data.contact_name, data.contact_phone, data.notes
    plan.certificates = [PlanCertificate(certificate_id=i) for i in cert_ids]


@dataclass
class PlanPreview:
    """What 发布申报计划 will do, shown before it is done."""

    province_name: str
    plan: DeclarationPlan  # not saved: the checked input
    certificate_names: list[str]
    school_accounts: int  # the province's school accounts, who will see the plan once it opens


def preview_plan(session: Session, user: User, data: PlanInput, errors: dict[str, str]) -> PlanPreview:
    """Check a plan as 发布申报计划 would (ServiceError with the field errors) and say what publishing it does,
    saving nothing."""
    province = _require_admin(user)
    plan = DeclarationPlan(province_code=province)
    _apply(session, plan, data, errors)
    ids = [c.certificate_id for c in plan.certificates]
    names = list(session.scalars(select(Certificate.name).where(Certificate.id.in_(ids)).order_by(Certificate.name)))
    accounts = session.scalar(select(func.count()).select_from(User).where(
        User.role == ROLE_SCHOOL, User.province_code == province)) or 0
    division = session.get(Division, province)
    return PlanPreview(division.name if division is not None else province, plan, names, accounts)


def publish_plan(session: Session, user: User, data: PlanInput, errors: dict[str, str]) -> DeclarationPlan:
    """发布申报计划: create the plan and start its process, whose timers close it and compute results."""
    province = _require_admin(user)
    plan = DeclarationPlan(province_code=province, status=PLAN_PUBLISHED, published_at=clock.now(),
                           created_by_id=user.id)
    _apply(session, plan, data, errors)
    session.add(plan)
    session.flush()
    outcome = engine().start(session, "plan", subject_type="plan", subject_id=plan.id, province_code=province,
                             data=plan_data(session, plan))
    plan.instance_id = outcome.instance_id
    _audit(session, user, "publish_plan", plan, f"发布申报计划，申报时间 {clock.format_local(plan.starts_at)} 至 "
                                                f"{clock.format_local(plan.ends_at)}")
    return plan


def edit_plan(session: Session, user: User, plan_id: int, data: PlanInput, errors: dict[str, str]) -> DeclarationPlan:
    """Change a plan that has not opened yet."""

    plan = get_plan(session, user, plan_id)
    now = clock.now()
    if plan.status != PLAN_PUBLISHED or plan.starts_at <= now:
        raise Forbidden("申报已开始的计划不能修改，只能延长申报截止时间")
    _apply(session, plan, data, errors)
    session.flush()
    _copy_plan_data(session, plan)
    _audit(session, user, "edit_plan", plan, "修改申报计划")
    return plan


def withdraw_plan(session: Session, user: User, plan_id: int) -> DeclarationPlan:
    """Withdraw a plan that has not opened yet."""
    plan = get_plan(session, user, plan_id)
    if plan.status != PLAN_PUBLISHED or plan.starts_at <= clock.now():
        raise Forbidden("申报已开始的计划不能撤回")
    plan.status = PLAN_WITHDRAWN
    if plan.instance_id:
        engine().cancel(session, plan.instance_id)
    _audit(session, user, "withdraw_plan", plan, "撤回申报计划")
    return plan


def extend_deadline(session: Session, user: User, plan_id: int, new_ends_at_text: str, reason: str) -> DeclarationPlan:
    """Extend an open plan's 申报截止时间, recording who and why; never into the past."""

    plan = get_plan(session, user, plan_id)
    errors: dict[str, str] = {}
    try:
        new_ends_at = clock.parse_local(new_ends_at_text)
    except ValueError:
        raise ServiceError("延期信息有误", {"ends_at": "新的申报截止时间：请按“年-月-日 时:分”填写"}) from None
    now = clock.now()
    if plan.status != PLAN_PUBLISHED or plan.closed_at is not None:
        raise Forbidden("该计划已截止或未发布，不能延期")
    if new_ends_at <= now:
        errors["ends_at"] = "新的申报截止时间：不能早于当前时间"
    elif new_ends_at <= plan.ends_at:
        errors["ends_at"] = f"新的申报截止时间：必须晚于原截止时间 {clock.format_local(plan.ends_at)}"
    elif plan.review_deadline and new_ends_at >= plan.review_deadline:
        errors["ends_at"] = f"新的申报截止时间：必须早于审核截止时间 {clock.format_local(plan.review_deadline)}"
    if not 2 <= len(reason.strip()) <= 500:
        errors["reason"] = "延期原因：必填，2–500 字"
    if errors:
        raise ServiceError("延期信息有误", errors)
    old = plan.ends_at
    plan.ends_at = new_ends_at
    session.flush()
    _copy_plan_data(session, plan)
    _audit(session, user, "extend_plan", plan, f"申报截止时间由 {clock.format_local(old)} 延长至 "
                                               f"{clock.format_local(new_ends_at)}；原因：{reason.strip()}")
    return plan


def plan_history(session: Session, plan: DeclarationPlan) -> list[AuditEntry]:
    """Return the recorded actions on a plan, oldest first."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.target == f"plan:{plan.id}")
                                .order_by(AuditEntry.at, AuditEntry.id)))


def _audit(session: Session, user: User, action: str, plan: DeclarationPlan, detail: str) -> None:
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action=action, target=f"plan:{plan.id}",
                           detail=f"{user.display_name}（{user.username}）：{detail}"))


def certificates(session: Session) -> list[Certificate]:
    """Return the national certificate list."""
    return list(session.scalars(select(Certificate).order_by(Certificate.batch, Certificate.name)))

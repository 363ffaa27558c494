"""Declarations of certificate pilots by schools (user guide 一.3, 二.2–3)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import and_, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app import clock, refcache
from app.accounts.models import ROLE_SCHOOL, User
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations import lifecycle, school_status
from app.declarations.models import Declaration, DeclarationEvent
from app.engine import engine
from app.engine.runtime import EngineError, TaskNotAvailable
from app.engine.vocabulary import DRAFT
from app.forms import FormSpec, build_form, validate
from app.masterdata.models import Certificate, Major, School
from app.plans.models import (
    PLAN_ANNOUNCING,
    PLAN_CLOSED,
    PLAN_FINISHED,
    PLAN_PUBLISHED,
    DeclarationPlan,
    PlanCertificate,
)
from app.plans.services import plan_data
from app.processes.models import HumanTask, ProcessInstance

ACTION_SAVE = "save"
ACTION_SUBMIT = "submit"
DECLARATION_FORM = "declaration-form.json"
# What a draft needs to be stored (the declaration is one certificate at one level); everything else is checked
# for type and format only until 提交审核.
DRAFT_REQUIRED = ("certificate_id", "level")


def required_fields(action: str) -> tuple[str, ...] | None:
    """Return the fields an action needs filled in (None: every field the form requires)."""
    return None if action == ACTION_SUBMIT else DRAFT_REQUIRED


@dataclass(frozen=True)
class CertificateInfo:
    """What declarations need of a certificate (kept between requests)."""

    id: int
    name: str
    levels: tuple[str, ...]

    def level_list(self) -> list[str]:
        return list(self.levels)


def certificate_info(session: Session, certificate_id: int) -> CertificateInfo | None:
    """Return a certificate's name and levels, or None if there is no such certificate."""
    def load() -> CertificateInfo | None:
        cert = session.get(Certificate, certificate_id)
        return CertificateInfo(cert.id, cert.name, tuple(cert.level_list())) if cert is not None else None
    return refcache.cached(session, ("certificate", certificate_id), load)


@dataclass
class Window:
    """Whether a school may declare now, under which plan, and why not."""

    plan: DeclarationPlan | None
    open: bool
    message: str


def _school_of(session: Session, user: User) -> School:
    if user.role != ROLE_SCHOOL or user.school_id is None:
        raise Forbidden("只有院校账号可以申报")
    if not user.is_active_account:
        raise Forbidden("该账号尚未开通（注册申请正在审核或未通过），不能申报")
    school = refcache.attach(session, School, user.school_id, kind="accounts")
    if school is None:
        raise NotFound("院校不存在")
    return school


def plans_of_province(session: Session, province_code: str) -> list[DeclarationPlan]:
    """Return the province's published (and closed) plans, newest first."""
    return refcache.attach_all(
        session, DeclarationPlan, ("plans of province", province_code),
        lambda: and_(DeclarationPlan.province_code == province_code,
                     DeclarationPlan.status.in_((PLAN_PUBLISHED, PLAN_CLOSED, PLAN_ANNOUNCING, PLAN_FINISHED))),
        lambda: (DeclarationPlan.starts_at.desc(), DeclarationPlan.id.desc()))


def window(session: Session, province_code: str) -> Window:
    """Tell whether the province has a plan whose window is open now."""
    now = clock.now()
    plans = plans_of_province(session, province_code)
    for plan in plans:
        if plan.is_open(now):
            return Window(plan, True, f"{plan.name}：申报时间 {clock.format_local(plan.starts_at)} 至 "
                                      f"{clock.format_local(plan.ends_at)}")
    upcoming = [p for p in plans if p.status == PLAN_PUBLISHED and p.starts_at > now]
    if upcoming:
        p = min(upcoming, key=lambda p: p.starts_at)
        return Window(p, False, f"本省申报计划《{p.name}》尚未开始，申报时间为 {clock.format_local(p.starts_at)} 至 "
                                f"{clock.format_local(p.ends_at)}，请届时申报。")
    if plans:
        p = plans[0]
        stage = {PLAN_ANNOUNCING: "审核结果公示中。", PLAN_FINISHED: "审核结果已公示。"}.get(p.status, "")
        return Window(p, False, f"本省申报计划《{p.name}》的申报时间为 {clock.format_local(p.starts_at)} 至 "
                                f"{clock.format_local(p.ends_at)}，申报已截止，不能再申报或提交。{stage}")
    return Window(None, False, "本省尚未发布证书申报计划，暂不能申报。证书申报计划由各省自行发布，请留意省级教育行政部门通知。")


def declaration_form(session: Session, plan: DeclarationPlan, school: School, version: Any = None) -> FormSpec:
    """The declaration form with the plan's certificates and the majors of the school's level (kept between
    requests: the same for every school of a level under one plan and process version)."""
    if version is None:
        version = engine().current_version(session, "declaration", None)
    level = school.education_level or "高职专科"
    plan_id = plan.id

    def build() -> FormSpec:
        certs = session.execute(select(Certificate.id, Certificate.name)
                                .join(PlanCertificate, PlanCertificate.certificate_id == Certificate.id)
                                .where(PlanCertificate.plan_id == plan_id).order_by(Certificate.name)).all()
        majors = session.execute(select(Major.code, Major.name).where(Major.level == level)
                                 .order_by(Major.code)).all()
        return build_form(version.forms[DECLARATION_FORM], {
            "plan_certificates": [(str(c.id), c.name) for c in certs],
            "school_majors": [(m.code, f"{m.code} {m.name}") for m in majors],
        })
    return refcache.cached(session, ("declaration form", version.id, plan_id, level), build)


def _form_for(session: Session, plan: DeclarationPlan, school: School) -> FormSpec:
    version = engine().current_version(session, "declaration", school.province_code)
    return declaration_form(session, plan, school, version)


# The declaration's own columns that its form fills: a field added to the form and (with a migration) to the
# model is stored with no other change.
SYSTEM_COLUMNS = {"id", "plan_id", "school_id", "province_code", "city_code", "status", "status_meaning", "locked",
                  "instance_id", "review_comment", "submitted_at", "decided_at", "created_at", "updated_at", "revision"}
FORM_COLUMNS = frozenset(c.key for c in Declaration.__table__.columns) - SYSTEM_COLUMNS


def form_columns(values: Mapping[str, Any], form: FormSpec | None = None) -> dict[str, Any]:
    """Return the values of the form's fields that are columns of the declaration (lists copied); with the form,
    a field left empty (in a draft) is stored as its column's blank value."""
    columns = {name: list(value) if isinstance(value, list) else value
               for name, value in values.items() if name in FORM_COLUMNS}
    for f in form.fields if form is not None else ():
        if f.name in FORM_COLUMNS and f.name not in columns:
            columns[f.name] = _BLANKS.get(f.kind, "")
    return columns


# A draft's empty field, by the form field's kind (the columns are not nullable; 0 is below every minimum).
_BLANKS: dict[str, Any] = {"integer": 0, "number": 0, "array": [], "boolean": False}


def _duplicate_message(certificate: str, level: str) -> str:
    return f"证书：本校在本计划中已申报过{certificate}（{level}），同一证书同一等级不能重复申报"


def _check(session: Session, form: FormSpec, values: Mapping[str, Any], plan: DeclarationPlan, school: School,
           exclude_id: int | None, action: str, validated: bool = False, duplicates: bool = True) -> dict[str, str]:
    errors = {} if validated else validate(form, values, required_fields(action))
    cert = certificate_info(session, values["certificate_id"]) if isinstance(values.get("certificate_id"), int) else None
    if cert is not None and values.get("level") and values["level"] not in cert.level_list():
        errors.setdefault("level", f"证书等级：{cert.name}不设{values['level']}")
    if duplicates and cert is not None and values.get("level") and "certificate_id" not in errors:
        dup = select(Declaration.id).where(Declaration.plan_id == plan.id, Declaration.school_id == school.id,
                                           Declaration.certificate_id == cert.id, Declaration.level == values["level"])
        if exclude_id is not None:
            dup = dup.where(Declaration.id != exclude_id)
        if session.scalars(dup).first() is not None:
            errors["certificate_id"] = _duplicate_message(cert.name, values["level"])
    return errors


def new_declaration_context(session: Session, user: User) -> tuple[School, Window, FormSpec | None]:
    """Return what the 申请新的证书试点 page needs, refusing if the school may not declare now."""
    school = _school_of(session, user)
    win = window(session, school.province_code)
    form = _form_for(session, win.plan, school) if win.open and win.plan is not None else None
    return school, win, form


def _require_open(session: Session, school: School, plan: DeclarationPlan, action: str) -> None:
    if not plan.is_open(clock.now()):
        raise ServiceError(window(session, school.province_code).message)
    if action == ACTION_SUBMIT and school.info_completed_at is None:
        raise ServiceError("请先补全院校基础信息（联系人、联系电话等），再提交审核")


def create_declaration(session: Session, user: User, values: Mapping[str, Any], action: str,
                       context: tuple[School, Window, FormSpec | None] | None = None,
                       validated: bool = False) -> Declaration:
    """Save a new declaration as a draft, or submit it at once.

    context: what new_declaration_context returned for this user in the same request, if the caller has it;
    validated: the values are what parse_submission returned without errors for that context's form and the
    action's required fields.
    """
    school, win, form = context or new_declaration_context(session, user)
    if not win.open or win.plan is None:
        raise ServiceError(win.message)
    plan = win.plan
    _require_open(session, school, plan, action)
    form = form or _form_for(session, plan, school)
    # A declaration of the same certificate and level is refused by the unique index when the row is written,
    # rather than looked for first.
    errors = _check(session, form, values, plan, school, None, action,
                    validated=validated and context is not None, duplicates=False)
    if errors:
        raise ServiceError("申报信息有误，请按提示修改", errors)
    cert = certificate_info(session, values["certificate_id"])
    assert cert is not None
    try:
        decl = lifecycle.new_declaration(session, {
            "plan_id": plan.id, "school_id": school.id, "province_code": school.province_code,
            "city_code": school.city_code, **form_columns(values, form)})
    except IntegrityError:  # uq_declaration_once: nothing else was written in this transaction yet
        session.rollback()
        raise ServiceError("申报信息有误，请按提示修改", {"certificate_id": _duplicate_message(cert.name, values["level"])}) from None
    data = _process_data(school, cert, decl, user)
    submit = action == ACTION_SUBMIT
    first_step = (ROLE_SCHOOL, _submission(data, decl)) if submit else None
    step = lifecycle.created(decl, user, submit)
    try:
        engine().start(session, "declaration", subject_type="declaration", subject_id=decl.id,
                       province_code=school.province_code, city_code=school.city_code,
                       school_id=school.id, data=data, shared=plan_data(session, plan), first_step=first_step,
                       side=step)
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc
    return decl


def _submission(data: Mapping[str, Any], decl: Declaration) -> dict[str, Any]:
    """Return what the school's task completes with: the process data without the last decision."""
    step = dict(data)
    step.update({"majors": list(decl.majors), "trainee_count": decl.trainee_count, "action": ACTION_SUBMIT})
    step.pop("decision", None)
    step.pop("comment", None)
    return step


def _process_data(school: School, cert: CertificateInfo, decl: Declaration, user: User) -> dict[str, Any]:
    return {"school_name": school.name, "school_phone": user.phone or school.contact_phone or "",
            "certificate_name": cert.name, "level": decl.level, "decision": "", "comment": "",
            "declaration_id": decl.id}


def get_declaration(session: Session, user: User, declaration_id: int) -> Declaration:
    """Return a declaration of the user's own school."""
    school = _school_of(session, user)
    decl = session.get(Declaration, declaration_id)
    if decl is None or decl.school_id != school.id:
        raise NotFound("申报不存在")
    return decl


def school_task_open(session: Session, decl: Declaration) -> HumanTask | None:
    """Return the school's open task on a declaration (it can be edited only then)."""
    if decl.instance_id is None:
        return None
    return session.scalars(select(HumanTask).where(
        HumanTask.instance_id == decl.instance_id, HumanTask.lane == ROLE_SCHOOL,
        HumanTask.completed_at.is_(None))).first()


def edit_context(session: Session, user: User, declaration_id: int) -> tuple[Declaration, FormSpec]:
    """Return a declaration and its form for editing; refuse when it is locked."""
    decl = get_declaration(session, user, declaration_id)
    if school_task_open(session, decl) is None:
        raise Forbidden(f"该申报当前状态为“{decl.status}”：{school_status.locked_reason(decl, decl.plan.is_open(clock.now()))}")
    school = session.get(School, decl.school_id)
    assert school is not None
    return decl, _form_for(session, decl.plan, school)


def update_declaration(session: Session, user: User, declaration_id: int, values: Mapping[str, Any],
                       action: str) -> Declaration:
    """Save changes to an editable declaration, and submit it if asked."""
    decl = get_declaration(session, user, declaration_id)
    assert decl.instance_id is not None
    engine().lock(session, decl.instance_id)  # serialises with a concurrent submit or review
    session.refresh(decl)
    if school_task_open(session, decl) is None:
        raise Forbidden(f"该申报当前状态为“{decl.status}”：{school_status.locked_reason(decl, decl.plan.is_open(clock.now()))}")
    school = session.get(School, decl.school_id)
    assert school is not None
    _require_open(session, school, decl.plan, action)
    form = _form_for(session, decl.plan, school)
    errors = _check(session, form, values, decl.plan, school, decl.id, action)
    if errors:
        raise ServiceError("申报信息有误，请按提示修改", errors)
    cert = certificate_info(session, values["certificate_id"])
    assert cert is not None
    for name, value in form_columns(values, form).items():
        setattr(decl, name, value)
    if action == ACTION_SUBMIT:
        decl.revision += 1
        _submit(session, decl, user, school, cert)
    else:
        lifecycle.saved(session, decl, user)
    return decl


def _submit(session: Session, decl: Declaration, user: User, school: School, cert: CertificateInfo) -> None:
    task = school_task_open(session, decl)
    if task is None or decl.instance_id is None:
        raise Forbidden("该申报已提交审核，不能重复提交")
    data = _submission(_process_data(school, cert, decl, user), decl)
    step = lifecycle.submitted(decl, user)
    try:
        engine().complete_task(session, decl.instance_id, task.task_id, actor_id=user.id, lanes=[ROLE_SCHOOL],
                               data=data, side=step)
    except TaskNotAvailable:
        raise Forbidden("该申报已提交审核，不能重复提交") from None
    except EngineError as exc:
        raise ServiceError(str(exc)) from exc


def delete_declaration(session: Session, user: User, declaration_id: int) -> None:
    """Delete a draft that was never submitted."""
    decl = get_declaration(session, user, declaration_id)
    if decl.instance_id is not None:
        engine().lock(session, decl.instance_id)
        session.refresh(decl)
    if decl.status_meaning != DRAFT or decl.submitted_at is not None or school_task_open(session, decl) is None:
        raise Forbidden(f"该申报当前状态为“{decl.status}”，只有未提交的草稿可以删除")
    instance_id = decl.instance_id
    session.delete(decl)
    session.flush()
    if instance_id is not None:
        instance = session.get(ProcessInstance, instance_id)
        if instance is not None:
            session.delete(instance)


def school_declarations(session: Session, user: User) -> list[Declaration]:
    """Return the school's declarations, newest first."""
    school = _school_of(session, user)
    return list(session.scalars(select(Declaration).where(Declaration.school_id == school.id)
                                .order_by(Declaration.created_at.desc(), Declaration.id.desc())))


def inbox(session: Session, user: User) -> list[HumanTask]:
    """Return the school's open tasks."""
    school = _school_of(session, user)
    return list(session.scalars(select(HumanTask).where(
        HumanTask.school_id == school.id, HumanTask.lane == ROLE_SCHOOL, HumanTask.completed_at.is_(None))
        .order_by(HumanTask.created_at)))


# Built once (see review._DECLARATION_AND_TASK): the review page reads it on every visit.
_HISTORY = (select(DeclarationEvent).where(DeclarationEvent.declaration_id == bindparam("declaration_id"))
            .order_by(DeclarationEvent.at, DeclarationEvent.id))


def history(session: Session, declaration_id: int) -> list[DeclarationEvent]:
    """Return a declaration's history, oldest first."""
    return list(session.scalars(_HISTORY, {"declaration_id": declaration_id}))


def major_names(session: Session, codes: list[str]) -> dict[str, str]:
    """Return names of majors by code."""
    if not codes:
        return {}
    names: dict[str, str] = refcache.cached(session, ("major names",), lambda: dict(
        session.execute(select(Major.code, Major.name)).all()))
    return {code: names[code] for code in codes if code in names}


def settings_limits() -> dict[str, tuple[int, int]]:
    """Return the rate limits of the current app."""
    s = current_app.config["XPILOT"]
    return {"register_ip": s.register_limit_per_ip, "sms_phone": s.sms_limit_per_phone, "sms_ip": s.sms_limit_per_ip,
            "sms_staff_phone": s.sms_staff_limit_per_phone,
            "login": s.login_limit}

"""School accounts as the province's 1+X officer manages them: find, issue, reset, correct, release."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from app import clock
from app.accounts.models import ACCOUNT_PENDING, ROLE_PROVINCE_ADMIN, User
from app.accounts.registration import Registered, issue_account, send_credentials
from app.accounts.services import PHONE_RE, generate_password, normalize_phone
from app.core import ratelimit
from app.core.errors import Forbidden, NotFound, ServiceError
from app.declarations.models import Declaration
from app.declarations.school_info import FIELDS as SCHOOL_INFO_FIELDS
from app.engine import engine
from app.engine.vocabulary import DRAFT, EXPIRED
from app.masterdata.models import Certificate, Division, School
from app.plans.models import DeclarationPlan
from app.processes.models import ProcessInstance
from app.sms.models import AuditEntry

PER_PAGE = 20
ORIGIN_PROVINCE = "province"  # opened by the province's officer (user guide 二.1: schools that never got an account)
ORIGIN_LABELS = {"registered": "院校自行注册", "legacy": "周报账号升级", ORIGIN_PROVINCE: "省级管理员开通"}
ACTION_LABELS = {"issue_account": "开通账号", "reset_password": "重置密码", "correct_phone": "更正手机号",
                 "release_account": "解除注册", "activate_account": "注册审核通过，开通账号",
                 "refuse_registration": "注册审核不通过"}
FILTER_REGISTERED = "registered"
FILTER_UNREGISTERED = "unregistered"


@dataclass
class SchoolRow:
    """One school of the official list with its account, if any."""

    school: School
    city: str
    account: User | None


@dataclass
class SchoolPage:
    """A page of the province's school list."""

    rows: list[SchoolRow]
    total: int
    page: int
    per_page: int = PER_PAGE

    @property
    def pages(self) -> int:
        return max(1, (self.total + self.per_page - 1) // self.per_page)


@dataclass
class DeclarationLine:
    """A declaration of the school as the officer sees it."""

    declaration: Declaration
    plan: str
    certificate: str


@dataclass
class SchoolAccount:
    """A school page: the school, its account, its declarations and what was done to its account."""

    school: School
    city: str
    account: User | None
    declarations: list[DeclarationLine] = field(default_factory=list)
    history: list[AuditEntry] = field(default_factory=list)

    @property
    def origin_label(self) -> str:
        return ORIGIN_LABELS.get(self.account.origin, self.account.origin) if self.account else ""

    @property
    def submitted_count(self) -> int:
        return sum(1 for line in self.declarations if _was_submitted(line.declaration))


def mask_phone(phone: str | None) -> str:
    """Return a phone number with its middle digits hidden."""
    if not phone:
        return ""
    return f"{phone[:3]}****{phone[-4:]}" if len(phone) >= 8 else "****"


def _require_admin(user: User) -> str:
    if user.role != ROLE_PROVINCE_ADMIN or not user.province_code:
        raise Forbidden("只有省级管理员可以管理院校账号")
    return user.province_code


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def search_schools(session: Session, user: User, query: str = "", registered: str = "", page: int = 1) -> SchoolPage:
    """Return a page of the province's schools by name or 学校标识码, registered or not."""
    province = _require_admin(user)
    city = aliased(Division)
    stmt = (select(School, city.name, User).outerjoin(city, city.code == School.city_code)
            .outerjoin(User, User.school_id == School.id).where(School.province_code == province))
    text = query.strip()
    if text:
        stmt = stmt.where(or_(School.name.like(_like(text), escape="\\"), School.code.like(_like(text), escape="\\")))
    if registered == FILTER_REGISTERED:
        stmt = stmt.where(User.id.is_not(None))
    elif registered == FILTER_UNREGISTERED:
        stmt = stmt.where(User.id.is_(None))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    page = max(1, min(page, max(1, (total + PER_PAGE - 1) // PER_PAGE)))
    rows = session.execute(stmt.order_by(School.name_sort, School.name, School.id).offset((page - 1) * PER_PAGE).limit(PER_PAGE)).all()
    return SchoolPage([SchoolRow(s, c or "", u) for s, c, u in rows], total, page)


def _school(session: Session, province: str, school_id: int) -> School:
    school = session.get(School, school_id)
    if school is None or school.province_code != province:
        raise NotFound("院校不存在")
    return school


def _account(session: Session, school: School) -> User | None:
    return session.scalars(select(User).where(User.school_id == school.id)).first()


def _was_submitted(decl: Declaration) -> bool:
    return decl.submitted_at is not None or decl.status_meaning not in (DRAFT, EXPIRED)


def school_account(session: Session, user: User, school_id: int) -> SchoolAccount:
    """Return a school of the admin's province with its account, declarations and account history."""
    province = _require_admin(user)
    school = _school(session, province, school_id)
    city = session.get(Division, school.city_code) if school.city_code else None
    rows = session.execute(
        select(Declaration, DeclarationPlan.name, Certificate.name)
        .join(DeclarationPlan, DeclarationPlan.id == Declaration.plan_id)
        .join(Certificate, Certificate.id == Declaration.certificate_id)
        .where(Declaration.school_id == school.id)
        .order_by(Declaration.created_at.desc(), Declaration.id.desc())).all()
    history = list(session.scalars(select(AuditEntry).where(AuditEntry.target == _target(school))
                                   .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())))
    return SchoolAccount(school, city.name if city else "", _account(session, school),
                         [DeclarationLine(d, p, c) for d, p, c in rows], history)


def _check_phone(phone: str) -> str:
    phone = normalize_phone(phone)
    if not PHONE_RE.match(phone):
        raise ServiceError("手机号有误", {"phone": "手机号：请输入 11 位中国大陆手机号（1 开头）"})
    return phone


def _limit_sms(user: User, phone: str, limits: dict[str, tuple[int, int]]) -> None:
    # A budget apart from self-service: registrations by anyone cannot block the officer's reset of a school.
    ratelimit.hit("sms-staff-phone", phone, limits["sms_staff_phone"], "该手机号接收短信过于频繁")
    ratelimit.hit("sms-staff", str(user.id), limits["sms_ip"], "发送短信过于频繁")


def issue_school_account(session: Session, user: User, school_id: int, phone: str,
                         limits: dict[str, tuple[int, int]]) -> Registered:
    """Open the account of a school that has none; the generated password goes to the phone by SMS only."""
    province = _require_admin(user)
    school = _school(session, province, school_id)
    if _account(session, school) is not None:
        raise Forbidden(f"{school.name}已有账号，不能重复开通；如账号密码遗失请使用“重置密码”")
    phone = _check_phone(phone)
    _limit_sms(user, phone, limits)
    result = issue_account(session, school, phone, origin=ORIGIN_PROVINCE)
    _audit(session, user, "issue_account", school,
           f"开通账号 {result.username}，初始密码已短信发送至 {mask_phone(phone)}")
    return result


def reset_school_password(session: Session, user: User, school_id: int,
                          limits: dict[str, tuple[int, int]]) -> Registered:
    """Give the school's account a new generated password, sent by SMS; its open sessions end."""
    province = _require_admin(user)
    school = _school(session, province, school_id)
    account = _account(session, school)
    if account is None:
        raise Forbidden(f"{school.name}尚无账号，请先开通账号")
    if account.account_status == ACCOUNT_PENDING:
        raise Forbidden("该账号的注册申请尚在审核中，审核通过后密码将自动短信发送，无需重置")
    if not account.phone:
        raise Forbidden("该账号没有登记手机号，请先更正注册手机号，再重置密码")
    _limit_sms(user, account.phone, limits)
    password = generate_password()
    account.set_password(password)
    account.must_change_password = True
    result = send_credentials(session, account, school, password, "account_reset")
    _audit(session, user, "reset_password", school,
           f"重置账号 {account.username} 的密码，新密码已短信发送至 {mask_phone(account.phone)}，原登录会话已失效")
    return result


def correct_phone(session: Session, user: User, school_id: int, phone: str) -> User:
    """Change the phone registered for the school's account; running declarations text the new number."""
    province = _require_admin(user)
    school = _school(session, province, school_id)
    account = _account(session, school)
    if account is None:
        raise Forbidden(f"{school.name}尚无账号，请先开通账号")
    phone = _check_phone(phone)
    if phone == account.phone:
        raise ServiceError("手机号未改变", {"phone": "手机号：与当前登记的手机号相同"})
    old = account.phone
    account.phone = phone
    # Review results are texted to the phone captured when the declaration started: point the open ones here.
    open_instances = session.scalars(select(ProcessInstance.id).join(
        Declaration, Declaration.instance_id == ProcessInstance.id).where(
        Declaration.school_id == school.id, ProcessInstance.completed.is_(False))).all()
    eng = engine()
    for instance_id in open_instances:
        eng.update_waiting(session, instance_id, {"school_phone": phone})
    _audit(session, user, "correct_phone", school,
           f"更正账号 {account.username} 的注册手机号：{mask_phone(old)} → {mask_phone(phone)}")
    return account


def release_registration(session: Session, user: User, school_id: int, reason: str) -> int:
    """Undo a registration made by the wrong person so the school can register again; return drafts deleted.

    Refused once the school has submitted anything. The account is deactivated and detached from the
    school (kept for the record), the open drafts and the 基础信息 the wrong registrant entered are removed;
    expired drafts of closed plans stay as part of those plans' record.
    """
    province = _require_admin(user)
    school = _school(session, province, school_id)
    account = _account(session, school)
    if account is None:
        raise Forbidden(f"{school.name}尚无账号，无需解除注册")
    reason = reason.strip()
    if not 2 <= len(reason) <= 200:
        raise ServiceError("请填写解除原因", {"reason": "解除原因：必填，2–200 字"})
    declarations = list(session.scalars(select(Declaration).where(Declaration.school_id == school.id)))
    eng = engine()
    for decl in declarations:
        if decl.instance_id is not None and decl.status_meaning == DRAFT:
            eng.lock(session, decl.instance_id)  # waits for a submit in flight, then sees its outcome
            session.refresh(decl)
    submitted = [d for d in declarations if _was_submitted(d)]
    if submitted:
        raise Forbidden(f"{school.name}已有 {len(submitted)} 条申报提交过审核，不能解除注册（提交的申报须保留）。"
                        f"如账号被他人使用，请更正注册手机号并重置密码。")
    drafts = [d for d in declarations if d.status_meaning == DRAFT]
    instance_ids = [d.instance_id for d in drafts if d.instance_id is not None]
    for decl in drafts:
        session.delete(decl)
    session.flush()
    for instance_id in instance_ids:
        instance = session.get(ProcessInstance, instance_id)
        if instance is not None:
            session.delete(instance)
    for name in SCHOOL_INFO_FIELDS:
        setattr(school, name, None)
    school.info_completed_at = None
    # A registration still waiting for its process ends with the release: nobody is left to approve it.
    for instance_id in session.scalars(select(ProcessInstance.id).where(
            ProcessInstance.subject_type == "user", ProcessInstance.subject_id == account.id,
            ProcessInstance.completed.is_(False))).all():
        eng.cancel(session, instance_id)
    old_username, old_phone = account.username, account.phone
    account.school_id = None
    account.is_active_account = False
    account.username = f"released-{account.id}-{old_username}"[:64]
    account.session_token = (account.session_token or 0) + 1
    session.flush()
    _audit(session, user, "release_account", school,
           f"解除账号 {old_username}（手机号 {mask_phone(old_phone)}）的注册，删除未提交的草稿 {len(drafts)} 条，"
           f"清空院校基础信息，院校可重新注册；原因：{reason}")
    return len(drafts)


def _target(school: School) -> str:
    return f"school:{school.id}"


def _audit(session: Session, user: User, action: str, school: School, detail: str) -> None:
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action=action, target=_target(school),
                           detail=f"{user.display_name}（{user.username}）：{detail}"))

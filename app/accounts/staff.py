"""Province officer accounts as the ministry admin manages them: create, deactivate, reactivate, reset."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_LABELS, ROLE_MINISTRY_ADMIN, ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER, User
from app.accounts.services import PHONE_RE, AccountError, create_staff, generate_password, normalize_phone
from app.core.errors import Forbidden, NotFound, ServiceError
from app.masterdata.models import LEVEL_PROVINCE, Division
from app.sms.models import AuditEntry

OFFICER_ROLES = (ROLE_PROVINCE_REVIEWER, ROLE_PROVINCE_ADMIN)
USERNAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{2,31}$")
STAFF_ACTIONS = ("create_staff", "deactivate_staff", "reactivate_staff", "reset_staff_password")
PASSWORD_LENGTH = 12


@dataclass
class StaffCredentials:
    """A staff account and the password generated for it, shown once on screen."""

    user_id: int
    username: str
    display_name: str
    password: str


@dataclass
class StaffRow:
    """A province officer account with its province's name."""

    user: User
    province: str


def _require_ministry(user: User) -> None:
    if user.role != ROLE_MINISTRY_ADMIN:
        raise Forbidden("只有部级管理员可以管理省级账号")


def provinces(session: Session) -> list[Division]:
    """Return the province-level divisions in code order."""
    return list(session.scalars(select(Division).where(Division.level == LEVEL_PROVINCE).order_by(Division.code)))


def list_staff(session: Session, user: User, province_code: str = "") -> list[StaffRow]:
    """Return the province officer accounts, of one province or all, by province and role."""
    _require_ministry(user)
    stmt = (select(User, Division.name).outerjoin(Division, Division.code == User.province_code)
            .where(User.role.in_(OFFICER_ROLES)))
    if province_code:
        stmt = stmt.where(User.province_code == province_code)
    rows = session.execute(stmt.order_by(User.province_code, User.role, User.username)).all()
    return [StaffRow(u, name or "") for u, name in rows]


def check_staff_fields(session: Session, errors: dict[str, str], *, province_code: str, username: str,
                       display_name: str, province_required: bool = True) -> Division | None:
    """Add field errors for a new staff account's province (perhaps optional), username and name; return the
    province."""
    province = session.get(Division, province_code) if province_code else None
    if (province_code or province_required) and (province is None or province.level != LEVEL_PROVINCE):
        errors["province_code"] = "所属省份：请选择省份"
    if not USERNAME_RE.match(username):
        errors["username"] = "账号：3–32 位，字母开头，可含字母、数字和 _ . -"
    elif session.scalars(select(User.id).where(User.username == username)).first() is not None:
        errors["username"] = f"账号：{username} 已被使用"
    if not 2 <= len(display_name) <= 64:
        errors["display_name"] = "姓名/单位：2–64 个字"
    return province


def create_officer(session: Session, user: User, *, role: str, username: str, display_name: str, phone: str,
                   province_code: str) -> StaffCredentials:
    """Create a province_reviewer or province_admin with a generated initial password to change at first login."""
    _require_ministry(user)
    username, display_name, phone = username.strip(), display_name.strip(), normalize_phone(phone)
    errors: dict[str, str] = {}
    if role not in OFFICER_ROLES:
        errors["role"] = "角色：请选择省级审核员或省级管理员"
    province = check_staff_fields(session, errors, province_code=province_code, username=username,
                                  display_name=display_name)
    if not PHONE_RE.match(phone):
        errors["phone"] = "手机号：请输入 11 位中国大陆手机号（1 开头）"
    if errors:
        raise ServiceError("账号信息有误，请按提示修改", errors)
    password = generate_password(PASSWORD_LENGTH)
    try:
        officer = create_staff(session, role=role, username=username, password=password,
                               province_code=province_code, phone=phone, display_name=display_name)
    except AccountError as exc:
        raise ServiceError(exc.message, {"__all__": exc.message}) from None
    officer.must_change_password = True
    _audit(session, user, "create_staff", officer,
           f"新建{ROLE_LABELS[role]}账号 {username}（{display_name}，{province.name if province else ''}），"
           f"已生成初始密码，首次登录须修改")
    return StaffCredentials(officer.id, officer.username, officer.display_name, password)


def _officer(session: Session, staff_id: int) -> User:
    officer = session.get(User, staff_id)
    if officer is None or officer.role not in OFFICER_ROLES:
        raise NotFound("省级账号不存在")
    return officer


def set_active(session: Session, user: User, staff_id: int, active: bool) -> User:
    """Deactivate (ending its sessions) or reactivate a province officer account."""
    _require_ministry(user)
    officer = _officer(session, staff_id)
    if officer.is_active_account == active:
        raise ServiceError(f"账号 {officer.username} 已是{'启用' if active else '停用'}状态")
    officer.is_active_account = active
    if not active:
        officer.session_token = (officer.session_token or 0) + 1
    _audit(session, user, "reactivate_staff" if active else "deactivate_staff", officer,
           f"{'启用' if active else '停用'}账号 {officer.username}（{officer.display_name}）")
    return officer


def reset_password(session: Session, user: User, staff_id: int) -> StaffCredentials:
    """Give a province officer a new generated password, shown once; it must be changed at next login."""
    _require_ministry(user)
    officer = _officer(session, staff_id)
    password = generate_password(PASSWORD_LENGTH)
    officer.set_password(password)
    officer.must_change_password = True
    _audit(session, user, "reset_staff_password", officer,
           f"重置账号 {officer.username}（{officer.display_name}）的密码，原登录会话已失效")
    return StaffCredentials(officer.id, officer.username, officer.display_name, password)


def staff_history(session: Session, user: User, limit: int = 50) -> list[AuditEntry]:
    """Return the newest recorded actions on province officer accounts."""
    _require_ministry(user)
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action.in_(STAFF_ACTIONS))
                                .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)))


def _audit(session: Session, user: User, action: str, officer: User, detail: str) -> None:
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action=action, target=f"user:{officer.id}",
                           detail=f"{user.display_name}（{user.username}）：{detail}"))

"""Roles: the built-in ones and review roles added by analysts, which diagram lanes name."""
from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.accounts.role_models import SCOPE_CITY, SCOPE_NATIONAL, SCOPE_PROVINCE, Role
from app.accounts.services import (
    PHONE_RE,
    AccountError,
    check_new_password,
    create_staff,
    generate_password,
    normalize_phone,
)
from app.accounts.staff import check_staff_fields
from app.core.errors import Forbidden, ServiceError
from app.masterdata.models import LEVEL_PREFECTURE, LEVEL_PROVINCE, Division
from app.sms.models import AuditEntry

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{2,40}$")
MEMBER_PASSWORD_LENGTH = 12


def _require_analyst(user: User) -> None:
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以管理角色")


def lane_roles(session: Session) -> list[str]:
    """Return the role codes a diagram lane may name (every role but the national staff roles)."""
    return list(session.scalars(select(Role.code).where(Role.scope != SCOPE_NATIONAL).order_by(Role.code)))


def all_roles(session: Session) -> list[Role]:
    """Return every role, built-in first."""
    return list(session.scalars(select(Role).order_by(Role.builtin.desc(), Role.code)))


def get_role(session: Session, code: str) -> Role | None:
    """Return a role by code."""
    return session.get(Role, code)


def create_role(session: Session, user: User, code: str, name: str, scope: str) -> Role:
    """Add a review role scoped to a province or a city, so a diagram lane can name it."""
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以新增角色")
    errors = {}
    code = code.strip()
    if not CODE_RE.match(code):
        errors["code"] = "角色代码：小写字母开头，3–41 位小写字母、数字或下划线（泳道名称使用此代码）"
    elif session.get(Role, code) is not None:
        errors["code"] = f"角色代码：{code} 已存在"
    if not 2 <= len(name.strip()) <= 32:
        errors["name"] = "角色名称：2–32 个字"
    if scope not in (SCOPE_PROVINCE, SCOPE_CITY):
        errors["scope"] = "范围：请选择省级或市级"
    if errors:
        raise ServiceError("角色信息有误", errors)
    role = Role(code=code, name=name.strip(), scope=scope, builtin=False, reviews=True, created_at=clock.now())
    session.add(role)
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_role", target=f"role:{code}",
                           detail=f"{user.display_name} 新增角色 {name}（{code}，{'市级' if scope == SCOPE_CITY else '省级'}）"))
    session.flush()
    return role


@dataclass
class RoleMember:
    """A user of an added review role, with the names of its province and city."""

    user: User
    province: str
    city: str


@dataclass
class MemberCredentials:
    """A new member of a review role and its initial password, shown once on screen."""

    user_id: int
    username: str
    display_name: str
    role_name: str
    password: str


def role_members(session: Session, user: User) -> dict[str, list[RoleMember]]:
    """Return the users of each added (not built-in) role."""
    _require_analyst(user)
    custom = list(session.scalars(select(Role.code).where(Role.builtin.is_(False))))
    names = {d.code: d.name for d in session.scalars(select(Division).where(
        Division.level.in_((LEVEL_PROVINCE, LEVEL_PREFECTURE))))}
    result: dict[str, list[RoleMember]] = {code: [] for code in custom}
    for member in session.scalars(select(User).where(User.role.in_(custom)).order_by(User.username)):
        result[member.role].append(RoleMember(member, names.get(member.province_code or "", ""),
                                              names.get(member.city_code or "", "")))
    return result


def scope_choices(session: Session) -> list[tuple[Division, list[Division]]]:
    """Return every province with its prefecture-level cities, for the scope of a role's member."""
    cities: dict[str, list[Division]] = {}
    for city in session.scalars(select(Division).where(Division.level == LEVEL_PREFECTURE).order_by(Division.code)):
        cities.setdefault(city.province_code, []).append(city)
    return [(p, cities.get(p.code, [])) for p in session.scalars(
        select(Division).where(Division.level == LEVEL_PROVINCE).order_by(Division.code))]


def add_member(session: Session, user: User, *, role: str, username: str, display_name: str, province_code: str,
               city_code: str = "", phone: str = "", password: str = "") -> MemberCredentials:
    """Create a user of an added review role in its province (and city); generate the password if none is typed."""
    _require_analyst(user)
    username, display_name, phone = username.strip(), display_name.strip(), normalize_phone(phone)
    target = session.get(Role, role)
    errors: dict[str, str] = {}
    if target is None or target.builtin:
        errors["role"] = "角色：请选择已新增的审核角色"
    province = check_staff_fields(session, errors, province_code=province_code, username=username,
                                  display_name=display_name)
    city = session.get(Division, city_code) if city_code else None
    if target is not None and target.scope == SCOPE_CITY and (
            city is None or city.level != LEVEL_PREFECTURE or city.province_code != province_code):
        errors["city_code"] = "所属城市：市级角色须选择所属省份内的地级市"
    if phone and not PHONE_RE.match(phone):
        errors["phone"] = "手机号：请输入 11 位中国大陆手机号（1 开头），或不填"
    password_problem = check_new_password(password, password, username).get("password") if password else None
    if password_problem:
        errors["password"] = password_problem.replace("新密码", "初始密码")
    if errors:
        raise ServiceError("用户信息有误，请按提示修改", errors)
    assert target is not None
    password = password or generate_password(MEMBER_PASSWORD_LENGTH)
    try:
        member = create_staff(session, role=role, username=username, password=password, province_code=province_code,
                              city_code=city_code if target.scope == SCOPE_CITY else None, phone=phone or None,
                              display_name=display_name)
    except AccountError as exc:
        raise ServiceError(exc.message, {"__all__": exc.message}) from None
    member.must_change_password = True
    where = f"{province.name if province else ''}{city.name if city and target.scope == SCOPE_CITY else ''}"
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_role_member", target=f"user:{member.id}",
                           detail=f"{user.display_name} 新增{target.name}账号 {username}（{display_name}，{where}）"))
    return MemberCredentials(member.id, member.username, member.display_name, target.name, password)

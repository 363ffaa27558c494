"""Roles: the built-in ones and the roles added by analysts (scoped to the nation, a province, a city or a set of
certificates, and perhaps belonging to a training-evaluation organisation), which diagram lanes name."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, User
from app.accounts.organisations import parse_certificates, parse_organisation
from app.accounts.role_models import (
    SCOPE_CERTIFICATES,
    SCOPE_CITY,
    SCOPE_NATIONAL,
    SCOPE_PROVINCE,
    Organisation,
    Role,
    RoleCertificate,
)
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
from app.masterdata.models import LEVEL_PREFECTURE, LEVEL_PROVINCE, Certificate, Division
from app.sms.models import AuditEntry

CODE_RE = re.compile(r"^[a-z][a-z0-9_]{2,40}$")
MEMBER_PASSWORD_LENGTH = 12
ADDED_SCOPES = (SCOPE_PROVINCE, SCOPE_CITY, SCOPE_CERTIFICATES, SCOPE_NATIONAL)
SCOPE_WORDS = {SCOPE_PROVINCE: "省级", SCOPE_CITY: "市级", SCOPE_CERTIFICATES: "按证书", SCOPE_NATIONAL: "全国"}


def _require_analyst(user: User) -> None:
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以管理角色")


def lane_roles(session: Session) -> list[str]:
    """Return the role codes a diagram lane may name (every role but the built-in national staff roles)."""
    return list(session.scalars(select(Role.code).where(~(Role.builtin.is_(True) & (Role.scope == SCOPE_NATIONAL)))
                                .order_by(Role.code)))


def all_roles(session: Session) -> list[Role]:
    """Return every role, built-in first."""
    return list(session.scalars(select(Role).order_by(Role.builtin.desc(), Role.code)))


def get_role(session: Session, code: str) -> Role | None:
    """Return a role by code."""
    return session.get(Role, code)


def create_role(session: Session, user: User, code: str, name: str, scope: str, *,
                certificate_ids: Iterable[str] = (), organisation_id: str = "") -> Role:
    """Add a role scoped to a province, a city, a set of certificates or the nation, perhaps belonging to a
    training-evaluation organisation, so that a diagram lane can name it."""
    if user.role not in (ROLE_ANALYST, ROLE_MINISTRY_ADMIN):
        raise Forbidden("只有流程分析员或部级管理员可以新增角色")
    errors: dict[str, str] = {}
    code = code.strip()
    if not CODE_RE.match(code):
        errors["code"] = "角色代码：小写字母开头，3–41 位小写字母、数字或下划线（泳道名称使用此代码）"
    elif session.get(Role, code) is not None:
        errors["code"] = f"角色代码：{code} 已存在"
    if not 2 <= len(name.strip()) <= 32:
        errors["name"] = "角色名称：2–32 个字"
    if scope not in ADDED_SCOPES:
        errors["scope"] = "范围：请选择省级、市级、按证书或全国"
    organisation = parse_organisation(session, organisation_id, errors)
    certificates = parse_certificates(session, certificate_ids, errors, "certificate_ids") \
        if scope == SCOPE_CERTIFICATES else []
    if scope == SCOPE_CERTIFICATES and not certificates and organisation is None and "certificate_ids" not in errors:
        errors["certificate_ids"] = "证书：按证书的角色请至少选择一个证书，或选择所属培训评价组织（看该组织的证书）"
    if errors:
        raise ServiceError("角色信息有误", errors)
    role = Role(code=code, name=name.strip(), scope=scope, builtin=False, reviews=True,
                organisation_id=organisation.id if organisation else None, created_at=clock.now())
    session.add(role)
    session.add_all(RoleCertificate(role_code=code, certificate_id=c) for c in certificates)
    owner = f"，属于{organisation.name}" if organisation else ""
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_role", target=f"role:{code}",
                           detail=f"{user.display_name} 新增角色 {name}（{code}，{SCOPE_WORDS[scope]}"
                                  f"{f'，{len(certificates)} 个证书' if certificates else ''}{owner}）"))
    session.flush()
    return role


@dataclass
class RoleScopeNote:
    """What an added role's scope covers, in words: its certificates and its organisation."""

    certificates: list[str] = field(default_factory=list)
    organisation: str = ""


def role_scope_notes(session: Session) -> dict[str, RoleScopeNote]:
    """Return the certificates and organisation of each added role, by code."""
    notes = {code: RoleScopeNote() for code in session.scalars(select(Role.code).where(Role.builtin.is_(False)))}
    for code, certificate in session.execute(select(RoleCertificate.role_code, Certificate.name)
                                             .join(Certificate, Certificate.id == RoleCertificate.certificate_id)
                                             .order_by(Certificate.id)):
        notes[code].certificates.append(certificate)
    for code, organisation in session.execute(select(Role.code, Organisation.name)
                                              .join(Organisation, Organisation.id == Role.organisation_id)):
        notes[code].organisation = organisation
    return notes


@dataclass
class RoleMember:
    """A user of an added role, with the names of its province, city and organisation."""

    user: User
    province: str
    city: str
    organisation: str = ""


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
    organisations = dict(session.execute(select(Organisation.id, Organisation.name)).all())
    result: dict[str, list[RoleMember]] = {code: [] for code in custom}
    for member in session.scalars(select(User).where(User.role.in_(custom)).order_by(User.username)):
        result[member.role].append(RoleMember(member, names.get(member.province_code or "", ""),
                                              names.get(member.city_code or "", ""),
                                              organisations.get(member.organisation_id or 0, "")))
    return result


def scope_choices(session: Session) -> list[tuple[Division, list[Division]]]:
    """Return every province with its prefecture-level cities, for the scope of a role's member."""
    cities: dict[str, list[Division]] = {}
    for city in session.scalars(select(Division).where(Division.level == LEVEL_PREFECTURE).order_by(Division.code)):
        cities.setdefault(city.province_code, []).append(city)
    return [(p, cities.get(p.code, [])) for p in session.scalars(
        select(Division).where(Division.level == LEVEL_PROVINCE).order_by(Division.code))]


def add_member(session: Session, user: User, *, role: str, username: str, display_name: str, province_code: str,
               city_code: str = "", phone: str = "", password: str = "", organisation_id: str = "") -> MemberCredentials:
    """Create a user of an added role in its province (and city; a certificate role's user may have no province, so
    it works in every one), perhaps a member of an organisation; generate the password if none is typed."""
    _require_analyst(user)
    username, display_name, phone = username.strip(), display_name.strip(), normalize_phone(phone)
    target = session.get(Role, role)
    errors: dict[str, str] = {}
    if target is None or target.builtin:
        errors["role"] = "角色：请选择已新增的角色"
    # Only province and city roles must have a province; a national role's user has none.
    needs_province = target is None or target.scope in (SCOPE_PROVINCE, SCOPE_CITY)
    if target is not None and target.scope == SCOPE_NATIONAL:
        province_code = city_code = ""
    province = check_staff_fields(session, errors, province_code=province_code, username=username,
                                  display_name=display_name, province_required=needs_province)
    city = session.get(Division, city_code) if city_code else None
    if target is not None and target.scope == SCOPE_CITY and (
            city is None or city.level != LEVEL_PREFECTURE or city.province_code != province_code):
        errors["city_code"] = "所属城市：市级角色须选择所属省份内的地级市"
    organisation = parse_organisation(session, organisation_id, errors)
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
        member = create_staff(session, role=role, username=username, password=password,
                              province_code=province_code or None,
                              city_code=city_code if target.scope == SCOPE_CITY else None, phone=phone or None,
                              display_name=display_name)
    except AccountError as exc:
        raise ServiceError(exc.message, {"__all__": exc.message}) from None
    member.must_change_password = True
    member.organisation_id = organisation.id if organisation else None
    where = f"{province.name if province else '全国'}{city.name if city and target.scope == SCOPE_CITY else ''}"
    owner = f"，{organisation.name}" if organisation else ""
    session.add(AuditEntry(at=clock.now(), actor_id=user.id, action="create_role_member", target=f"user:{member.id}",
                           detail=f"{user.display_name} 新增{target.name}账号 {username}（{display_name}，{where}{owner}）"))
    return MemberCredentials(member.id, member.username, member.display_name, target.name, password)

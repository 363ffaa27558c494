"""Registration of a school that has never taken part (user guide 一.2)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts import phone_codes
from app.accounts.activation import issued_password
from app.accounts.models import ACCOUNT_PENDING, ROLE_LABELS, ROLE_SCHOOL, User
from app.accounts.phone_codes import CodeRules
from app.accounts.role_models import Role
from app.accounts.services import PHONE_RE, generate_password, normalize_phone
from app.core import ratelimit
from app.core.errors import ServiceError
from app.core.transactions import after_commit
from app.engine import engine
from app.masterdata.models import LEVEL_PREFECTURE, LEVEL_PROVINCE, Division, School
from app.processes.jobs import enqueue_delivery, run_inline_calls
from app.sms import services as sms


@dataclass
class Registered:
    """What the screen shows after registering or issuing an account: the account, and its generated password when
    the account is active already (None while the registration process has not activated it)."""

    user_id: int
    username: str
    password: str | None
    school_name: str
    phone: str
    active: bool = True
    waiting_for: str = ""  # who decides next, while the account waits (e.g. 广东省教育行政部门（省级管理员）)


@dataclass
class RegistrationForm:
    """What the registrant typed."""

    province_code: str
    city_code: str
    school_name: str
    phone: str
    code: str = ""


def provinces(session: Session) -> list[Division]:
    """Return the province-level divisions in code order."""
    return list(session.scalars(select(Division).where(Division.level == LEVEL_PROVINCE).order_by(Division.code)))


def cities(session: Session, province_code: str) -> list[Division]:
    """Return the prefecture-level divisions of a province."""
    return list(session.scalars(select(Division).where(
        Division.level == LEVEL_PREFECTURE, Division.province_code == province_code).order_by(Division.code)))


def search_schools(session: Session, province_code: str, query: str, city_code: str | None = None,
                   limit: int = 30) -> list[School]:
    """Return schools of the province's official list whose name contains the query."""
    stmt = select(School).where(School.province_code == province_code)
    if city_code:
        stmt = stmt.where((School.city_code == city_code) | (School.city_code.is_(None)))
    if query.strip():
        escaped = query.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(School.name.like(f"%{escaped}%", escape="\\"))
    return list(session.scalars(stmt.order_by(School.name_sort, School.name).limit(limit)))


CHOICES_SHOWN = 10


def match_school(session: Session, province_code: str, name: str,
                 city_code: str | None = None) -> tuple[School | None, list[str]]:
    """The listed school a typed name means: the one named exactly, else the only one whose name contains it (in
    the chosen city, or anywhere in the province); with several, none and the names to choose from (at most
    CHOICES_SHOWN)."""
    exact = session.scalars(select(School).where(School.province_code == province_code, School.name == name)).first()
    if exact is not None:
        return exact, []
    found = search_schools(session, province_code, name, city_code or None, limit=CHOICES_SHOWN + 1)
    if not found and city_code:
        found = search_schools(session, province_code, name, None, limit=CHOICES_SHOWN + 1)
    if len(found) == 1:
        return found[0], []
    return None, [s.name for s in found[:CHOICES_SHOWN]]


def officer_contact(session: Session, province_code: str) -> str:
    """Return how to reach the province's 1+X officer."""
    province = session.get(Division, province_code)
    if province is None:
        return "所在省级教育行政部门的 1+X 证书试点项目负责人"
    if province.officer_name or province.officer_phone:
        return f"{province.name}教育行政部门 1+X 证书试点负责人 {province.officer_name or ''} {province.officer_phone or ''}".strip()
    return f"{province.name}教育行政部门的 1+X 证书试点项目负责人"


def _checked_school(session: Session, form: RegistrationForm) -> tuple[School, str]:
    """Return the listed school and the normalised phone of the form; raise with every field error at once."""
    errors: dict[str, str] = {}
    phone = normalize_phone(form.phone)
    province_code, city_code = form.province_code, form.city_code
    province = session.get(Division, province_code) if province_code else None
    if province is None or province.level != LEVEL_PROVINCE:
        errors["province"] = "所在省市：请先选择院校所在省份"
    else:
        city_list = cities(session, province_code)
        if city_list and city_code not in {c.code for c in city_list}:
            errors["city"] = "所在省市：请选择院校所在城市"
    school = None
    name = form.school_name.strip()
    if not name:
        errors["school"] = "院校名称：必填，请从列表中选择"
    elif province is not None and "province" not in errors:
        school, choices = match_school(session, province_code, name, city_code)
        if school is None and choices:
            errors["school"] = (f"院校名称：“{name}”对应名单中的 {len(choices)} 所院校：{'、'.join(choices)}。"
                                "请输入更完整的名称或从列表中选择一所")
        elif school is None:
            errors["school"] = (f"院校名称：“{name}”不在{province.name}的教育部院校名单中，名单中也没有名称含这些字的院校。"
                                f"如本校不在名单中或名称有误，请联系{officer_contact(session, province_code)}")
    if not PHONE_RE.match(phone):
        errors["phone"] = "手机号：请输入 11 位中国大陆手机号（1 开头）"
    if errors:
        raise ServiceError("注册信息有误，请修改后再提交", errors)
    assert school is not None
    existing = session.scalars(select(User).where(User.school_id == school.id)).first()
    if existing is not None:
        contact = officer_contact(session, province_code)
        if existing.account_status == ACCOUNT_PENDING:
            raise ServiceError("该院校的注册申请正在审核", {"school": (
                f"院校名称：{school.name}的注册申请已提交，正在等待审核。如非本校人员提交，请联系{contact}")})
        raise ServiceError("该院校已注册", {"school": (
            f"院校名称：{school.name}已注册，请直接登录（账号为学校标识码）。如非本校人员注册或未收到账号，"
            f"请联系{contact}")})
    return school, phone


def request_code(session: Session, form: RegistrationForm, *, ip: str, rules: CodeRules,
                 limits: dict[str, tuple[int, int]]) -> str:
    """获取验证码: check what was typed, then text a code to the phone; return the phone it went to.

    A form that would be refused anyway sends nothing and uses none of the text budgets.
    """
    school, phone = _checked_school(session, form)
    phone_codes.send_code(session, phone, ip, rules, limits, province_code=school.province_code)
    return phone


def register_school(session: Session, form: RegistrationForm, *, ip: str, rules: CodeRules,
                    limits: dict[str, tuple[int, int]]) -> Registered:
    """Create the account of a listed school once its phone is proven, and start the registration process.

    The account waits (cannot log in, has no password) until the process activates it: the national process
    does so at once, within this request, so the registrant gets the password on screen and by SMS; a province's
    process may first ask its officer to approve.
    """
    school, phone = _checked_school(session, form)
    ratelimit.hit("register-ip", ip, limits["register_ip"], "注册过于频繁")
    phone_codes.use_code(session, phone, form.code, rules)
    user, instance_id = start_registration(session, school, phone)
    run_inline_calls(session, instance_id)
    password = issued_password(session, user.id) if user.is_active_account else None
    waiting = [t.lane for t in engine().open_tasks(session, instance_id)] if password is None else []
    return Registered(user.id, user.username, password, school.name, phone, active=user.is_active_account,
                      waiting_for=_deciders(session, school.province_code, waiting))


def start_registration(session: Session, school: School, phone: str) -> tuple[User, int]:
    """Create the school's account, waiting for its registration process, and start that process; return the
    account and the process instance id (the process's steps run after the commit, or inline: run_inline_calls)."""
    user = User(username=school.code, role=ROLE_SCHOOL, school_id=school.id, phone=phone,
                province_code=school.province_code, city_code=school.city_code, display_name=school.name,
                must_change_password=True, origin="registered", is_active_account=False,
                account_status=ACCOUNT_PENDING)
    user.set_password(secrets.token_urlsafe(32))  # nobody knows it: the process issues the password
    _add_account(session, user, school)
    province = session.get(Division, school.province_code)
    city = session.get(Division, school.city_code) if school.city_code else None
    outcome = engine().start(session, "registration", subject_type="user", subject_id=user.id,
                             province_code=school.province_code, city_code=school.city_code, school_id=school.id,
                             data={"phone": phone, "school_name": school.name, "school_code": school.code,
                                   "province_name": province.name if province else "",
                                   "city_name": city.name if city else "", "comment": ""})
    return user, outcome.instance_id


def _add_account(session: Session, user: User, school: School) -> None:
    """Store a new school account (a registration racing this one for the school loses with a clear message)."""
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise ServiceError("该院校已注册", {"school": f"院校名称：{school.name}已注册，请直接登录"}) from None


def _deciders(session: Session, province_code: str, lanes: list[str]) -> str:
    if not lanes:
        return ""
    province = session.get(Division, province_code)
    roles = "、".join(dict.fromkeys(_role_name(session, lane) for lane in lanes))
    return f"{province.name if province else ''}教育行政部门（{roles}）"


def _role_name(session: Session, code: str) -> str:
    role = session.get(Role, code)
    return role.name if role is not None else ROLE_LABELS.get(code, code)


def issue_account(session: Session, school: School, phone: str, *, origin: str,
                  username: str | None = None) -> Registered:
    """Create the active account of a school with a generated password, sent by SMS (a province officer's or the
    command line's act: no registration process to wait for)."""
    password = generate_password()
    user = User(username=username or school.code, role=ROLE_SCHOOL, school_id=school.id, phone=phone,
                province_code=school.province_code, city_code=school.city_code, display_name=school.name,
                must_change_password=True, origin=origin)
    user.set_password(password)
    _add_account(session, user, school)
    return send_credentials(session, user, school, password, "account_issued")


def send_credentials(session: Session, user: User, school: School, password: str, template: str) -> Registered:
    """Text the account and its password to the account's phone through the SMS outbox."""
    message = sms.queue_message(session, key=f"account:{user.id}:{secrets.token_hex(6)}", phone=user.phone or "",
                                template=template,
                                params={"school": school.name, "username": user.username, "password": password},
                                province_code=school.province_code, new_key=True)
    message_id = message.id
    after_commit(session, lambda: enqueue_delivery(message_id))
    return Registered(user.id, user.username, password, school.name, user.phone or "")

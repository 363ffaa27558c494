"""Registration of a school that has never taken part (user guide 一.2)."""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.accounts.models import ROLE_SCHOOL, User
from app.accounts.services import PHONE_RE, generate_password, normalize_phone
from app.core import ratelimit
from app.core.errors import ServiceError
from app.engine import engine
from app.masterdata.models import LEVEL_PREFECTURE, LEVEL_PROVINCE, Division, School
from app.sms import services as sms


@dataclass
class Registered:
    """What the screen shows after registering: the account and its generated password."""

    user_id: int
    username: str
    password: str
    school_name: str
    phone: str


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


def register_school(session: Session, *, province_code: str, city_code: str, school_name: str, phone: str,
                    ip: str, limits: dict[str, tuple[int, int]]) -> Registered:
    """Create the account of a listed school, and start the process that sends it by SMS."""
    errors: dict[str, str] = {}
    phone = normalize_phone(phone)
    province = session.get(Division, province_code) if province_code else None
    if province is None or province.level != LEVEL_PROVINCE:
        errors["province"] = "所在省市：请先选择院校所在省份"
    else:
        city_list = cities(session, province_code)
        if city_list and city_code not in {c.code for c in city_list}:
            errors["city"] = "所在省市：请选择院校所在城市"
    school = None
    name = school_name.strip()
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
    assert school is not None and province is not None
    ratelimit.hit("register-ip", ip, limits["register_ip"], "注册过于频繁")
    if session.scalars(select(User).where(User.school_id == school.id)).first() is not None:
        raise ServiceError("该院校已注册", {"school": (
            f"院校名称：{school.name}已注册，请直接登录（账号为学校标识码）。如非本校人员注册或未收到账号，"
            f"请联系{officer_contact(session, province_code)}")})
    # Only an attempt that sends a text uses the text quotas.
    ratelimit.hit("sms-self", phone, limits["sms_phone"], "该手机号接收短信过于频繁")
    ratelimit.hit("sms-ip", ip, limits["sms_ip"], "发送短信过于频繁")
    return issue_account(session, school, phone, origin="registered")


def issue_account(session: Session, school: School, phone: str, *, origin: str,
                  username: str | None = None) -> Registered:
    """Create the school's account with a generated password and send it by SMS through the registration process."""
    password = generate_password()
    user = User(username=username or school.code, role=ROLE_SCHOOL, school_id=school.id, phone=phone,
                province_code=school.province_code, city_code=school.city_code, display_name=school.name,
                must_change_password=True, origin=origin)
    user.set_password(password)
    try:
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise ServiceError("该院校已注册", {"school": f"院校名称：{school.name}已注册，请直接登录"}) from None
    return send_credentials(session, user, school, password, "account_issued")


def send_credentials(session: Session, user: User, school: School, password: str, template: str) -> Registered:
    """Prepare the SMS carrying the credentials and start the registration process that sends it."""
    ref = f"account:{user.id}:{secrets.token_hex(6)}"
    sms.queue_message(session, key=ref, phone=user.phone or "", template=template,
                      params={"school": school.name, "username": user.username, "password": password},
                      province_code=school.province_code)
    engine().start(session, "registration", subject_type="user", subject_id=user.id,
                   province_code=school.province_code, school_id=school.id,
                   data={"phone": user.phone, "message_ref": ref, "school_name": school.name})
    return Registered(user.id, user.username, password, school.name, user.phone or "")

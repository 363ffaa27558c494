"""Accounts: staff creation, login, passwords."""
from __future__ import annotations

import re
import secrets
import string
import unicodedata
from functools import cache

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app import clock, refcache
from app.accounts import login_throttle
from app.accounts.login_throttle import LoginLimits
from app.accounts.models import (
    ACCOUNT_PENDING,
    ROLE_PROVINCE_ADMIN,
    ROLE_PROVINCE_REVIEWER,
    STAFF_ROLES,
    User,
)
from app.accounts.role_models import SCOPE_CITY, SCOPE_PROVINCE, Role
from app.core.errors import ServiceError
from app.masterdata.models import Division

PHONE_RE = re.compile(r"^1[3-9][0-9]{9}\Z")
PASSWORD_ALPHABET = string.ascii_letters.replace("l", "").replace("I", "").replace("O", "") + "23456789"


class AccountError(ServiceError):
    """An account operation was refused."""


def normalize_phone(raw: str) -> str:
    """Return a typed phone number in ASCII digits (full-width, Arabic-Indic … converted), spaces removed."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text if not c.isspace())


def generate_password(length: int = 10) -> str:
    """Return a random password with letters and digits (no look-alike characters)."""
    while True:
        pw = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if any(c.isdigit() for c in pw) and any(c.isalpha() for c in pw):
            return pw


def check_new_password(password: str, confirm: str, username: str) -> dict[str, str]:
    """Return field errors for a new password, empty if it is acceptable."""
    errors: dict[str, str] = {}
    if len(password) < 8 or len(password) > 64:
        errors["password"] = "新密码：长度须为 8–64 位"
    elif not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        errors["password"] = "新密码：须同时包含字母和数字"
    elif password == username:
        errors["password"] = "新密码：不能与账号相同"
    if password != confirm:
        errors["confirm"] = "确认新密码：两次输入的密码不一致"
    return errors


def create_staff(session: Session, *, role: str, username: str, password: str, province_code: str | None = None,
                 city_code: str | None = None, phone: str | None = None, display_name: str = "") -> User:
    """Create a staff account; province roles need a province."""
    custom = session.get(Role, role)
    if role not in STAFF_ROLES and (custom is None or custom.builtin):
        raise AccountError(f"角色须为：{', '.join(STAFF_ROLES)}，或已新增的审核角色")
    scope = custom.scope if custom is not None else None
    if role in (ROLE_PROVINCE_ADMIN, ROLE_PROVINCE_REVIEWER) or scope in (SCOPE_PROVINCE, SCOPE_CITY):
        if not province_code or session.get(Division, province_code) is None:
            raise AccountError("省级角色必须指定有效的省级行政区代码（--province）")
    if scope == SCOPE_CITY:
        city = session.get(Division, city_code) if city_code else None
        if city is None or city.province_code != province_code or city.level != "prefecture":
            raise AccountError("市级角色必须指定该省内有效的地级市代码（--city）")
    if session.scalars(select(User).where(User.username == username)).first() is not None:
        raise AccountError(f"账号 {username} 已存在")
    if len(password) < 8:
        raise AccountError("密码至少 8 位")
    user = User(username=username, role=role, province_code=province_code, city_code=city_code, phone=phone,
                display_name=display_name or username, origin="staff")
    user.set_password(password)
    session.add(user)
    session.flush()
    return user


@cache
def _stand_in_hash() -> str:
    """A hash of a random password, made like the stored ones, to check against when there is no account."""
    return generate_password_hash(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None.

    Every attempt checks one password hash, of the account or a stand-in, so that the time taken does not tell
    known usernames from unknown ones.
    """
    user = session.scalars(select(User).where(User.username == username.strip())).first()
    matches = check_password_hash(user.password_hash if user is not None else _stand_in_hash(), password)
    if user is None or not matches or not user.is_active_account:
        return None
    user.last_login_at = clock.now()
    return user


def log_in(session: Session, username: str, password: str, address: str, limits: LoginLimits) -> User:
    """Check a login attempt from an address, slowing down an address that keeps failing (see login_throttle)."""
    if not username or not password:
        raise AccountError("账号和密码均为必填")
    login_throttle.admit(username, address, limits)
    user = authenticate(session, username, password)
    if user is None:
        login_throttle.failed(username, address)
        status = session.scalar(select(User.account_status).where(User.username == username.strip()))
        if status == ACCOUNT_PENDING:
            raise AccountError("该账号的注册申请正在等待审核，审核通过后账号和初始密码将以短信发送到注册手机，"
                               "在此之前不能登录")
        raise AccountError("账号或密码不正确")
    login_throttle.succeeded(username, address)
    return user


def change_password(session: Session, user_id: int, current: str, new: str, confirm: str) -> User:
    """Change a user's password after checking the current one."""
    user = session.get(User, user_id)
    if user is None:
        raise AccountError("账号不存在")
    errors = {}
    if not user.check_password(current):
        errors["current"] = "当前密码：输入不正确"
    errors.update(check_new_password(new, confirm, user.username))
    if errors:
        raise AccountError("请修正以下问题", errors)
    user.set_password(new)
    user.must_change_password = False
    return user


def end_sessions(session: Session, user_id: int) -> None:
    """End every open session of the user (a copied session cookie stops working too)."""
    user = session.get(User, user_id)
    if user is not None:
        user.session_token = (user.session_token or 0) + 1


def load_user(session: Session, token: str) -> User | None:
    """Return the user of a session token 'id:version' if it is still valid."""
    try:
        user_id, version = (int(p) for p in token.split(":", 1))
    except ValueError:
        return None
    # the row as of the accounts cache (followed across processes within a second, see app.refcache)
    user = refcache.attach(session, User, user_id, kind="accounts")
    if user is None or user.session_token != version or not user.is_active_account:
        return None
    return user


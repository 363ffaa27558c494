"""What the registration process does to the account it is about: activate it (issue and text its password) or
refuse it (free the school for a rightful registration). The operators account_activate and account_refuse call
these (app.handlers.account_steps)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ACCOUNT_ACTIVE, ACCOUNT_PENDING, ACCOUNT_REFUSED, User
from app.accounts.services import generate_password
from app.core.errors import ServiceError
from app.core.transactions import keep, kept
from app.masterdata.models import School
from app.sms import services as sms
from app.sms.models import AuditEntry, SmsMessage

ISSUED_PASSWORDS = "issued passwords"  # app.core.transactions: passwords generated in this transaction, by user id


def issued_password(session: Session, user_id: int) -> str | None:
    """Return the password this transaction issued to the account (the registrant's screen shows it), if any."""
    found = kept(session, ISSUED_PASSWORDS, user_id)
    return str(found) if found else None


def _pending_account(session: Session, user_id: int, doing: str) -> tuple[User, School]:
    user = session.scalars(select(User).where(User.id == user_id).with_for_update()).first()
    school = session.get(School, user.school_id) if user is not None and user.school_id else None
    if user is None or school is None:
        raise ServiceError(f"无法{doing}：该注册的账号已不存在或已解除注册")
    if user.account_status == ACCOUNT_REFUSED:
        raise ServiceError(f"无法{doing}：该账号的注册已被拒绝")
    return user, school


def activate_account(session: Session, user_id: int, message_key: str) -> SmsMessage:
    """Activate a registered account with a generated password and queue the text carrying it (once per key)."""
    user, school = _pending_account(session, user_id, "开通账号")
    existing = session.scalars(select(SmsMessage).where(SmsMessage.idempotency_key == message_key)).first()
    if existing is not None and user.account_status == ACCOUNT_ACTIVE:
        return existing
    password = generate_password()
    user.set_password(password)
    user.must_change_password = True
    user.is_active_account = True
    user.account_status = ACCOUNT_ACTIVE
    keep(session, ISSUED_PASSWORDS, user.id, password)
    session.add(AuditEntry(at=clock.now(), actor_id=None, action="activate_account", target=f"school:{school.id}",
                           detail=f"院校注册流程开通账号 {user.username}，初始密码已短信发送"))
    return sms.queue_message(session, key=message_key, phone=user.phone or "", template="account_issued",
                             params={"school": school.name, "username": user.username, "password": password},
                             province_code=school.province_code)


def refuse_account(session: Session, user_id: int, reason: str) -> None:
    """Refuse a registration: the account never works, and the school is free to register again."""
    user, school = _pending_account(session, user_id, "拒绝注册")
    if user.account_status != ACCOUNT_PENDING:
        raise ServiceError("无法拒绝注册：该账号已开通")
    old = user.username
    user.account_status = ACCOUNT_REFUSED
    user.is_active_account = False
    user.school_id = None
    user.username = f"refused-{user.id}-{old}"[:64]
    user.session_token = (user.session_token or 0) + 1
    session.add(AuditEntry(at=clock.now(), actor_id=None, action="refuse_registration", target=f"school:{school.id}",
                           detail=f"院校注册流程拒绝账号 {old} 的注册，院校可重新注册；审核意见：{reason or '无'}"))
    session.flush()

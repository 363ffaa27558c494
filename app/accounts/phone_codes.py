"""Codes that prove a phone (获取验证码): texted through the SMS outbox, kept only as a keyed hash, short-lived,
void after a few wrong tries, and used once.

Sending counts against the self-service text budgets (per phone and per address, see app.core.ratelimit) and
waits a minute between two codes to one phone. Wrong tries are counted in Redis, atomically and before the
comparison, so parallel guesses cannot pass the limit and a failed request's rollback does not undo the count.
The text keeps the code readable in the outbox (it is what the phone shows) until the code is used; then it is
masked there too.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import PhoneCode
from app.core import ratelimit
from app.core.errors import ServiceError
from app.core.transactions import after_commit
from app.processes.jobs import enqueue_delivery
from app.sms import services as sms
from app.sms.models import SmsMessage

PURPOSE_REGISTER = "register"
TEMPLATE = "registration_code"
CODE_LENGTH = 6


@dataclass(frozen=True)
class CodeRules:
    """How long a code lives, how many wrong tries void it, the wait between two codes, and the hashing key."""

    ttl: int
    attempts: int
    gap: int
    key: str

    @classmethod
    def from_settings(cls, settings: Any) -> CodeRules:
        return cls(int(settings.registration_code_ttl), int(settings.registration_code_attempts),
                   int(settings.registration_code_gap), str(settings.secret_key))

    @property
    def minutes(self) -> int:
        return max(1, self.ttl // 60)


def _digest(rules: CodeRules, phone: str, code: str) -> str:
    return hmac.new(rules.key.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def send_code(session: Session, phone: str, ip: str, rules: CodeRules, limits: dict[str, tuple[int, int]],
              province_code: str | None = None) -> PhoneCode:
    """Text a new code to the phone (an earlier unused code of the phone stops counting)."""
    ratelimit.hit("code-gap", phone, (1, rules.gap), "验证码已发送，请稍候再重新获取")
    ratelimit.hit("sms-self", phone, limits["sms_phone"], "该手机号接收短信过于频繁")
    ratelimit.hit("sms-ip", ip, limits["sms_ip"], "发送短信过于频繁")
    code = "".join(secrets.choice("0123456789") for _ in range(CODE_LENGTH))
    now = clock.now()
    row = PhoneCode(phone=phone, purpose=PURPOSE_REGISTER, code_hash=_digest(rules, phone, code), ip=ip[:64],
                    created_at=now, expires_at=now + timedelta(seconds=rules.ttl))
    session.add(row)
    session.flush()
    message = sms.queue_message(session, key=f"code:{row.id}", phone=phone, template=TEMPLATE,
                                params={"code": code, "minutes": rules.minutes}, province_code=province_code,
                                new_key=True)
    row.message_id = message.id
    message_id = message.id
    after_commit(session, lambda: enqueue_delivery(message_id))
    return row


def use_code(session: Session, phone: str, code: str, rules: CodeRules) -> None:
    """Check the phone's newest code and mark it used; raise ServiceError naming the 验证码 field if it fails."""
    code = code.strip()
    if not (len(code) == CODE_LENGTH and code.isascii() and code.isdigit()):
        raise ServiceError("验证码有误", {"sms_code": f"验证码：请输入短信中的 {CODE_LENGTH} 位数字验证码"})
    row = session.scalars(select(PhoneCode).where(PhoneCode.phone == phone, PhoneCode.purpose == PURPOSE_REGISTER)
                          .order_by(PhoneCode.id.desc()).limit(1).with_for_update()).first()
    if row is None or row.used_at is not None:
        raise ServiceError("验证码有误", {"sms_code": "验证码：请先点击“获取验证码”，并填写短信中的验证码"})
    if row.expires_at <= clock.now():
        raise ServiceError("验证码已过期", {"sms_code": "验证码：已过期，请重新获取验证码"})
    try:
        ratelimit.hit("code-try", str(row.id), (rules.attempts, rules.ttl + 60), "验证码错误次数过多")
    except ratelimit.RateLimited:
        raise ServiceError("验证码已失效", {"sms_code": "验证码：错误次数过多，该验证码已失效，请重新获取验证码"}) from None
    if not hmac.compare_digest(row.code_hash, _digest(rules, phone, code)):
        raise ServiceError("验证码有误", {"sms_code": "验证码：不正确，请核对短信中的验证码"})
    row.used_at = clock.now()
    message = session.get(SmsMessage, row.message_id) if row.message_id else None
    if message is not None:  # used: the record need not show it any more
        message.params = {**message.params, "code": sms.MASK}
        message.body = message.body.replace(code, sms.MASK)  # the text as sent, less the code

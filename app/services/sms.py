"""Text messages: templates, the backends behind one interface, and delivery."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.models.sms import SMS_FAILED, SMS_QUEUED, SMS_RETRYING, SMS_SENT, SmsMessage

TEMPLATES: dict[str, str] = {
    "account_issued": "【1+X证书试点】{school}已注册试点院校申报系统，账号：{username}，初始密码：{password}。"
                      "首次登录请修改密码，请勿泄露。",
    "account_reset": "【1+X证书试点】{school}的试点院校申报系统账号：{username}，新密码：{password}。请登录后修改密码。",
    "review_approved": "【1+X证书试点】{school}申报的{certificate}（{level}）试点已审核通过。",
    "review_rejected": "【1+X证书试点】{school}申报的{certificate}（{level}）试点审核不通过，审核意见：{comment}。"
                       "请登录系统修改后重新提交。",
    "drafts_expired": "【1+X证书试点】{school}：{plan}申报已截止，未提交的申报草稿已过期。",
}


def render(template: str, params: dict[str, Any]) -> str:
    """Fill a message template; unknown placeholders stay visible rather than failing."""
    text = TEMPLATES.get(template)
    if text is None:
        raise ValueError(f"未知短信模板：{template}")

    class _Keep(dict[str, Any]):
        def __missing__(self, key: str) -> str:
            return "{" + key + "}"

    return text.format_map(_Keep({k: ("" if v is None else v) for k, v in params.items()}))


@dataclass
class DeliveryResult:
    """What a provider said about one message."""

    ok: bool
    provider_message_id: str = ""
    error: str = ""
    retryable: bool = True


class SmsBackend(Protocol):
    """A way to deliver a message."""

    name: str

    def send(self, message: SmsMessage) -> DeliveryResult: ...


class OutboxBackend:
    """Keep messages in the database only; the outbox page and `flask sms outbox` show them."""

    name = "outbox"

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    def send(self, message: SmsMessage) -> DeliveryResult:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # stands for a slow provider in crash tests and demos
        return DeliveryResult(ok=True, provider_message_id=f"outbox-{message.id}")


def get_backend(name: str, settings: Any) -> SmsBackend:
    """Return the configured backend."""
    if name == "outbox":
        return OutboxBackend(float(getattr(settings, "extra", {}).get("outbox_delay", 0) or 0))
    raise ValueError(f"未知短信通道：{name}")


def queue_message(session: Session, *, key: str, phone: str, template: str, params: dict[str, Any],
                  backend: str = "outbox") -> SmsMessage:
    """Record a message to send (once per key) and return it."""
    existing = session.scalars(select(SmsMessage).where(SmsMessage.idempotency_key == key)).first()
    if existing is not None:
        return existing
    message = SmsMessage(idempotency_key=key, phone=phone, template=template, params=params,
                         body=render(template, params), backend=backend, status=SMS_QUEUED)
    session.add(message)
    session.flush()
    return message


def deliver(session: Session, message_id: int, backend: SmsBackend, max_attempts: int = 3) -> SmsMessage | None:
    """Deliver one queued message through the backend; a sent message is never sent again."""
    message = session.scalars(select(SmsMessage).where(SmsMessage.id == message_id).with_for_update()).first()
    if message is None or message.status in (SMS_SENT, SMS_FAILED):
        return message
    message.attempts += 1
    result = backend.send(message)
    if result.ok:
        message.status = SMS_SENT
        message.sent_at = clock.now()
        message.provider_message_id = result.provider_message_id
        message.error = None
    else:
        message.error = result.error
        message.status = SMS_RETRYING if result.retryable and message.attempts < max_attempts else SMS_FAILED
    return message

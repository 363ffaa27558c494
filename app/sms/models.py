"""Text messages and the audit log."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.clock import now
from app.core.db import Base

SMS_QUEUED = "queued"
SMS_SENT = "sent"
SMS_RETRYING = "retrying"
SMS_FAILED = "failed"
SMS_STATUS_LABELS = {SMS_QUEUED: "待发送", SMS_SENT: "已发送", SMS_RETRYING: "重试中", SMS_FAILED: "发送失败"}


class SmsMessage(Base):
    """One text message; its body is stored with secrets masked, its params keep them until delivery."""

    __tablename__ = "sms_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128), unique=True)
    phone: Mapped[str] = mapped_column(String(16), index=True)
    template: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    body: Mapped[str] = mapped_column(Text)
    backend: Mapped[str] = mapped_column(String(32), default="outbox")
    status: Mapped[str] = mapped_column(String(16), default=SMS_QUEUED, index=True)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    provider_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None] = mapped_column(nullable=True)
    province_code: Mapped[str | None] = mapped_column(String(6), nullable=True, index=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The provider's template code as it was when the message was queued (a later edit of the template changes
    # neither the text nor the code of a message already queued).
    provider_template: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The service call (sms_many) that sent this message to one of many recipients: its progress on the outbox page.
    service_call_id: Mapped[int | None] = mapped_column(nullable=True, index=True)


NATIONAL = ""  # SmsTemplate.scope of a national template


class SmsTemplate(Base):
    """A message template of the registry: national (scope "") or one province's own text of it."""

    __tablename__ = "sms_template"
    __table_args__ = (UniqueConstraint("name", "scope", name="uq_sms_template_scope"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64))  # what diagrams and the app name it by
    scope: Mapped[str] = mapped_column(String(6), default=NATIONAL)  # "" national, else a province code
    label: Mapped[str] = mapped_column(String(64))  # what the message is about (账号开通, ...)
    text: Mapped[str] = mapped_column(Text)  # with named placeholders: {school}
    provider_code: Mapped[str] = mapped_column(String(64), default="")  # e.g. the Aliyun TemplateCode
    # Placeholders the app itself fills (name -> what it holds); empty when diagrams fill them.
    system_variables: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(default=now)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class SmsTemplateRevision(Base):
    """One saved state of a template: its history, newest last."""

    __tablename__ = "sms_template_revision"
    __table_args__ = (UniqueConstraint("template_id", "version", name="uq_sms_template_revision"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("sms_template.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column()
    label: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    provider_code: Mapped[str] = mapped_column(String(64), default="")
    note: Mapped[str] = mapped_column(Text, default="")
    changed_at: Mapped[datetime] = mapped_column(default=now)
    changed_by: Mapped[str] = mapped_column(String(64), default="")


class AuditEntry(Base):
    """A record of an administrative action: who did what to which record, when."""

    __tablename__ = "audit_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), nullable=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    detail: Mapped[str] = mapped_column(Text, default="")

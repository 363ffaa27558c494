"""The record of text messages, as staff and the command line read it, and resending by hand."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from app import clock
from app.accounts.models import ROLE_ANALYST, ROLE_MINISTRY_ADMIN, ROLE_PROVINCE_ADMIN, User
from app.accounts.school_accounts import mask_phone
from app.core.errors import Forbidden, NotFound, ServiceError
from app.core.transactions import after_commit
from app.masterdata.models import Division
from app.processes.jobs import enqueue_delivery
from app.processes.models import ServiceCall
from app.sms.models import SMS_FAILED, SMS_QUEUED, AuditEntry, SmsMessage
from app.sms.services import (
    RESEND_PARAM,
    SMS_SENDING,
    SMS_UNKNOWN,
    STATUS_LABELS,
    is_stale_sending,
)
from app.sms.templates import labels as template_labels

PER_PAGE = 50
# The statuses staff can filter by, in the order of a message's life.
STATUS_FILTERS: dict[str, str] = {key: STATUS_LABELS[key] for key in
                                  ("queued", SMS_SENDING, "sent", "retrying", "failed", SMS_UNKNOWN)}
READERS = (ROLE_MINISTRY_ADMIN, ROLE_ANALYST, ROLE_PROVINCE_ADMIN)
# Analysts follow how messages go (status, attempts, errors), not what they say or to whom.
CONTENT_READERS = (ROLE_MINISTRY_ADMIN, ROLE_PROVINCE_ADMIN)
RESENDERS = (ROLE_MINISTRY_ADMIN, ROLE_PROVINCE_ADMIN)


@dataclass
class MessageRow:
    """One message as the outbox page shows it."""

    id: int
    created_at: datetime
    sent_at: datetime | None
    next_attempt_at: datetime | None
    phone: str
    kind: str  # what the message is about (账号开通, 审核通过通知, ...)
    body: str  # empty for those who may not read the content
    status: str  # the shown status: a claim past its deadline shows as unknown
    status_label: str
    attempts: int
    error: str
    backend: str
    province: str
    can_resend: bool


@dataclass
class OutboxPage:
    """A page of messages and where it sits in the whole list."""

    rows: list[MessageRow]
    total: int
    page: int
    pages: int
    can_resend: bool
    shows_content: bool


@dataclass
class BulkSend:
    """A message to many (sms_many step) and how far its delivery has come."""

    call_id: int
    step: str
    kind: str
    created_at: datetime | None
    total: int
    sent: int
    pending: int
    failed: int

    @property
    def percent(self) -> int:
        return round(100 * (self.sent + self.failed) / self.total) if self.total else 100


def bulk_sends(session: Session, user: User, limit: int = 20) -> list[BulkSend]:
    """Return the newest messages to many in the user's scope, with counts of their messages by outcome."""
    _require_reader(user)
    conditions: list[ColumnElement[bool]] = [SmsMessage.service_call_id.is_not(None)]
    scope = _scope(user)
    if scope is not None:
        conditions.append(scope)
    call_ids = [int(c) for c in session.scalars(select(SmsMessage.service_call_id).where(*conditions).group_by(
        SmsMessage.service_call_id).order_by(SmsMessage.service_call_id.desc()).limit(limit)) if c is not None]
    if not call_ids:
        return []
    now = clock.now()
    counts: dict[int, dict[str, int]] = {}
    rows = session.execute(select(SmsMessage.service_call_id, SmsMessage.status, SmsMessage.next_attempt_at,
                                  SmsMessage.template).where(*conditions, SmsMessage.service_call_id.in_(call_ids)))
    templates: dict[int, str] = {}
    for row in rows:
        call_id, status, next_at, template = int(row[0] or 0), str(row[1]), row[2], str(row[3])
        stale = status == SMS_SENDING and next_at is not None and next_at <= now
        outcome = ("sent" if status == "sent" else "failed" if status in (SMS_FAILED, SMS_UNKNOWN) or stale
                   else "pending")
        bucket = counts.setdefault(call_id, {"sent": 0, "failed": 0, "pending": 0})
        bucket[outcome] += 1
        templates[call_id] = template
    calls = {c.id: c for c in session.scalars(select(ServiceCall).where(ServiceCall.id.in_(call_ids)))}
    kinds = template_labels(session, templates.values())
    result = []
    for call_id in call_ids:
        c = counts.get(call_id, {"sent": 0, "failed": 0, "pending": 0})
        call = calls.get(call_id)
        step = call.task_name if call is not None else f"#{call_id}"
        result.append(BulkSend(call_id, step, kinds.get(templates.get(call_id, ""), templates.get(call_id, "")),
                               call.created_at if call is not None else None, sum(c.values()), c["sent"],
                               c["pending"], c["failed"]))
    return result


def newest_messages(session: Session, phone: str | None = None, limit: int = 50) -> list[SmsMessage]:
    """Return the newest messages, optionally for one phone."""
    stmt = select(SmsMessage).order_by(SmsMessage.id.desc()).limit(max(1, min(limit, 500)))
    if phone:
        stmt = stmt.where(SmsMessage.phone == phone)
    return list(session.scalars(stmt))


def _require_reader(user: User) -> None:
    if user.role not in READERS:
        raise Forbidden("只有部级管理员、流程分析员和省级管理员可以查看短信记录")


def _scope(user: User) -> ColumnElement[bool] | None:
    """Limit a province admin to the messages of the province; the ministry and analysts see all."""
    if user.role == ROLE_PROVINCE_ADMIN:
        return SmsMessage.province_code == (user.province_code or "")
    return None


def _status_condition(status: str, now: datetime) -> ColumnElement[bool]:
    stale = and_(SmsMessage.status == SMS_SENDING, SmsMessage.next_attempt_at <= now)
    if status == SMS_UNKNOWN:
        return or_(SmsMessage.status == SMS_UNKNOWN, stale)
    if status == SMS_SENDING:
        return and_(SmsMessage.status == SMS_SENDING, SmsMessage.next_attempt_at > now)
    return SmsMessage.status == status


def shown_status(message: SmsMessage, now: datetime | None = None) -> str:
    """The status to show: a claim nobody answered before its deadline is 状态未知."""
    return SMS_UNKNOWN if is_stale_sending(message, now) else message.status


def list_messages(session: Session, user: User, *, phone: str = "", status: str = "", page: int = 1,
                  per_page: int = PER_PAGE) -> OutboxPage:
    """Return one page of the messages the user may see, newest first, filtered by phone and status."""
    _require_reader(user)
    now = clock.now()
    conditions: list[ColumnElement[bool]] = []
    scope = _scope(user)
    if scope is not None:
        conditions.append(scope)
    if phone:
        conditions.append(SmsMessage.phone.contains(phone, autoescape=True))
    if status in STATUS_FILTERS:
        conditions.append(_status_condition(status, now))
    total = session.scalar(select(func.count()).select_from(SmsMessage).where(*conditions)) or 0
    pages = max(1, -(-total // per_page))
    page = min(max(1, page), pages)
    messages = session.scalars(select(SmsMessage).where(*conditions).order_by(SmsMessage.id.desc())
                               .offset((page - 1) * per_page).limit(per_page)).all()
    codes = {m.province_code for m in messages if m.province_code}
    names = {code: name for code, name in session.execute(
        select(Division.code, Division.name).where(Division.code.in_(codes)))} if codes else {}
    kinds = template_labels(session, (m.template for m in messages))
    may_resend = user.role in RESENDERS
    shows_content = user.role in CONTENT_READERS
    rows = []
    for m in messages:
        shown = shown_status(m, now)
        rows.append(MessageRow(
            id=m.id, created_at=m.created_at, sent_at=m.sent_at,
            next_attempt_at=m.next_attempt_at if m.status == "retrying" else None,
            phone=m.phone if shows_content else mask_phone(m.phone),
            kind=kinds.get(m.template, m.template), body=m.body if shows_content else "", status=shown,
            status_label=STATUS_LABELS.get(shown, shown), attempts=m.attempts, error=m.error or "",
            backend=m.backend, province=names.get(m.province_code or "", m.province_code or ""),
            can_resend=may_resend and shown in (SMS_FAILED, SMS_UNKNOWN)))
    return OutboxPage(rows, total, page, pages, may_resend, shows_content)


def resend_message(session: Session, user: User, message_id: int) -> SmsMessage:
    """Put a failed (or 状态未知) message back in the queue by hand; the resend is audited."""
    if user.role not in RESENDERS:
        raise Forbidden("只有部级管理员和省级管理员可以重新发送短信")
    stmt = select(SmsMessage).where(SmsMessage.id == message_id).with_for_update()
    scope = _scope(user)
    if scope is not None:
        stmt = stmt.where(scope)
    message = session.scalars(stmt).first()
    if message is None:
        raise NotFound("该短信不存在或不在您的管辖范围内")
    previous = shown_status(message)
    if previous not in (SMS_FAILED, SMS_UNKNOWN):
        raise ServiceError(f"只有发送失败或状态未知的短信可以重新发送（当前状态：{STATUS_LABELS.get(previous, previous)}）")
    detail = (f"{user.display_name or user.username} 重新发送短信 #{message.id}（{message.phone}）；"
              f"此前状态：{STATUS_LABELS.get(previous, previous)}，已尝试 {message.attempts} 次，错误：{message.error or '无'}")
    message.status = SMS_QUEUED
    # A fresh OutId, so that reconciling this round never mistakes the provider's record of an earlier one.
    message.params = {**message.params, RESEND_PARAM: int(message.params.get(RESEND_PARAM) or 0) + 1}
    message.attempts = 0
    message.error = None
    message.next_attempt_at = None
    entry = AuditEntry(at=clock.now(), actor_id=user.id, action="resend_sms", target=f"sms:{message.id}",
                       detail=detail)
    session.add(entry)
    session.flush()

    after_commit(session, lambda: enqueue_delivery(message_id, tag=f"r{entry.id}"))
    return message


def resend_history(session: Session, message_id: int) -> list[AuditEntry]:
    """Return the recorded resends of a message, oldest first."""
    return list(session.scalars(select(AuditEntry).where(AuditEntry.target == f"sms:{message_id}")
                                .order_by(AuditEntry.at, AuditEntry.id)))

"""Text messages: templates, the backends behind one interface, and at-most-once delivery.

Statuses of SmsMessage.status (a free string):

    queued    待发送    recorded, waiting for its first attempt
    sending   发送中    claimed by a worker; next_attempt_at holds the claim's deadline
    sent      已发送
    retrying  重试中    a retryable failure; next_attempt_at is when the next attempt is due
    failed    发送失败  a permanent error, or retryable errors until `sms_max_attempts`
    unknown   状态未知  the provider may or may not have the message: never resent automatically

Towards a real provider (`backend.two_phase`) a message is delivered at most once:

1. claim: lock the row, check that the message is due, set 'sending' with a deadline, and commit;
2. call the provider outside any transaction;
3. record the answer, only if the row still carries this claim.

A duplicate job finds 'sending' or 'sent' and does nothing. A worker that dies between 1 and 3 leaves
'sending'; after the deadline (`sms_sending_timeout`) the check job scheduled at claim time, or any later
job for the message, asks the provider by OutId (Aliyun QuerySendDetails): found → sent (or failed);
not found, or the provider cannot be asked → 状态未知, never resent automatically: an admin checks and
resends by hand (the outbox page also shows a claim past its deadline as 状态未知). A timeout is uncertain
too: it is retried after the backoff, but the retry first asks the provider and sends again only if the
provider has no record of the message.

The outbox backend only stores: claim, "send" and record happen in one transaction (exactly once; a
crash rolls back to queued).

Secrets (SECRET_PARAMS: generated passwords) are kept only until delivery: the stored body never holds them
(it is rendered with the secret masked), and the params that carry them to the provider are masked when the
message is recorded as sent. A message not delivered keeps them, so that a resend by hand can deliver it.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock, rowwrites
from app.core.transactions import held, hold
from app.sms.models import (
    SMS_FAILED,
    SMS_QUEUED,
    SMS_RETRYING,
    SMS_SENT,
    SMS_STATUS_LABELS,
    SmsMessage,
    SmsTemplate,
)
from app.sms.templates import placeholders, render_text, resolve

log = logging.getLogger(__name__)
SMS_SENDING = "sending"
SMS_UNKNOWN = "unknown"
STATUS_LABELS: dict[str, str] = {**SMS_STATUS_LABELS, SMS_SENDING: "发送中", SMS_UNKNOWN: "状态未知"}
# Our own error codes for outcomes that leave open whether the provider has the message.
UNCERTAIN_CODES = frozenset({"TIMEOUT", "CONNECTION_LOST", "LOOKUP_FAILED", "INTERRUPTED"})
# RQ schedules in whole seconds, so a scheduled attempt may start up to a second early.
DUE_SLACK = timedelta(seconds=1)

SECRET_PARAMS = ("password",)
MASK = "******"
RESEND_PARAM = "_resend"  # kept in params (never a template variable): how often an admin resent the message


def render(session: Session, template: str, params: dict[str, Any], province_code: str | None = None) -> str:
    """Fill the template in force for the province; raise ValueError naming an unknown template."""
    return render_text(_template(session, template, province_code).text, params)


def _template(session: Session, name: str, province_code: str | None) -> SmsTemplate:
    found = resolve(session, name, province_code)
    if found is None:
        raise ValueError(f"未知短信模板：{name}（请在“短信模板”页面添加）")
    return found


def delivered_text(message: SmsMessage) -> str:
    """The text as the phone shows it: the stored body with its masked secrets filled back while they are kept."""
    text = message.body
    for key in SECRET_PARAMS:
        value = message.params.get(key)
        if value not in (None, "", MASK):
            text = text.replace(MASK, str(value))
    return text


def masked(params: dict[str, Any]) -> dict[str, Any]:
    """Return the params with their secrets replaced by the mask."""
    return {k: (MASK if k in SECRET_PARAMS and v else v) for k, v in params.items()}


@dataclass
class DeliveryResult:
    """What a provider said about one message."""

    ok: bool
    provider_message_id: str = ""
    error: str = ""
    retryable: bool = True
    code: str = ""  # the provider's error code, or ours (TIMEOUT, CONNECTION_FAILED, ...)
    uncertain: bool = False  # the provider may have accepted the message despite the error

    def error_text(self) -> str:
        return f"{self.code}: {self.error}" if self.code else self.error


class SmsBackend(Protocol):
    """A way to deliver a message."""

    name: str
    two_phase: bool  # the message leaves the machine: claim and commit before calling out
    can_lookup: bool  # the provider can say whether it has a message we sent earlier

    def send(self, message: SmsMessage) -> DeliveryResult: ...

    def lookup(self, message: SmsMessage) -> DeliveryResult | None:
        """Return what the provider knows about an earlier send of the message, or None if it has no record."""
        ...


class OutboxBackend:
    """Keep messages in the database only; the outbox page and `flask sms outbox` show them."""

    name = "outbox"
    two_phase = False
    can_lookup = False

    def __init__(self, delay_seconds: float = 0.0) -> None:
        self.delay_seconds = delay_seconds

    def send(self, message: SmsMessage) -> DeliveryResult:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # stands for a slow provider in crash tests and demos
        return DeliveryResult(ok=True, provider_message_id=f"outbox-{message.id}")

    def lookup(self, message: SmsMessage) -> DeliveryResult | None:
        return None


def get_backend(name: str, settings: Any) -> SmsBackend:
    """Return the configured backend."""
    if name == "outbox":
        return OutboxBackend(float(getattr(settings, "extra", {}).get("outbox_delay", 0) or 0))
    if name == "aliyun":
        # The provider's module builds on this one (templates, results) and loads its SDK: imported when chosen.
        from app.sms.providers.aliyun import AliyunBackend
        return AliyunBackend.from_settings(settings)
    raise ValueError(f"未知短信通道：{name}")


def configured_backend_name() -> str:
    """Return the backend name of the current app's settings ("outbox" outside an app)."""
    from flask import current_app, has_app_context

    return current_app.config["XPILOT"].sms_backend if has_app_context() else "outbox"


def queue_message(session: Session, *, key: str, phone: str, template: str, params: dict[str, Any],
                  backend: str | None = None, province_code: str | None = None, new_key: bool = False) -> SmsMessage:
    """Record a message to send (once per key), rendered from the template in force for the province, and return it.

    new_key: the caller knows no committed message has the key (the unique index still guards it).
    """
    if not new_key:
        existing = session.scalars(select(SmsMessage).where(SmsMessage.idempotency_key == key)).first()
        if existing is not None:
            return existing
    message = rowwrites.insert_loaded(session, SmsMessage, message_row(
        _template(session, template, province_code), key=key, phone=phone, params=params,
        backend=backend or configured_backend_name(), province_code=province_code))
    hold(session, HELD_MESSAGES, message.id, message)  # no other transaction can see it yet
    return message


def message_row(found: SmsTemplate, *, key: str, phone: str, params: Mapping[str, Any], backend: str,
                province_code: str | None, service_call_id: int | None = None) -> dict[str, Any]:
    """Return the column values of a queued message: its params are the template's placeholders (what the provider's
    template receives), its body the text rendered now with secrets masked."""
    names = placeholders(found.text)
    kept = {name: params.get(name) for name in names}
    kept.update({k: v for k, v in params.items() if k.startswith("_")})
    return {"idempotency_key": key, "phone": phone, "template": found.name, "params": kept,
            "body": render_text(found.text, masked(kept)), "backend": backend, "status": SMS_QUEUED, "attempts": 0,
            "error": None, "provider_message_id": None, "created_at": clock.now(), "sent_at": None,
            "province_code": province_code, "next_attempt_at": None, "provider_template": found.provider_code or None,
            "service_call_id": service_call_id}


HELD_MESSAGES = "sms messages"  # app.core.transactions: messages the open transaction inserted or locked


def delivery_ref(message: SmsMessage) -> str:
    """The reference a provider keeps for the message (Aliyun OutId); each resend by hand gets a new one."""
    resent = message.params.get(RESEND_PARAM)
    return f"xpilot-{message.id}-r{resent}" if resent else f"xpilot-{message.id}"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a message is tried."""

    max_attempts: int = 3
    backoff: tuple[int, ...] = (30, 120, 600)
    sending_timeout: int = 300

    @classmethod
    def from_settings(cls, settings: Any) -> RetryPolicy:
        return cls(int(settings.sms_max_attempts), tuple(settings.sms_retry_backoff), int(settings.sms_sending_timeout))

    def wait_after(self, attempts: int) -> int:
        """Seconds to wait after the n-th failed attempt (the last wait repeats)."""
        if not self.backoff:
            return 0
        return self.backoff[max(0, min(attempts, len(self.backoff)) - 1)]

    def schedule(self) -> list[int]:
        """Seconds after the first attempt at which each later attempt is due."""
        at, times = 0, []
        for attempt in range(1, self.max_attempts):
            at += self.wait_after(attempt)
            times.append(at)
        return times


@dataclass
class Step:
    """Where a message stands after a delivery step, and when to look at it again."""

    status: str
    attempts: int = 0
    wait: float | None = None  # seconds until the next attempt is due (None: nothing to schedule)


@dataclass
class Claim:
    """A message a job holds for delivery (message None: nothing to do, see step)."""

    step: Step
    message: SmsMessage | None = None
    deadline: datetime | None = None
    reconcile: bool = False  # ask the provider first: an earlier attempt may have reached it
    interrupted: bool = False  # an earlier claim was never answered: do not send again


def error_code(error: str | None) -> str:
    """Return the code an error text starts with ("TIMEOUT: ..." → "TIMEOUT")."""
    return (error or "").split(":", 1)[0].strip()


def is_stale_sending(message: SmsMessage, now: datetime | None = None) -> bool:
    """Return whether a claimed message has passed its deadline without an answer (shown as 状态未知)."""
    return (message.status == SMS_SENDING and message.next_attempt_at is not None
            and message.next_attempt_at <= (now or clock.now()))


def _locked(session: Session, message_id: int) -> SmsMessage | None:
    """Lock the message row until the transaction ends (a second call in the same transaction asks nothing)."""
    message = held(session, HELD_MESSAGES, message_id)
    if message is None:
        stmt = select(SmsMessage).where(SmsMessage.id == message_id).with_for_update().execution_options(
            populate_existing=True)
        message = session.scalars(stmt).first()
        if message is not None:
            hold(session, HELD_MESSAGES, message_id, message)
    return message


def claim(session: Session, message_id: int, backend: SmsBackend, policy: RetryPolicy) -> Claim:
    """Lock the message and claim it for an attempt if it is due (in the session: the caller commits, before
    calling out when the backend is two-phase)."""
    message = _locked(session, message_id)
    if message is None:
        return Claim(Step("missing"))
    now = clock.now()
    status = message.status
    if status in (SMS_SENT, SMS_FAILED, SMS_UNKNOWN):
        return Claim(Step(status, message.attempts))
    interrupted = status == SMS_SENDING
    if interrupted and not is_stale_sending(message, now):
        return Claim(Step(status, message.attempts))  # another worker is on it right now
    if (status == SMS_RETRYING and message.next_attempt_at is not None
            and message.next_attempt_at > now + DUE_SLACK):
        return Claim(Step(status, message.attempts, (message.next_attempt_at - now).total_seconds()))
    reconcile = interrupted or (status == SMS_RETRYING and error_code(message.error) in UNCERTAIN_CODES)
    if reconcile and not backend.can_lookup:
        _mark_unknown(message, "INTERRUPTED: 发送结果未知，且短信通道无法查询是否已收到；请核实后手动重新发送")
        return Claim(Step(SMS_UNKNOWN, message.attempts))
    if not interrupted:
        message.attempts += 1
    deadline = now + timedelta(seconds=policy.sending_timeout)
    message.status = SMS_SENDING
    message.backend = backend.name
    message.next_attempt_at = deadline
    return Claim(Step(SMS_SENDING, message.attempts), message, deadline, reconcile, interrupted)


def call_provider(held: Claim, backend: SmsBackend) -> DeliveryResult:
    """Make the claimed attempt: ask the provider first if an earlier attempt may have reached it, else send."""
    message = held.message
    assert message is not None
    if held.reconcile:
        known = backend.lookup(message)
        if known is not None and (known.ok or not known.uncertain):
            return known
        if held.interrupted:
            return DeliveryResult(ok=False, retryable=False, uncertain=True, code="INTERRUPTED",
                                  error="发送过程中断，短信服务无此短信记录或无法查询；请核实后手动重新发送")
        if known is not None:
            return known  # the provider could not be asked: try again later, do not send blind
    return backend.send(message)


def record(session: Session, held: Claim, result: DeliveryResult, policy: RetryPolicy) -> Step:
    """Record the provider's answer if the message still carries this claim (in the session: the caller commits)."""
    assert held.message is not None
    message = _locked(session, held.message.id)
    if message is None or message.status != SMS_SENDING or message.next_attempt_at != held.deadline:
        log.warning("sms %s: claim lost before recording the answer (%s)", held.message.id,
                    "sent" if result.ok else result.code)
        return Step(message.status if message else "missing", message.attempts if message else 0)
    now = clock.now()
    wait: float | None = None
    if result.ok:
        message.status = SMS_SENT
        message.sent_at = now
        if any(message.params.get(k) not in (None, "", MASK) for k in SECRET_PARAMS):
            message.params = masked(message.params)  # delivered: the secret is needed no more
        message.provider_message_id = result.provider_message_id or None
        message.error = None
        message.next_attempt_at = None
    else:
        message.error = result.error_text()[:2000]
        if result.retryable and message.attempts < policy.max_attempts:
            wait = float(policy.wait_after(message.attempts))
            message.status = SMS_RETRYING
            message.next_attempt_at = now + timedelta(seconds=wait)
        else:
            message.status = SMS_UNKNOWN if result.uncertain else SMS_FAILED
            message.next_attempt_at = None
    return Step(message.status, message.attempts, wait)


def _mark_unknown(message: SmsMessage, error: str) -> None:
    message.status = SMS_UNKNOWN
    message.error = error
    message.next_attempt_at = None


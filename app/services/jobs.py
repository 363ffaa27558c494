"""Background jobs run by RQ workers. Jobs take ids, are idempotent, and commit once."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask import current_app
from rq import Retry
from sqlalchemy import select

from app import clock
from app.extensions import db
from app.handlers import HANDLERS
from app.models.process import ProcessInstance, ServiceCall
from app.models.sms import SMS_QUEUED, SMS_RETRYING, SmsMessage
from app.queue import jobs

log = logging.getLogger(__name__)
RETRY = Retry(max=3, interval=[5, 30, 120])


def enqueue_service_call(call_id: int) -> None:
    """Queue the job that runs a service call (called after commit)."""
    jobs.queue.enqueue_call(run_service_call, args=(call_id,), job_id=f"svc-{call_id}", retry=RETRY,
                            result_ttl=600, failure_ttl=7 * 86400)


def schedule_wake(instance_id: int, at: datetime) -> None:
    """Schedule the job that fires an instance's timers, rounded up to the next whole second."""
    at = (at + timedelta(seconds=1)).replace(microsecond=0)
    jobs.queue.enqueue_at(at, wake_instance, instance_id, job_id=f"wake-{instance_id}-{int(at.timestamp())}")


def enqueue_delivery(message_id: int) -> None:
    """Queue delivery of a text message."""
    jobs.queue.enqueue_call(deliver_message, args=(message_id,), job_id=f"sms-{message_id}", retry=RETRY,
                            result_ttl=600, failure_ttl=7 * 86400)


def enqueue_deliveries(message_ids: list[int]) -> None:
    """Queue delivery of many messages, a few hundred per job."""
    with jobs.redis.pipeline() as pipe:
        for start in range(0, len(message_ids), 200):
            chunk = message_ids[start:start + 200]
            jobs.queue.enqueue_call(deliver_messages, args=(chunk,), job_id=f"smsb-{chunk[0]}-{chunk[-1]}",
                                    retry=RETRY, result_ttl=600, failure_ttl=7 * 86400, pipeline=pipe)
        pipe.execute()


def deliver_messages(message_ids: list[int]) -> int:
    """Deliver a batch of queued messages; each is committed on its own so a crash loses none."""
    sent = 0
    for message_id in message_ids:
        try:
            deliver_message(message_id)
            sent += 1
        except RuntimeError:
            enqueue_delivery(message_id)
    return sent


def run_service_call(call_id: int) -> str:
    """Run a service call's handler and complete its task if it still waits."""
    from app.services.processes import engine

    session = db.session()
    call = session.get(ServiceCall, call_id)
    if call is None or call.status != "pending":
        session.rollback()
        return "skipped"
    # Take the instance lock first so that a duplicate job waits, then finds the call done.
    engine().lock(session, call.instance_id)
    session.refresh(call)
    if call.status != "pending":
        session.rollback()
        return "skipped"
    try:
        handler = HANDLERS[call.operation]
        result = handler.func(session, call)
        completed = engine().complete_service(session, call, result)
        call.status = "done" if completed else "cancelled"
        call.attempts += 1
        call.result = result
        call.updated_at = clock.now()
        message_id = result.get("message_id") if isinstance(result, dict) else None
        if completed and message_id:
            from app.extensions import after_commit
            after_commit(session, lambda: enqueue_delivery(int(message_id)))
        session.commit()
        return call.status
    except Exception as exc:
        session.rollback()
        _record_failure(call_id, exc)
        raise


def _record_failure(call_id: int, exc: Exception) -> None:
    session = db.session()
    call = session.get(ServiceCall, call_id)
    if call is None:
        return
    call.attempts += 1
    call.last_error = f"{type(exc).__name__}: {exc}"[:2000]
    if call.attempts > call.max_retries:
        call.status = "failed"
    call.updated_at = clock.now()
    session.commit()


def deliver_message(message_id: int) -> str:
    """Deliver a queued text message through the configured backend."""
    from app.services.sms import get_backend

    settings = current_app.config["XPILOT"]
    session = db.session()
    message = session.get(SmsMessage, message_id)
    if message is None:
        return "missing"
    from app.services.sms import deliver
    result = deliver(session, message_id, get_backend(message.backend, settings))
    session.commit()
    if result is not None and result.status == SMS_RETRYING:
        raise RuntimeError(result.error or "provider error")
    return result.status if result is not None else "missing"


def wake_instance(instance_id: int) -> str:
    """Fire the due timers of an instance."""
    from app.services.processes import engine

    session = db.session()
    outcome = engine().wake(session, instance_id)
    session.commit()
    return outcome.status if outcome is not None else "finished"


def sweep() -> dict[str, int]:
    """Re-queue work a crashed worker left behind: pending calls, undelivered messages, overdue wakes."""
    session = db.session()
    calls = session.scalars(select(ServiceCall.id).where(ServiceCall.status == "pending")).all()
    messages = session.scalars(select(SmsMessage.id).where(SmsMessage.status.in_((SMS_QUEUED, SMS_RETRYING)))).all()
    wakes = session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.completed.is_(False), ProcessInstance.next_wake_at.is_not(None),
        ProcessInstance.next_wake_at <= clock.now())).all()
    session.rollback()
    for call_id in calls:
        enqueue_service_call(call_id)
    for message_id in messages:
        enqueue_delivery(message_id)
    for instance_id in wakes:
        jobs.queue.enqueue_call(wake_instance, args=(instance_id,), job_id=f"wake-{instance_id}-sweep")
    return {"calls": len(calls), "messages": len(messages), "wakes": len(wakes)}

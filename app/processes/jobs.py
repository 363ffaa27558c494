"""Background jobs run by RQ workers. Jobs take ids, are idempotent, and commit once."""
from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from flask import current_app
from rq import Retry
from rq.job import Job
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import clock
from app.core.transactions import after_commit, end_session, savepoint
from app.engine import engine
from app.engine.runtime import StepFailed
from app.extensions import db
from app.handlers.handler import HANDLERS_KEY, Handler
from app.processes.models import ProcessInstance, ServiceCall
from app.queue import jobs
from app.sms import services as sms
from app.sms.models import SMS_QUEUED, SMS_RETRYING, SMS_SENT, SmsMessage

if TYPE_CHECKING:
    from app.sms.services import RetryPolicy, SmsBackend, Step

log = logging.getLogger(__name__)
RETRY = Retry(max=3, interval=[5, 30, 120])


DRAIN_FLAG = "xpilot:svc-drain"  # set while a drain job is queued or running (its job id)
DRAIN_WAKE = "xpilot:svc-wake"  # one token per commit of new service calls, for the running drain
DRAIN_TTL = 10  # seconds: a drain that died stops holding the flag after this long
DRAIN_BATCH = 200
DRAIN_GATHER = 0.02  # seconds a woken drain waits before it looks, so that one look finds several calls


def enqueue_service_call(call_id: int) -> None:
    """Queue a job of its own for one service call: retries, the start-up sweep, an admin's 重试."""
    jobs.queue.enqueue_call(run_service_call, args=(call_id,), job_id=f"svc-{call_id}", retry=RETRY,
                            result_ttl=600, failure_ttl=7 * 86400)


def service_calls_ready() -> None:
    """New service calls are committed: make sure a drain job will look for them.

    A drain job runs every new call it finds and then waits a short while (the linger) for a token pushed here,
    so while calls keep arriving they share one job instead of paying RQ's own cost (some 25 Redis commands and
    milliseconds of the worker's CPU) each. Only the commit that sets the flag queues a job; the others leave a
    token. Flag and token are set in one MULTI/EXEC, so a drain that is leaving either sees the token or has
    already freed the flag for this commit to queue a new drain. The flag expires, so a lost drain job delays
    calls by seconds at most; the worker's catch-up watch and start-up sweep run whatever is still pending.
    """
    job_id = f"svc-drain-{uuid.uuid4().hex[:12]}"
    with jobs.redis.pipeline() as pipe:
        pipe.set(DRAIN_FLAG, job_id, nx=True, ex=DRAIN_TTL)
        pipe.rpush(DRAIN_WAKE, 1)
        pipe.expire(DRAIN_WAKE, DRAIN_TTL)
        queued = pipe.execute()[0]
    if queued:
        jobs.queue.enqueue_call(drain_service_calls, job_id=job_id, result_ttl=60, failure_ttl=7 * 86400)


def drain_service_calls(budget_seconds: float = 2.0) -> dict[str, int]:
    """Run the pending service calls that have not been tried yet, oldest first, each in its own transaction,
    and keep doing so while new ones arrive within the linger (settings: service_drain_linger).

    A woken drain waits DRAIN_GATHER before it looks, so that at a steady stream of commits one look (a query and
    a Redis round trip) finds the calls of several. A call that fails is handed to a job of its own, which retries
    it with backoff (RETRY). The drain ends when no call arrives for the linger, or after the budget so that other
    jobs (timers, deliveries) do not wait behind it; calls still coming then get a new drain job at the back of the
    queue.
    """
    linger = float(current_app.config["XPILOT"].service_drain_linger)
    started = time.monotonic()
    outcome = {"done": 0, "skipped": 0, "failed": 0, "rounds": 0}
    full = False
    while True:
        with jobs.redis.pipeline() as pipe:
            pipe.delete(DRAIN_WAKE)  # the query below answers every token pushed so far
            pipe.expire(DRAIN_FLAG, DRAIN_TTL)  # still draining
            pipe.execute()
        session = db.session()
        ids = session.scalars(select(ServiceCall.id).where(ServiceCall.status == "pending", ServiceCall.attempts == 0)
                              .order_by(ServiceCall.id).limit(DRAIN_BATCH)).all()
        session.rollback()
        for call_id in ids:
            _drain_one(call_id, outcome)
        outcome["rounds"] += 1
        full = len(ids) == DRAIN_BATCH
        if time.monotonic() - started >= budget_seconds:
            break
        if full:
            continue
        if linger <= 0 or jobs.redis.blpop([DRAIN_WAKE], timeout=linger) is None:
            break
        time.sleep(min(DRAIN_GATHER, linger))  # let the calls of commits close behind this one share the round
    # Free the flag so that the next commit queues a new drain, then answer a token pushed since the last look
    # (its commit found the flag still set and counted on this drain).
    jobs.redis.delete(DRAIN_FLAG)
    if jobs.redis.lpop(DRAIN_WAKE) is not None or full:
        service_calls_ready()
    return outcome


def _drain_one(call_id: int, outcome: dict[str, int]) -> None:
    try:
        status = run_service_call(call_id)
    except Exception:
        log.exception("service call %s failed inside a drain; retried by a job of its own", call_id)
        db.session.rollback()
        jobs.queue.enqueue_in(timedelta(seconds=RETRY.intervals[0]), run_service_call, call_id,
                              job_id=f"svc-{call_id}", retry=RETRY, result_ttl=600, failure_ttl=7 * 86400)
        outcome["failed"] += 1
    else:
        outcome["done" if status == "done" else "skipped"] += 1


def schedule_wake(instance_id: int, at: datetime) -> None:
    """Schedule the job that fires an instance's timers, rounded up to the next whole second."""
    at = (at + timedelta(seconds=1)).replace(microsecond=0)
    jobs.queue.enqueue_at(at, wake_instance, instance_id, job_id=f"wake-{instance_id}-{int(at.timestamp())}")


def enqueue_delivery(message_id: int, *, delay: float = 0.0, tag: str = "") -> None:
    """Queue delivery of a text message, now or after `delay` seconds (tag: a distinct job id per attempt)."""
    options: dict[str, Any] = {"job_id": f"sms-{message_id}-{tag}" if tag else f"sms-{message_id}",
                               "retry": RETRY, "result_ttl": 600, "failure_ttl": 7 * 86400}
    if delay > 0:  # RQ schedules whole seconds (rounding down): round up so the job never starts early
        at = (datetime.now(UTC) + timedelta(seconds=delay + 1)).replace(microsecond=0)
        jobs.queue.enqueue_at(at, deliver_message, message_id, **options)
    else:
        jobs.queue.enqueue_call(deliver_message, args=(message_id,), **options)


def enqueue_deliveries(message_ids: list[int], per_minute: int = 0) -> None:
    """Queue delivery of many messages, a few hundred per job; with per_minute, at most that many a minute (the
    provider's rate limit): each minute's share is a job scheduled a minute after the previous one."""
    size = min(200, per_minute) if per_minute > 0 else 200
    now = datetime.now(UTC)
    with jobs.redis.pipeline() as pipe:
        for start in range(0, len(message_ids), size):
            chunk = message_ids[start:start + size]
            options: dict[str, Any] = {"job_id": f"smsb-{chunk[0]}-{chunk[-1]}", "retry": RETRY, "result_ttl": 600,
                                       "failure_ttl": 7 * 86400, "pipeline": pipe}
            minute = start // per_minute if per_minute > 0 else 0
            if minute:
                at = (now + timedelta(minutes=minute, seconds=1)).replace(microsecond=0)
                jobs.queue.enqueue_at(at, deliver_messages, chunk, **options)
            else:
                jobs.queue.enqueue_call(deliver_messages, args=(chunk,), **options)
        pipe.execute()


def deliver_messages(message_ids: list[int]) -> int:
    """Deliver a batch of queued messages; each is committed on its own so a crash loses none."""
    sent = 0
    for message_id in message_ids:
        try:
            sent += deliver_message(message_id) == SMS_SENT
        except Exception:
            log.exception("sms %s: delivery failed inside a batch; queued on its own", message_id)
            db.session.rollback()
            enqueue_delivery(message_id)
    return sent


def run_service_call(call_id: int) -> str:
    """Run a service call's handler and complete its task if it still waits."""
    session = db.session()
    # Take the instance lock with the call so that a duplicate job waits, then finds the call done.
    call = engine().lock_of_call(session, call_id)
    if call is None or call.status != "pending":
        session.rollback()
        return "skipped"
    try:
        _perform(session, call)
        session.commit()
        return call.status
    except Exception as exc:
        session.rollback()
        end_session(session)
        _record_failure(call_id, exc)
        raise


def _perform(session: Session, call: ServiceCall) -> None:
    """Run a pending call's handler and complete its task (the caller holds the instance lock and commits)."""
    handler: Handler = current_app.extensions[HANDLERS_KEY][call.operation]
    result = handler.func(session, call)
    completed = engine().complete_service(session, call, result)
    if not completed:
        call.status = "cancelled"
        call.attempts += 1
        call.result = result
        call.updated_at = clock.now()
    message_id = result.get("message_id") if isinstance(result, dict) else None
    if completed and message_id:
        _deliver_with_call(session, int(message_id))


def run_inline_calls(session: Session, instance_id: int) -> int:
    """Run, in the caller's transaction, the instance's new calls whose operation is run inline (Handler.inline),
    as long as the steps keep reaching such calls; return how many ran. A call that fails here is left to the
    worker, which retries it as usual."""
    handlers: dict[str, Handler] = current_app.extensions[HANDLERS_KEY]
    inline = [name for name, handler in handlers.items() if handler.inline]
    done = 0
    while inline:
        call = session.scalars(select(ServiceCall).where(
            ServiceCall.instance_id == instance_id, ServiceCall.status == "pending", ServiceCall.attempts == 0,
            ServiceCall.operation.in_(inline)).order_by(ServiceCall.id).limit(1)).first()
        if call is None:
            break
        try:
            with savepoint(session):
                engine().lock(session, instance_id)
                _perform(session, call)
        except Exception:
            log.exception("inline service call %s failed; the worker will run it", call.id)
            break
        done += 1
    return done


def _deliver_with_call(session: Session, message_id: int) -> None:
    """Deliver a service call's message in the call's own transaction when the backend only stores it (one
    job per message, exactly once: a crash rolls both back); a real provider gets a delivery job of its own
    after the commit (it must not be called inside a transaction, see app.sms.services)."""

    settings = current_app.config["XPILOT"]
    backend = sms.get_backend(settings.sms_backend, settings)
    if backend.two_phase:
        after_commit(session, lambda: enqueue_delivery(message_id))
        return
    step = _deliver_single_phase(session, message_id, backend, sms.RetryPolicy.from_settings(settings))
    if step.wait is not None:
        wait = step.wait
        after_commit(session, lambda: enqueue_delivery(message_id, delay=wait, tag=f"a{step.attempts + 1}"))


def _deliver_single_phase(session: Session, message_id: int, backend: SmsBackend, policy: RetryPolicy) -> Step:

    held = sms.claim(session, message_id, backend, policy)
    if held.message is None:
        return held.step
    return sms.record(session, held, sms.call_provider(held, backend), policy)


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
    """Deliver a text message through the configured backend, at most once (see app.sms.services)."""
    settings = current_app.config["XPILOT"]
    backend = sms.get_backend(settings.sms_backend, settings)
    policy = sms.RetryPolicy.from_settings(settings)
    session = db.session()
    if not backend.two_phase:
        step = _deliver_single_phase(session, message_id, backend, policy)
        session.commit()
        if step.wait is not None:
            enqueue_delivery(message_id, delay=step.wait, tag=f"a{step.attempts + 1}")
        return step.status
    held = sms.claim(session, message_id, backend, policy)
    if held.message is None:
        session.commit()
        if held.step.wait is not None:  # not due yet (a duplicate or a sweep): run it when it is
            enqueue_delivery(message_id, delay=held.step.wait, tag=f"a{held.step.attempts + 1}")
        return held.step.status
    # Two commits, on purpose: 'sending' is durable before the provider hears of the message, so a
    # duplicate job or a restarted worker never sends it again. The check job looks after a crash.
    session.commit()
    assert held.deadline is not None
    enqueue_delivery(message_id, delay=policy.sending_timeout + 1, tag=f"c{int(held.deadline.timestamp())}")
    step = sms.record(session, held, sms.call_provider(held, backend), policy)
    session.commit()
    if step.wait is not None:
        enqueue_delivery(message_id, delay=step.wait, tag=f"a{step.attempts + 1}")
    return step.status


def wake_instance(instance_id: int) -> str:
    """Fire the due timers of an instance."""
    session = db.session()
    try:
        outcome = engine().wake(session, instance_id)
    except StepFailed:  # recorded as an incident, the instance parked: waking it again would fail the same way
        session.rollback()
        end_session(session)
        return "incident"
    session.commit()
    return outcome.status if outcome is not None else "finished"


SWEPT_MARK = "xpilot:swept"  # set by every sweep: missing, Redis has lost its data (restarted empty) since


def sweep() -> dict[str, int]:
    """Re-queue work a crashed worker left behind: pending calls, undelivered messages, overdue wakes."""
    jobs.redis.set(SWEPT_MARK, clock.now().isoformat())
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


def catch_up(grace_seconds: float = 3.0) -> dict[str, int]:
    """Run what is overdue even if RQ's scheduler is not moving (a dead worker can hold its lock for minutes).

    Scheduled jobs past due by more than the grace are moved to the queue, instances whose timers are past
    due get a wake job unless one is already waiting, and untried service calls get a drain job. Every job
    here is idempotent, so a job the scheduler also moves at the same moment only runs twice to no effect.
    """
    from rq.exceptions import NoSuchJobError
    from rq.registry import ScheduledJobRegistry

    if jobs.redis.set(SWEPT_MARK, clock.now().isoformat(), nx=True):
        # Redis came back without its data (no persistence, or a new server): the queued and scheduled jobs are
        # gone, so queue again whatever the database says is still to do, as a worker does when it starts.
        swept = sweep()
        log.warning("Redis lost its jobs; re-queued %s", swept)
    queue = jobs.queue
    registry = ScheduledJobRegistry(queue=queue)
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_seconds)
    moved = 0
    for job_id in registry.get_jobs_to_schedule(int(cutoff.timestamp())):
        try:
            job = Job.fetch(job_id, connection=jobs.redis)
        except NoSuchJobError:
            registry.remove(job_id)
            continue
        registry.remove(job)
        queue.enqueue_job(job)
        moved += 1
    session = db.session()
    overdue = session.scalars(select(ProcessInstance.id).where(
        ProcessInstance.completed.is_(False), ProcessInstance.next_wake_at.is_not(None),
        ProcessInstance.next_wake_at <= clock.now() - timedelta(seconds=grace_seconds))).all()
    session.rollback()
    woken = 0
    for instance_id in overdue:
        job_id = f"wake-{instance_id}-catchup"
        try:
            if Job.fetch(job_id, connection=jobs.redis).get_status() in ("queued", "started", "scheduled"):
                continue
        except NoSuchJobError:
            pass
        queue.enqueue_call(wake_instance, args=(instance_id,), job_id=job_id, result_ttl=60)
        woken += 1
    # A new service call whose drain job was lost (Redis failed between the flag and the job, say).
    untried = session.scalar(select(ServiceCall.id).where(
        ServiceCall.status == "pending", ServiceCall.attempts == 0,
        ServiceCall.created_at <= clock.now() - timedelta(seconds=grace_seconds)).limit(1))
    session.rollback()
    if untried is not None:
        service_calls_ready()
    return {"moved": moved, "woken": woken, "untried calls": int(untried is not None)}

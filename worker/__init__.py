"""The RQ worker of X-Pilot: an app context, preloaded process specs, a start-up sweep, the scheduler.

Run it as `python -m worker`, or with RQ's own command line (same environment settings):

    rq worker --with-scheduler -w worker.XPilotWorker xpilot
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import redis
from flask import Flask
from rq import Queue, SimpleWorker, Worker
from rq.executions import Execution
from rq.job import Job
from sqlalchemy import select

from app import create_app
from app.engine import engine
from app.extensions import db
from app.processes import jobs as process_jobs
from app.processes.models import ProcessVersion
from app.queue import QUEUE_NAME, jobs

log = logging.getLogger("worker")


def preload_specs(app: Flask) -> int:
    """Parse every active process version into the spec cache; return how many."""
    with app.app_context():
        session = db.session()
        versions = session.scalars(select(ProcessVersion).where(ProcessVersion.active.is_(True))).all()
        for version in versions:
            engine().parsed(version)
        session.rollback()
        return len(versions)


def sweep(app: Flask) -> dict[str, int]:
    """Re-queue the work a crashed worker left behind."""
    with app.app_context():
        return process_jobs.sweep()


def catch_up_loop(app: Flask, stop: threading.Event, every: float = 5.0) -> None:
    """Every few seconds, run overdue scheduled jobs and timers that RQ's scheduler has not moved."""
    while not stop.wait(every):
        try:
            with app.app_context():
                done = process_jobs.catch_up()
                db.session.remove()
            if any(done.values()):
                log.info("caught up overdue work: %s", done)
        except Exception:  # keep watching whatever one round hit (Redis or database briefly away)
            log.exception("catch-up round failed")


class AppWorkerMixin:
    """Run every job inside a fresh app context of one Flask app created at start-up.

    The worker always talks to the Redis of the app's settings (REDIS_URL, or the embedded
    server), so `rq worker` and `python -m worker` cannot disagree about where the queue is.
    """

    app: Flask

    def _init_app(self, queues: Any, connection: redis.Redis | None, app: Flask | None) -> tuple[list[str], redis.Redis]:

        self.app = app if app is not None else create_app()
        names = [q.name if isinstance(q, Queue) else str(q) for q in _as_list(queues)] or [QUEUE_NAME]
        own = jobs.client()  # the app's timeouts (RQ lengthens the read timeout to outlast its blocking dequeue)
        if connection is not None and _address(connection) != _address(own):
            log.warning("ignoring the Redis connection %s given on the command line; using the app's %s",
                        _address(connection), jobs.url)
        return names, own

    def work(self, *args: Any, **kwargs: Any) -> bool:
        """Preload the specs, sweep, start the catch-up watch, then work inside the app context."""
        count = preload_specs(self.app)
        swept = sweep(self.app)
        log.info("X-Pilot worker: %d process versions preloaded; re-queued %s", count, swept)
        stop = threading.Event()
        watch = threading.Thread(target=catch_up_loop, args=(self.app, stop), name="xpilot-catch-up", daemon=True)
        if not kwargs.get("burst"):
            watch.start()
        try:
            with self.app.app_context():
                return super().work(*args, **kwargs)  # type: ignore[misc]
        finally:
            stop.set()

    def perform_job(self, job: Job, queue: Queue, execution: Execution) -> bool:
        """Perform one job in its own app context (its database session is removed afterwards)."""
        with self.app.app_context():
            return super().perform_job(job, queue, execution)  # type: ignore[misc]


class XPilotWorker(AppWorkerMixin, Worker):
    """A forking RQ worker (one work horse per job) for the X-Pilot jobs."""

    def __init__(self, queues: Any = None, *, connection: redis.Redis | None = None, app: Flask | None = None,
                 **kwargs: Any) -> None:
        names, own = self._init_app(queues, connection, app)
        super().__init__(names, connection=own, **kwargs)

    def main_work_horse(self, job: Job, queue: Queue) -> None:
        """Drop the database connections inherited from the parent before the horse runs its job."""

        if db.engine is not None:
            db.engine.dispose(close=False)  # the parent still owns those sockets
        db.session.registry.clear()
        super().main_work_horse(job, queue)


class XPilotSimpleWorker(AppWorkerMixin, SimpleWorker):
    """A non-forking worker (jobs run in the worker process): for debugging and platforms without fork."""

    def __init__(self, queues: Any = None, *, connection: redis.Redis | None = None, app: Flask | None = None,
                 **kwargs: Any) -> None:
        names, own = self._init_app(queues, connection, app)
        super().__init__(names, connection=own, **kwargs)


def _as_list(queues: Any) -> Sequence[Any]:
    if queues is None:
        return []
    if isinstance(queues, (str, Queue)):
        return [queues]
    return list(queues)


def _address(connection: redis.Redis) -> tuple[Any, ...]:
    kwargs = connection.connection_pool.connection_kwargs
    return (kwargs.get("path") or kwargs.get("host"), kwargs.get("port"), kwargs.get("db", 0))


__all__ = ["XPilotSimpleWorker", "XPilotWorker", "preload_specs", "sweep"]

"""`python -m worker`: run one X-Pilot RQ worker with the scheduler on the "xpilot" queue."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

import redis

from app.queue import QUEUE_NAME

RESTART_PAUSE = 2.0  # seconds between a worker loop that ended on a Redis failure and the next


def main(argv: list[str] | None = None) -> int:
    """Start a worker and work until stopped (SIGINT/SIGTERM: finish the current job, then quit)."""
    parser = argparse.ArgumentParser(prog="python -m worker", description="X-Pilot 后台任务进程（RQ worker + scheduler）")
    parser.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    parser.add_argument("--fork", action="store_true",
                        help="run each job in a forked work horse (isolates jobs; costs a fork and a new "
                             "database connection per job)")
    parser.add_argument("--simple", action="store_true", help="run jobs in this process (the default)")
    parser.add_argument("--name", default=None, help="worker name shown by `rq info`")
    parser.add_argument("--logging-level", default="INFO")
    args = parser.parse_args(argv)

    logging.basicConfig(level=args.logging_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Imported once logging is set up: the worker package loads the whole app, which may log as it loads.
    from app import create_app
    from worker import XPilotSimpleWorker, XPilotWorker

    # Jobs here are short and idempotent: running them in-process saves a fork and a connection per job.
    worker_class = XPilotWorker if args.fork else XPilotSimpleWorker
    app = create_app()
    log = logging.getLogger("worker")
    stop = threading.Event()
    while True:
        worker = None
        try:
            worker = worker_class([QUEUE_NAME], name=args.name, app=app)
            worker.work(burst=args.burst, with_scheduler=True, logging_level=args.logging_level)
        except redis.RedisError:
            log.exception("the worker could not reach Redis")
        # RQ's loop ends on a Redis timeout or error as if asked to stop: wait for Redis instead of exiting, so
        # that an outage of Redis does not need someone to start the workers again.
        if args.burst or _stop_requested(worker):
            return 0
        log.warning("worker stopped on a Redis failure; starting again in %.0f s", RESTART_PAUSE)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        if stop.wait(RESTART_PAUSE):
            return 0


def _stop_requested(worker: Any) -> bool:
    """Whether the worker was asked to stop (SIGINT/SIGTERM), as opposed to ending on a Redis failure."""
    return worker is not None and (worker._stop_requested or worker._shutdown_requested_date is not None)

if __name__ == "__main__":
    sys.exit(main())

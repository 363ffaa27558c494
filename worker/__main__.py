"""`python -m worker`: run one X-Pilot RQ worker with the scheduler on the "xpilot" queue."""
from __future__ import annotations

import argparse
import logging
import sys

from app.queue import QUEUE_NAME


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
    from worker import XPilotSimpleWorker, XPilotWorker

    # Jobs here are short and idempotent: running them in-process saves a fork and a connection per job.
    worker_class = XPilotWorker if args.fork else XPilotSimpleWorker
    worker = worker_class([QUEUE_NAME], name=args.name)
    worker.work(burst=args.burst, with_scheduler=True, logging_level=args.logging_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())

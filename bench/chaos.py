"""Chaos run: declarations and reviews keep flowing on the production stack while its parts are killed.

The stack is gunicorn + `python -m worker` on a private PostgreSQL cluster (initdb/pg_ctl from the installed
binaries, in a temp folder, on a port of its own, so that it can be restarted without touching the machine's
server) and a redis-server of its own (no persistence: a restart loses every queued job). Client threads each
log in a reviewer and some bench schools, then loop: open the form, submit (提交审核), open the review page,
approve (审核通过). Meanwhile a schedule SIGKILLs gunicorn workers and the RQ worker (started again as a supervisor
would), hangs Redis (SIGSTOP) and kills and restarts it, and restarts PostgreSQL (immediate stop, like a crash).

At the end it checks: every submission answered as accepted is stored and submitted; every approval answered as
accepted is 审核通过; each school received exactly one approval text per approved declaration, all sent; no
service call or text message is still pending 60 s after the last restart. It prints figures and a verdict.

Usage: python bench/chaos.py [--clients 4] [--duration 120] [--gunicorn "-w 3 -k gthread --threads 4"]   (as root: the cluster runs as
the postgres user; otherwise as the current user)
"""
from __future__ import annotations

import argparse
import http.client
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, text

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.cycle import (  # noqa: E402
    DECLARATION_URL,
    FACILITIES,
    LEVELS,
    REVIEWER,
    TEACHERS,
    Browser,
    Failure,
    Stack,
    _check,
    _csrf,
    _raise_interrupted,
    login,
    setup_schools,
)
from tests.redis_servers import RedisServer, free_port  # noqa: E402

SETTLE_SECONDS = 60  # after the last restart, nothing may still be pending
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), Path("/usr/bin"))


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


class PrivatePostgres:
    """A PostgreSQL cluster in a temp folder, on its own port; restart() is an immediate stop and a start."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.data = folder / "pgdata"
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
        self.url = f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, *argv], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)

    def init(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user, "-E", "UTF8")
        self.start()

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200"
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.folder / "pg.log"),
                  "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")


@dataclass
class Tally:
    """What the clients were told."""

    submitted: set[int] = field(default_factory=set)  # declarations answered 302 to 提交审核
    approved: set[int] = field(default_factory=set)  # declarations answered 302 to 审核通过
    errors: Counter[str] = field(default_factory=Counter)
    when: dict[str, list[str]] = field(default_factory=dict)  # error -> the clock times it was seen at
    slowest: float = 0.0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, error: str) -> None:
        with self.lock:
            self.errors[error] += 1
            self.when.setdefault(error, []).append(time.strftime("%H:%M:%S"))

    def timed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        finally:
            with self.lock:
                self.requests += 1
                self.slowest = max(self.slowest, time.monotonic() - started)


def client_loop(stack: Stack, schools: list[Browser], reviewer: Browser, jobs: list[tuple[int, int, str]],
                majors: list[str], tally: Tally, stop: threading.Event) -> None:
    """Declare, submit and approve the given (school index, certificate, level) jobs until stopped."""
    for school_index, certificate, level in jobs:
        if stop.is_set():
            return
        school = schools[school_index]
        step = ["form GET"]
        try:
            declare_and_approve(stack.base, school, reviewer, (certificate, level, majors), tally, step)
        except Failure as exc:
            tally.count(str(exc).split(" (expected")[0][:60])
        except (OSError, http.client.HTTPException) as exc:
            tally.count(f"{step[0]}: {type(exc).__name__}")
            school.close()
            reviewer.close()


def declare_and_approve(base: str, school: Browser, reviewer: Browser, what: tuple[int, str, list[str]],
                        tally: Tally, step: list[str]) -> None:
    """One declaration: form, 提交审核, review page, 审核通过; what the server accepted goes in the tally."""
    certificate, level, majors = what
    page = _check(tally.timed(school.get, base + "/school/declarations/new"), 200, step[0])
    step[0] = "submit POST"
    answer = _check(tally.timed(school.post, base + "/school/declarations/new", data={
        "csrf_token": _csrf(page, "form"), "certificate_id": str(certificate), "level": level, "majors": majors,
        "trainee_count": "60", "teachers": TEACHERS, "facilities": FACILITIES, "action": "submit"}), 302, step[0])
    found = DECLARATION_URL.search(answer.headers.get("location", ""))
    if not found:
        raise Failure(f"{step[0]}: redirected to {answer.headers.get('location')}")
    decl_id = int(found.group(1))
    with tally.lock:
        tally.submitted.add(decl_id)
    url = f"{base}/review/declarations/{decl_id}"
    step[0] = "review GET"
    page = _check(tally.timed(reviewer.get, url), 200, step[0])
    step[0] = "approve POST"
    _check(tally.timed(reviewer.post, url, data={"csrf_token": _csrf(page, "review"), "decision": "approve",
                                                 "comment": "材料齐全，同意试点。"}), 302, step[0])
    with tally.lock:
        tally.approved.add(decl_id)


class Chaos:
    """The schedule of faults, run in a thread of its own; `last_restart` is when the last part came back."""

    def __init__(self, stack: Stack, pg: PrivatePostgres, server: RedisServer, folder: Path) -> None:
        self.stack, self.pg, self.server, self.folder = stack, pg, server, folder
        self.events: list[str] = []
        self.last_restart = time.monotonic()

    def note(self, what: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {what}")
        log(what)

    def kill_gunicorn_worker(self) -> None:
        workers = self.stack.gunicorn_workers()
        if workers:
            workers[0].kill()
            self.note(f"SIGKILL gunicorn worker {workers[0].pid}")
            self.last_restart = time.monotonic()

    def kill_worker(self) -> None:
        proc = self.stack.procs["worker1"]
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
        self.note(f"SIGKILL RQ worker {proc.pid}")
        time.sleep(2)
        self.start_worker()

    def start_worker(self) -> None:
        self.stack._spawn("worker1", [sys.executable, "-m", "worker", "--logging-level", "WARNING"], self.stack.env())
        self.note(f"RQ worker started again ({self.stack.procs['worker1'].pid})")
        self.last_restart = time.monotonic()

    def hang_redis(self, seconds: float) -> None:
        self.server.hang()
        self.note(f"Redis hung (SIGSTOP) for {seconds:.0f} s")
        time.sleep(seconds)
        self.server.resume()
        self.note("Redis resumed (SIGCONT)")
        self.last_restart = time.monotonic()

    def restart_redis(self, down: float) -> None:
        self.server.kill()
        self.note(f"Redis killed, down for {down:.0f} s (its queued jobs are lost)")
        time.sleep(down)
        self.server.start()
        self.note("Redis started again, empty")
        self.last_restart = time.monotonic()

    def restart_postgres(self, down: float) -> None:
        self.pg.stop("immediate")
        self.note(f"PostgreSQL stopped (immediate), down for {down:.0f} s")
        time.sleep(down)
        self.pg.start()
        self.note("PostgreSQL started again")
        self.last_restart = time.monotonic()

    def run(self, duration: float, stop: threading.Event) -> None:
        step = duration / 10
        schedule = [
            (1, self.kill_gunicorn_worker), (2, self.kill_worker), (3, lambda: self.hang_redis(8)),
            (4.5, lambda: self.restart_redis(5)), (6, lambda: self.restart_postgres(3)),
            (7, self.kill_gunicorn_worker), (7.5, self.kill_worker), (8, lambda: self.hang_redis(5)),
            (8.8, self.kill_gunicorn_worker),
        ]
        started = time.monotonic()
        for at, action in schedule:
            if stop.wait(max(0.0, started + at * step - time.monotonic())):
                return
            try:
                action()
            except Exception as exc:  # a fault that could not be caused is reported, the run goes on
                self.note(f"could not {getattr(action, '__name__', 'act')}: {exc}")


def server_errors(folder: Path) -> list[tuple[str, int]]:
    """The last line of each traceback in gunicorn's log (the exception), counted."""
    path = folder / "gunicorn.log"
    lines = path.read_text("utf-8", "replace").splitlines() if path.exists() else []
    found: Counter[str] = Counter()
    for index, line in enumerate(lines):
        if line.startswith("Traceback"):
            rest = lines[index + 1:]
            end = next((n for n, later in enumerate(rest) if not later.startswith((" ", "\t", "Traceback", "During",
                                                                                     "The above"))
                        and later.strip()), None)
            if end is not None:
                found[rest[end][:150]] += 1
    return found.most_common(8)


def verify(stack: Stack, tally: Tally, chaos: Chaos) -> dict[str, Any]:
    """Wait until SETTLE_SECONDS after the last restart, then compare the database with what clients were told."""
    engine = create_engine(stack.db_url, pool_pre_ping=True)
    deadline = chaos.last_restart + SETTLE_SECONDS
    query_pending = text("SELECT (SELECT count(*) FROM service_call WHERE status IN ('pending','failed')), "
                         "(SELECT count(*) FROM sms_message WHERE status IN ('queued','retrying'))")
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                calls, texts = conn.execute(query_pending).one()
            if calls == 0 and texts == 0:
                break
        except Exception:  # noqa: S110 - PostgreSQL may still be recovering; look again
            pass
        time.sleep(1)
    settled_in = time.monotonic() - chaos.last_restart
    with engine.connect() as conn:
        statuses: dict[int, str] = dict(conn.execute(text("SELECT id, status FROM declaration")).all())
        calls, texts = conn.execute(query_pending).one()
        stuck_calls = conn.execute(text(
            "SELECT operation, status, attempts, last_error FROM service_call WHERE status IN ('pending','failed') "
            "LIMIT 5")).all()
        approved_per_phone: dict[str, int] = dict(conn.execute(text(
            "SELECT u.phone, count(*) FROM declaration d JOIN user_account u ON u.school_id = d.school_id "
            "WHERE d.status = '审核通过' AND u.role = 'school' GROUP BY u.phone")).all())
        texts_per_phone = {(phone, status): n for phone, status, n in conn.execute(text(
            "SELECT phone, status, count(*) FROM sms_message WHERE template = 'review_approved' "
            "GROUP BY phone, status")).all()}
    engine.dispose()
    lost = sorted(d for d in tally.submitted if statuses.get(d) in (None, "草稿"))
    undecided = sorted(d for d in tally.approved if statuses.get(d) != "审核通过")
    sent = Counter({phone: n for (phone, status), n in texts_per_phone.items() if status == "sent"})
    wrong_texts = sorted(phone for phone in set(approved_per_phone) | set(sent)
                         if approved_per_phone.get(phone, 0) != sent.get(phone, 0))
    unsent = sum(n for (_, status), n in texts_per_phone.items() if status != "sent")
    return {"stored declarations": len(statuses), "approved in the database": sum(approved_per_phone.values()),
            "approval texts sent": sum(sent.values()), "approval texts not sent": unsent,
            "accepted submissions missing or still drafts": lost, "accepted approvals not 审核通过": undecided,
            "schools whose approval texts differ from their approvals": wrong_texts,
            "pending service calls / texts at the end": (calls, texts), "stuck calls (sample)": stuck_calls,
            "settled seconds after the last restart": round(settled_in, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load (the faults spread over it)")
    # threaded workers: the bench's HTTP client keeps connections alive, which gunicorn's sync workers do not serve
    parser.add_argument("--gunicorn", default="-w 3 -k gthread --threads 4")
    parser.add_argument("--schools", type=int, default=40)
    args = parser.parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGHUP):  # unwind through the finally below, which stops everything
        signal.signal(signum, _raise_interrupted)
    folder = Path(tempfile.mkdtemp(prefix="xpilot-chaos-"))
    os.chmod(folder, 0o755)
    pg = PrivatePostgres(folder / "pg")
    server = RedisServer(folder)
    stack: Stack | None = None
    try:
        pg.init()
        server.start()
        log(f"private PostgreSQL on port {pg.port} ({PG_BIN}), redis-server on port {server.port}, in {folder}")
        stack = Stack(postgres=pg.url, redis_url=server.url, gunicorn_args=shlex.split(args.gunicorn), rq_workers=1,
                      folder=folder, worker_args=["--simple"])
        stack.create()
        stack.flask("db", "upgrade")
        stack.flask("demo", "load")
        assert stack.engine is not None
        catalog = setup_schools(stack.engine, args.schools)
        stack.start()
        reviewers = [login(stack, *REVIEWER) for _ in range(args.clients)]
        schools = [login(stack, username, "Bench2026cycle") for _, username in catalog.schools]
        work = [(index, cert, level) for cert in catalog.certificates for level in LEVELS
                for index in range(len(schools))]
        tally, stop = Tally(), threading.Event()
        chaos = Chaos(stack, pg, server, folder)
        threads = [threading.Thread(target=client_loop, args=(stack, schools, reviewers[n], work[n::args.clients],
                                                              catalog.majors[:2], tally, stop), daemon=True)
                   for n in range(args.clients)]
        faults = threading.Thread(target=chaos.run, args=(args.duration, stop), daemon=True)
        log(f"{args.clients} clients, {len(schools)} schools, {args.duration:.0f} s of load with faults")
        started = time.monotonic()
        for thread in [*threads, faults]:
            thread.start()
        faults.join()
        stop.wait(max(0.0, started + args.duration - time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join(90)
        log(f"load over: {len(tally.submitted)} submissions and {len(tally.approved)} approvals accepted; "
            f"settling (up to {SETTLE_SECONDS} s after the last restart)")
        result = verify(stack, tally, chaos)
        print("\n== chaos run ==")
        print("faults:")
        for event in chaos.events:
            print(f"  {event}")
        print(f"requests: {tally.requests}, slowest answer {tally.slowest:.1f} s")
        print(f"accepted: {len(tally.submitted)} submissions, {len(tally.approved)} approvals")
        print("refused or unanswered during the faults:" + ("" if tally.errors else " none"))
        for what, count in tally.errors.most_common():
            seen = sorted(set(tally.when[what]))
            print(f"  {count:5d}  {what}  (at {', '.join(seen[:6])}{' …' if len(seen) > 6 else ''})")
        print("errors logged by gunicorn:" + "".join(f"\n  {n:5d}  {line}" for line, n in server_errors(folder)))
        for key, value in result.items():
            print(f"{key}: {value}")
        ok = (not result["accepted submissions missing or still drafts"] and not result["accepted approvals not 审核通过"]
              and not result["schools whose approval texts differ from their approvals"]
              and result["approval texts not sent"] == 0 and result["pending service calls / texts at the end"] == (0, 0)
              and tally.slowest < 60 and len(tally.approved) > 0)
        print("verdict:", "PASS — nothing lost, nothing doubled, nothing stuck" if ok else "FAIL")
        return 0 if ok else 1
    finally:
        if stack is not None:
            try:
                stack.stop()
            except Exception as exc:
                log(f"stopping the stack: {exc}")
        server.kill()
        try:
            pg.stop("immediate")
        except Exception as exc:
            log(f"stopping PostgreSQL: {exc}")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Whole declarations over HTTP against the production stack: gunicorn + RQ workers + PostgreSQL + Redis.

One *complete declaration* is the four requests a school and a reviewer make in a browser:
    school    GET  /school/declarations/new          the form (and its CSRF token)            -> 200
    school    POST /school/declarations/new          action=submit (提交审核)                   -> 302
    reviewer  GET  /review/declarations/<id>         the review page (and its CSRF token)     -> 200
    reviewer  POST /review/declarations/<id>         decision=approve (审核通过)                -> 302
Each approval makes the process send an SMS through the RQ worker (service-call job, then delivery job).

The script starts its own stack, as .ci/run does for the smoke: a fresh PostgreSQL database, its own Redis
database number (flushed before and after), `flask --app app db upgrade`, `flask --app app demo load`, then a
setup step that adds bench schools in 广东 (440000) with completed 基础信息 and school accounts with a known
password (a declaration is unique per plan + school + certificate + level, so every declaration needs a fresh
(school, certificate, level); the demo plan offers every certificate at every level), then gunicorn and
`python -m worker` processes, and waits for /healthz.

Clients are threads of this process; each has Browser()s (a cookie jar on one http.client connection, kept
alive where the server keeps it) logged in as its own schools, and one session logged in as gd_reviewer. All sessions are logged in
before the clock starts (logins are not measured; the bench clears the login rate-limit counters of its own
Redis database between those logins, since 60 logins from one address in five minutes is the bench, not an
attack). Each run does a warm-up, waits until the worker is idle, then times N declarations; afterwards it
waits until every approval SMS is sent ("end-to-end" rate counts that wait as well).

CPU per declaration (psutil, user + system) is reported for the gunicorn process tree, the RQ workers (with
their forked work horses), the PostgreSQL backends of the bench database, this client process, and "other":
whatever else the machine did meanwhile (a large "other" means the numbers are disturbed).

Usage: python bench/cycle.py [--gunicorn "-w 3"] [--worker-args --simple] [--rq-workers 1] [--clients 1,8]
                             [--declarations 200,800] [--warmup 24] [--profile [cpu|wall]] [--keep-logs DIR]
Targets (2-core machine): >= 80 complete declarations/s with 8 clients; median submission <= 10 ms with 1 client.
"""
from __future__ import annotations

import argparse
import http.client
import math
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
import requests
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from bench.machine import describe  # noqa: E402

VENV_BIN = Path(sys.executable).parent

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS = "redis://127.0.0.1:6379/13"  # .ci/run uses 15 (tests) and 14 (smoke)
DEFAULT_GUNICORN = "-w 3"  # sync workers; see bench/README.md for the configurations compared
DEFAULT_WORKER_ARGS = "--simple"  # jobs run in the worker process: a forked horse per job costs ~5x the CPU
PROVINCE = "440000"
CITIES = ("440100", "440300", "440600")  # the demo prefectures of 广东
LEVELS = ("初级", "中级", "高级")
REVIEWER = ("gd_reviewer", "demo2026pilot")
BENCH_PASSWORD = "Bench2026cycle"
TARGET_RATE = 80.0  # complete declarations per second with 8 clients
TARGET_SUBMIT_MS = 10.0  # median submission with 1 client
KINDS = ("form GET", "submit POST", "review GET", "approve POST")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
DECLARATION_URL = re.compile(r"/school/declarations/(\d+)$")
TEACHERS = "专任教师 8 人，其中 3 人持有相关职业技能等级证书，具备企业项目经验。"
FACILITIES = "计算机实训室 3 间，每间 50 个工位，具备考核所需网络与软件环境。"


def log(message: str) -> None:
    print(f"[cycle {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Interrupted(Exception):
    """SIGTERM/SIGHUP: unwind through the finally blocks like Ctrl-C."""


def _raise_interrupted(signum: int, _frame: Any) -> None:
    raise Interrupted(f"signal {signum}")


# --- the stack --------------------------------------------------------------------------------------------------


@dataclass
class Stack:
    """The database, Redis db, gunicorn and workers of one bench run; stop() undoes all of it."""

    postgres: str
    redis_url: str
    gunicorn_args: list[str]
    rq_workers: int
    folder: Path
    worker_args: list[str] = field(default_factory=list)
    db_name: str = field(default_factory=lambda: f"xpilot_cycle_{uuid.uuid4().hex[:10]}")
    port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    db_created: bool = False
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    engine: Engine | None = None
    redis: redis.Redis | None = None

    @property
    def db_url(self) -> str:
        return self.postgres.rsplit("/", 1)[0] + "/" + self.db_name

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DATABASE_URL=self.db_url, REDIS_URL=self.redis_url, XPILOT_ENV="production",
                   SECRET_KEY=self.secret, SMS_BACKEND="outbox",
                   XPILOT_INSTANCE=str(self.folder / "instance"), PYTHONUNBUFFERED="1")
        env.pop("XPILOT_OUTBOX_DELAY", None)
        return env

    # database and redis
    def create(self) -> None:
        admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db_name}"'))
        admin.dispose()
        self.db_created = True
        self.engine = create_engine(self.db_url, pool_size=2)
        self.redis = redis.Redis.from_url(self.redis_url)
        self.redis.flushdb()

    def flask(self, *args: str) -> str:
        out = subprocess.run([str(VENV_BIN / "flask"), "--app", "app", *args], cwd=PROJECT, env=self.env(),
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args)} failed ({out.returncode}):\n{out.stdout[-2000:]}\n"
                               f"{out.stderr[-3000:]}")
        return out.stdout

    # processes
    def start(self) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        env = self.env()
        gunicorn = [str(VENV_BIN / "gunicorn"), *self.gunicorn_args, "-b", f"127.0.0.1:{self.port}",
                    "app:create_app()"]
        self._spawn("gunicorn", gunicorn, env)
        for index in range(self.rq_workers):
            self._spawn(f"worker{index + 1}", [sys.executable, "-m", "worker", "--name",
                                               f"cycle-{self.db_name[-6:]}-{index + 1}",
                                               "--logging-level", "WARNING", *self.worker_args], env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited with {proc.returncode}: {self.tail(name)}")
            try:
                if requests.get(self.base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.3)
        else:
            raise RuntimeError(f"/healthz did not answer within 60 s: {self.tail('gunicorn')}")
        # every gunicorn worker has booted (each loads the app on its own)
        expected = _workers_of(self.gunicorn_args)
        while time.monotonic() < deadline and len(self.gunicorn_workers()) < expected:
            time.sleep(0.2)
        time.sleep(1.0)  # the RQ workers preload their specs and sweep

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        logfile = open(self.folder / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(argv, cwd=PROJECT, env=env, stdout=logfile, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        logfile.close()

    def tail(self, name: str, lines: int = 25) -> str:
        path = self.folder / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text("utf-8", "replace").splitlines()[-lines:])

    def gunicorn_workers(self) -> list[psutil.Process]:
        proc = self.procs.get("gunicorn")
        if proc is None:
            return []
        try:
            return psutil.Process(proc.pid).children()
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        """Stop every process (their groups and forked children), drop the database, flush the Redis db."""
        victims: list[psutil.Process] = []
        for proc in self.procs.values():
            try:
                parent = psutil.Process(proc.pid)
                victims.extend([parent, *parent.children(recursive=True)])
            except psutil.NoSuchProcess:
                pass
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        _, alive = psutil.wait_procs(victims, timeout=8)
        for victim in alive:
            try:
                victim.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(alive, timeout=3)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        if self.engine is not None:
            self.engine.dispose()
        if self.db_created:
            admin = create_engine(self.postgres, isolation_level="AUTOCOMMIT")
            try:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)'))
                self.db_created = False
            finally:
                admin.dispose()
        if self.redis is not None:
            try:
                self.redis.flushdb()
            finally:
                self.redis.close()


def _workers_of(args: list[str]) -> int:
    for index, arg in enumerate(args):
        if arg in ("-w", "--workers") and index + 1 < len(args):
            return int(args[index + 1])
        if arg.startswith("--workers="):
            return int(arg.split("=", 1)[1])
    return 1


# --- setup: bench schools and accounts ---------------------------------------------------------------------------


@dataclass
class Catalog:
    plan_id: int
    certificates: list[int]
    majors: list[str]
    schools: list[tuple[int, str]]  # (school id, username)

    @property
    def per_school(self) -> int:
        return len(self.certificates) * len(LEVELS)


def setup_schools(engine: Engine, count: int) -> Catalog:
    """Add `count` schools in 广东 with completed 基础信息 and school accounts; open every certificate in the plan."""
    from werkzeug.security import generate_password_hash

    from app import clock
    from app.accounts.models import ROLE_SCHOOL, User
    from app.masterdata.models import Certificate, Major, School
    from app.plans.models import DeclarationPlan, PlanCertificate

    password_hash = generate_password_hash(BENCH_PASSWORD)  # one (slow, salted) hash for all bench accounts
    now = clock.now()
    with Session(engine) as session:
        plan = session.scalars(select(DeclarationPlan).where(DeclarationPlan.province_code == PROVINCE)
                               .order_by(DeclarationPlan.id)).first()
        assert plan is not None, "the demo data has no 广东 plan"
        certs = session.scalars(select(Certificate).order_by(Certificate.id)).all()
        offered = {pc.certificate_id for pc in plan.certificates}
        for cert in certs:
            if cert.id not in offered:
                plan.certificates.append(PlanCertificate(certificate_id=cert.id))
            if cert.levels != ",".join(LEVELS):
                cert.levels = ",".join(LEVELS)
        schools = [School(code=f"B{index:09d}", name=f"基准测试职业技术学院{index:04d}", province_code=PROVINCE,
                          city_code=CITIES[index % len(CITIES)], location="广州市", department="广东省教育厅",
                          list_level="专科", education_level="高职专科", ownership="公办", contact_name="陈老师",
                          contact_phone=f"139{index:08d}", address=f"广州市天河区示范路 {index} 号",
                          student_count=8000, teacher_count=400, introduction="基准测试用院校。",
                          info_completed_at=now) for index in range(1, count + 1)]
        session.add_all(schools)
        session.flush()
        users = [User(username=f"bench{index:05d}", password_hash=password_hash, role=ROLE_SCHOOL,
                      display_name=school.name, province_code=PROVINCE, city_code=school.city_code,
                      school_id=school.id, phone=f"139{index:08d}", must_change_password=False, session_token=1,
                      origin="registered", created_at=now)
                 for index, school in enumerate(schools, start=1)]
        session.add_all(users)
        session.flush()
        majors = session.scalars(select(Major.code).where(Major.level == "高职专科").order_by(Major.code)).all()
        catalog = Catalog(plan.id, sorted(pc.certificate_id for pc in plan.certificates), list(majors),
                          [(s.id, u.username) for s, u in zip(schools, users, strict=True)])
        session.commit()
    with engine.connect() as conn:  # statistics as autovacuum would have them
        conn.execute(text("COMMIT"))
        conn.execute(text("ANALYZE"))
    return catalog


# --- HTTP clients ------------------------------------------------------------------------------------------------


class Answer:
    """What a server answered: status, headers (lower-case names) and the decoded body."""

    def __init__(self, status_code: int, headers: dict[str, str], body: bytes) -> None:
        self.status_code = status_code
        self.headers = headers
        self._body = body

    @property
    def text(self) -> str:
        return self._body.decode("utf-8", "replace")


class Browser:
    """One user's cookie jar on one HTTP/1.1 connection, kept alive when the server allows it.

    A bench client on the same 2 CPUs as the stack must spend as little CPU as it can: this costs about a
    quarter of requests.Session per request. Redirects are never followed (the bench checks Location).
    """

    def __init__(self, base: str, timeout: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.base = base
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.conn: http.client.HTTPConnection | None = None

    def get(self, url: str, timeout: float | None = None) -> Answer:
        return self._request("GET", url, None)

    def post(self, url: str, data: dict[str, Any], allow_redirects: bool = False,
             timeout: float | None = None) -> Answer:
        return self._request("POST", url, urllib.parse.urlencode(data, doseq=True).encode())

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, url: str, body: bytes | None) -> Answer:
        path = url[len(self.base):] if url.startswith(self.base) else url
        headers = {"Accept-Encoding": "identity"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()  # a kept-alive connection the server had closed: reconnect once
                if attempt == 2:
                    raise
        for header in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        if response.will_close:
            self.close()
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)


class Failure(Exception):
    """A request did not answer as a browser user would expect."""


def _check(response: Answer, status: int, what: str) -> Answer:
    if response.status_code != status:
        body = " ".join(re.sub(r"<[^>]+>", " ", response.text).split())[:300]
        raise Failure(f"{what}: HTTP {response.status_code} (expected {status}) {body}")
    return response


def _csrf(response: Answer, what: str) -> str:
    found = CSRF.search(response.text)
    if not found:
        raise Failure(f"{what}: no csrf_token on the page")
    return found.group(1)


def login(stack: Stack, username: str, password: str) -> Browser:
    """A logged-in session (not timed). Clears the bench Redis db's login rate-limit counters first."""
    assert stack.redis is not None
    keys = list(stack.redis.scan_iter("xpilot:rl:login-*"))
    if keys:
        stack.redis.delete(*keys)
    http = Browser(stack.base)
    page = _check(http.get(stack.base + "/login", timeout=30), 200, "GET /login")
    answer = http.post(stack.base + "/login", data={"csrf_token": _csrf(page, "GET /login"), "username": username,
                                                    "password": password}, allow_redirects=False, timeout=30)
    _check(answer, 302, f"login {username}")
    if "/after-login" not in answer.headers.get("location", ""):
        raise Failure(f"login {username}: redirected to {answer.headers.get('location')}")
    return http


@dataclass
class Job:
    """One declaration to make: which school session, certificate and level."""

    school: Browser
    certificate_id: int
    level: str


@dataclass
class Client:
    reviewer: Browser
    jobs: list[Job]
    majors: list[str]
    base: str
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    whole: list[float] = field(default_factory=list)
    done: int = 0
    errors: list[str] = field(default_factory=list)
    step: str = ""

    def declare(self, job: Job, record: bool) -> None:
        t = time.perf_counter
        marks = [t()]
        self.step = KINDS[0]
        page = _check(job.school.get(self.base + "/school/declarations/new", timeout=60), 200, "form GET")
        token = _csrf(page, "form GET")
        marks.append(t())
        self.step = KINDS[1]
        answer = _check(job.school.post(self.base + "/school/declarations/new", data={
            "csrf_token": token, "certificate_id": str(job.certificate_id), "level": job.level,
            "majors": self.majors, "trainee_count": "60", "teachers": TEACHERS, "facilities": FACILITIES,
            "action": "submit"}, allow_redirects=False, timeout=60), 302, "submit POST")
        marks.append(t())
        found = DECLARATION_URL.search(answer.headers.get("location", ""))
        if not found:
            raise Failure(f"submit POST: redirected to {answer.headers.get('location')}")
        url = f"{self.base}/review/declarations/{found.group(1)}"
        self.step = KINDS[2]
        page = _check(self.reviewer.get(url, timeout=60), 200, "review GET")
        token = _csrf(page, "review GET")
        marks.append(t())
        self.step = KINDS[3]
        answer = _check(self.reviewer.post(url, data={"csrf_token": token, "decision": "approve",
                                                      "comment": "材料齐全，同意试点。"},
                                           allow_redirects=False, timeout=60), 302, "approve POST")
        marks.append(t())
        if "/review" not in answer.headers.get("location", ""):
            raise Failure(f"approve POST: redirected to {answer.headers.get('location')}")
        if record:
            for kind, start, end in zip(KINDS, marks, marks[1:], strict=False):
                self.times[kind].append((end - start) * 1000.0)
            self.whole.append((marks[-1] - marks[0]) * 1000.0)
            self.done += 1

    def run(self, jobs: list[Job], record: bool, barrier: threading.Barrier | None) -> None:
        if barrier is not None:
            barrier.wait()
        for job in jobs:
            try:
                self.declare(job, record)
            except Failure as exc:
                self.errors.append(str(exc))
            except (OSError, http.client.HTTPException) as exc:
                self.errors.append(f"{self.step}: {type(exc).__name__}: {exc}")


# --- measurement -------------------------------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds (user + system) of the stack's parts and of the whole machine."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def _proc(self, proc: psutil.Process, with_children: bool) -> float:
        try:
            t = proc.cpu_times()
        except psutil.NoSuchProcess:
            return 0.0
        total = t.user + t.system
        if with_children:
            total += t.children_user + t.children_system
        return total

    def sample(self) -> dict[str, Any]:
        parts: dict[str, Any] = {}
        gunicorn = self.stack.procs.get("gunicorn")
        parts["gunicorn"] = 0.0
        if gunicorn is not None:
            try:
                master = psutil.Process(gunicorn.pid)
                parts["gunicorn"] = sum(self._proc(p, False) for p in [master, *master.children(recursive=True)])
            except psutil.NoSuchProcess:
                pass
        parts["rq workers"] = 0.0
        for name, proc in self.stack.procs.items():
            if name.startswith("worker"):
                try:
                    master = psutil.Process(proc.pid)  # finished horses count in children_*; a running one:
                    parts["rq workers"] += self._proc(master, True) + sum(
                        self._proc(p, False) for p in master.children(recursive=True))
                except psutil.NoSuchProcess:
                    pass
        backends: dict[tuple[int, float], float] = {}
        for proc in psutil.process_iter(["cmdline", "username", "create_time"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                if cmd.startswith("postgres:") and f" {self.stack.db_name} " in f"{cmd} ":
                    backends[(proc.pid, proc.info["create_time"])] = self._proc(proc, False)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
        parts["postgres"] = backends
        parts["client"] = self._proc(psutil.Process(), False)
        machine = psutil.cpu_times()
        parts["machine"] = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0) - getattr(machine, "steal", 0.0)
        parts["wall"] = time.perf_counter()
        return parts

    @staticmethod
    def delta(start: dict[str, Any], end: dict[str, Any]) -> dict[str, float]:
        out = {key: end[key] - start[key] for key in ("gunicorn", "rq workers", "client", "machine", "wall")}
        out["postgres"] = sum(value - start["postgres"].get(key, 0.0) for key, value in end["postgres"].items())
        out["other"] = out["machine"] - out["gunicorn"] - out["rq workers"] - out["postgres"] - out["client"]
        return out


def floor_latency(stack: Stack, count: int = 300) -> list[float]:
    """Latencies of GET /healthz (no database, no login, no template) on one keep-alive session."""
    times = []
    with Browser(stack.base) as http:
        for _ in range(count + 20):
            start = time.perf_counter()
            _check(http.get(stack.base + "/healthz", timeout=30), 200, "GET /healthz")
            times.append((time.perf_counter() - start) * 1000.0)
    return times[20:]


@dataclass
class Result:
    clients: int
    declarations: int
    wall: float
    drain: float
    times: dict[str, list[float]]
    whole: list[float]
    errors: list[str]
    cpu_http: dict[str, float]
    cpu_all: dict[str, float]
    load: tuple[float, ...]

    @property
    def rate(self) -> float:
        return self.declarations / self.wall if self.wall else 0.0

    @property
    def e2e_rate(self) -> float:
        return self.declarations / (self.wall + self.drain) if self.wall else 0.0


def approved_and_sent(stack: Stack) -> tuple[int, int]:
    assert stack.engine is not None
    with stack.engine.connect() as conn:
        approved = conn.execute(text("SELECT count(*) FROM declaration WHERE status = '审核通过'")).scalar_one()
        sent = conn.execute(text("SELECT count(*) FROM sms_message WHERE template = 'review_approved' "
                                 "AND status = 'sent'")).scalar_one()
    return int(approved), int(sent)


def wait_for_sms(stack: Stack, timeout: float) -> float:
    """Wait until every approved declaration's SMS is sent; return the seconds waited (inf on timeout)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        approved, sent = approved_and_sent(stack)
        if sent >= approved:
            return time.perf_counter() - started
        time.sleep(0.05)
    return math.inf


def profile_worker(stack: Stack, seconds: float, out: Path, mode: str) -> subprocess.Popen[bytes] | None:
    """Start py-spy on one gunicorn worker (raw collapsed stacks), or None when py-spy is missing.

    mode cpu: only samples of threads holding the GIL (where the worker's CPU goes); wall: every sample.
    """
    spy = VENV_BIN / "py-spy"
    workers = stack.gunicorn_workers()
    if not spy.exists() or not workers:
        log("py-spy not installed (pip install py-spy) or no gunicorn worker: no profile")
        return None
    return subprocess.Popen([str(spy), "record", "--pid", str(workers[0].pid), "--duration", str(int(seconds)),
                             "--rate", "200", "--format", "raw", "--output", str(out), "--nonblocking",
                             *(["--gil"] if mode == "cpu" else [])],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def run_phase(stack: Stack, catalog: Catalog, schools: Iterator[tuple[int, str]], clients: int, count: int,
              warmup: int, profile: Path | None, profile_mode: str = "cpu") -> Result:
    """Warm up, wait for the worker, then time `count` declarations made by `clients` threads."""
    per_client = math.ceil(count / clients)
    warm_per_client = math.ceil(warmup / clients)
    log(f"{clients} client(s): logging in {clients} reviewer session(s) and the school sessions")
    pool: list[Client] = []
    for index in range(clients):
        reviewer = login(stack, *REVIEWER)
        needed = warm_per_client + (count // clients + (1 if index < count % clients else 0))
        jobs: list[Job] = []
        while len(jobs) < needed:
            _, username = next(schools)
            http = login(stack, username, BENCH_PASSWORD)
            jobs.extend(Job(http, cert, level) for cert in catalog.certificates for level in LEVELS)
        pool.append(Client(reviewer, jobs[:needed], catalog.majors[:2], stack.base))
    log(f"{clients} client(s): warm-up ({warm_per_client} per client)")
    warm_threads = [threading.Thread(target=c.run, args=(c.jobs[:warm_per_client], False, None), daemon=True)
                    for c in pool]
    for th in warm_threads:
        th.start()
    for th in warm_threads:
        th.join()
    wait_for_sms(stack, 120)
    for c in pool:
        c.errors.clear()
    meter = CpuMeter(stack)
    barrier = threading.Barrier(clients + 1)
    threads = [threading.Thread(target=c.run, args=(c.jobs[warm_per_client:], True, barrier), daemon=True)
               for c in pool]
    for th in threads:
        th.start()
    spy = None
    log(f"{clients} client(s): {count} declarations ({per_client} per client)")
    load_before = os.getloadavg()
    cpu0 = meter.sample()
    barrier.wait()
    started = time.perf_counter()
    if profile is not None:
        spy = profile_worker(stack, 3600, profile, profile_mode)
    for th in threads:
        th.join()
    wall = time.perf_counter() - started
    cpu1 = meter.sample()
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            spy.wait(timeout=20)
        except subprocess.TimeoutExpired:
            spy.kill()
    drain = wait_for_sms(stack, 180)
    cpu2 = meter.sample()
    load_after = os.getloadavg()
    times: dict[str, list[float]] = defaultdict(list)
    whole: list[float] = []
    errors: list[str] = []
    done = 0
    for c in pool:
        for kind, values in c.times.items():
            times[kind].extend(values)
        whole.extend(c.whole)
        errors.extend(c.errors)
        done += c.done
    for c in pool:
        c.reviewer.close()
        for http in {id(j.school): j.school for j in c.jobs}.values():
            http.close()
    return Result(clients, done, wall, drain, times, whole, errors, CpuMeter.delta(cpu0, cpu1),
                  CpuMeter.delta(cpu0, cpu2), tuple(max(a, b) for a, b in zip(load_before, load_after, strict=True)))


# --- report ------------------------------------------------------------------------------------------------------


def summarize_profile(path: Path, top: int = 20) -> list[str]:
    """Where one gunicorn worker's samples went, from py-spy's raw (collapsed) output: self share by package,
    inclusive share of the project's own functions (app/...), and the hottest functions by self share."""
    if not path.exists() or path.stat().st_size == 0:
        return ["(no profile written)"]
    own: Counter[str] = Counter()
    package: Counter[str] = Counter()
    project: Counter[str] = Counter()
    total = 0
    frame_re = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
    for line in path.read_text("utf-8", "replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = []
        for raw in stack.split(";"):
            found = frame_re.match(raw)
            frames.append((found.group("func"), found.group("file")) if found else (raw, ""))
        total += count
        func, file = frames[-1]
        own[f"{func} ({file})"] += count
        top_dir = file.split("/", 1)[0] if "/" in file else "stdlib/other"
        package["app (the project)" if top_dir == "app" else top_dir] += count
        for name in {f"{f} ({p})" for f, p in frames if p.startswith("app/")}:
            project[name] += count
    if not total:
        return ["(empty profile)"]
    lines = [f"{total} samples; self share by package (where the leaf frame was):"]
    lines += [f"  {100.0 * n / total:>5.1f}%  {name}" for name, n in package.most_common(12)]
    lines += ["inclusive share of the project's own functions:"]
    lines += [f"  {100.0 * n / total:>5.1f}%  {name}" for name, n in project.most_common(top)]
    lines += ["hottest functions (self share):"]
    lines += [f"  {100.0 * n / total:>5.1f}%  {name}" for name, n in own.most_common(top)]
    return lines


def report(results: list[Result], config: str, stack: Stack, setup_s: float, catalog: Catalog,
           verification: dict[str, Any], floor: list[float]) -> None:
    print()
    print("X-Pilot cycle benchmark: complete declarations over HTTP against the production stack")
    print(f"machine: {psutil.cpu_count()} CPUs; PostgreSQL database {stack.db_name} (dropped at the end); "
          f"Redis {stack.redis_url} (flushed before and after)")
    print(f"web:     gunicorn {config} 'app:create_app()' (XPILOT_ENV=production, no access log)")
    kind = "in-process (--simple)" if "--simple" in stack.worker_args else "forking"
    print(f"workers: {stack.rq_workers} x python -m worker {' '.join(stack.worker_args)}".rstrip()
          + f" ({kind} RQ worker with scheduler, queue xpilot)")
    print(f"setup:   migrate + demo load + {len(catalog.schools)} bench schools/accounts in {setup_s:.1f} s; "
          f"plan offers {len(catalog.certificates)} certificates x {len(LEVELS)} levels "
          f"= {catalog.per_school} declarations per school")
    print()
    print("One complete declaration = form GET + submit POST (302) + review GET + approve POST (302), keep-alive")
    print("connection per user (bench.cycle.Browser). decl/s = declarations / wall time of the HTTP run; e2e = declarations /")
    print("(wall + time until the worker had sent every approval SMS). Latencies in ms, per request, measured")
    print("by the client (8 clients = 8 threads of one Python process, so GIL waits are included).")
    print()
    header = (f"{'clients':>7} {'decls':>6} {'wall s':>7} {'decl/s':>7} {'e2e/s':>6} {'errors':>6} "
              f"{'sms wait s':>10} {'load':>5}")
    print(header)
    print("-" * len(header))
    for r in results:
        print(f"{r.clients:>7} {r.declarations:>6} {r.wall:>7.2f} {r.rate:>7.1f} {r.e2e_rate:>6.1f} "
              f"{len(r.errors):>6} {r.drain:>10.2f} {r.load[0]:>5.2f}")
    print()
    header = f"{'clients':>7} {'request':<16} {'p50':>7} {'p90':>7} {'p99':>7} {'mean':>7} {'max':>7}"
    print(header)
    print("-" * len(header))
    print(f"{'-':>7} {'GET /healthz':<16} {percentile(floor, .5):>7.1f} {percentile(floor, .9):>7.1f} "
          f"{percentile(floor, .99):>7.1f} {sum(floor) / len(floor):>7.1f} {max(floor):>7.1f}   "
          "(floor: 1 client, no database, no login)")
    for r in results:
        for kind in (*KINDS, "whole (4 req)"):
            values = r.whole if kind.startswith("whole") else r.times.get(kind, [])
            mean = sum(values) / len(values) if values else float("nan")
            print(f"{r.clients:>7} {kind:<16} {percentile(values, .5):>7.1f} {percentile(values, .9):>7.1f} "
                  f"{percentile(values, .99):>7.1f} {mean:>7.1f} {max(values, default=float('nan')):>7.1f}")
    print()
    print("CPU ms per complete declaration (user + system). 'during HTTP' = the timed run; 'with SMS' = until the")
    print("last approval SMS was sent. other = the rest of the machine (not this stack) in the same time;")
    print(f"capacity = {psutil.cpu_count()} CPUs x 1000 ms / (stack CPU ms per declaration).")
    header = (f"{'clients':>7} {'window':<12} {'gunicorn':>8} {'rq':>6} {'postgres':>8} {'client':>7} {'stack':>7} "
              f"{'other':>7} {'busy %':>6} {'capacity/s':>10}")
    print(header)
    print("-" * len(header))
    for r in results:
        for label, cpu, seconds in (("during HTTP", r.cpu_http, r.wall), ("with SMS", r.cpu_all, r.wall + r.drain)):
            n = max(r.declarations, 1)
            stack_ms = (cpu["gunicorn"] + cpu["rq workers"] + cpu["postgres"] + cpu["client"]) * 1000 / n
            busy = 100.0 * cpu["machine"] / (seconds * (psutil.cpu_count() or 1)) if seconds else float("nan")
            print(f"{r.clients:>7} {label:<12} {cpu['gunicorn'] * 1000 / n:>8.1f} {cpu['rq workers'] * 1000 / n:>6.1f} "
                  f"{cpu['postgres'] * 1000 / n:>8.1f} {cpu['client'] * 1000 / n:>7.1f} {stack_ms:>7.1f} "
                  f"{cpu['other'] * 1000 / n:>7.1f} {busy:>6.0f} {(psutil.cpu_count() or 1) * 1000 / stack_ms:>10.1f}")
    for r in results:
        if r.errors:
            print(f"\n{r.clients} client(s): {len(r.errors)} failed declarations; first ones:")
            for line in r.errors[:5]:
                print(f"  {line}")
    print()
    print(f"verification: {verification['total']} declarations of bench schools in the database, by status: "
          f"{verification['by_status']}")
    print(f"              approval SMS sent {verification['sms_sent']} of {verification['approved']} approved "
          f"(other SMS states: {verification['sms_other'] or 'none'}); RQ queue left {verification['queued']}, "
          f"failed jobs {verification['failed_jobs']}, open service calls {verification['open_calls']}")
    print()
    one = next((r for r in results if r.clients == 1), None)
    eight = next((r for r in results if r.clients == 8), None)
    if eight is not None:
        print(f"target: >= {TARGET_RATE:.0f} complete declarations/s with 8 clients: {eight.rate:.1f}/s "
              f"(end-to-end incl. SMS {eight.e2e_rate:.1f}/s) -> {'met' if eight.rate >= TARGET_RATE else 'NOT met'}")
    if one is not None:
        median = percentile(one.times.get("submit POST", []), .5)
        print(f"target: median submission <= {TARGET_SUBMIT_MS:.0f} ms with 1 client: {median:.1f} ms -> "
              f"{'met' if median <= TARGET_SUBMIT_MS else 'NOT met'}")
    all_ok = (verification["approved"] == verification["total"] and verification["sms_sent"] == verification["approved"]
              and not any(r.errors for r in results))
    print(f"check: every declaration approved and notified, no failed request: {'yes' if all_ok else 'NO'}")


def verify(stack: Stack) -> dict[str, Any]:
    from rq import Queue
    from rq.registry import FailedJobRegistry

    assert stack.engine is not None and stack.redis is not None
    with stack.engine.connect() as conn:
        rows = conn.execute(text("SELECT d.status, count(*) FROM declaration d JOIN school s ON s.id = d.school_id "
                                 "WHERE s.code LIKE 'B%' GROUP BY d.status")).all()
        sms = conn.execute(text("SELECT status, count(*) FROM sms_message WHERE template = 'review_approved' "
                                "GROUP BY status")).all()
        open_calls = conn.execute(text("SELECT count(*) FROM service_call WHERE status = 'pending'")).scalar_one()
    by_status = {status: n for status, n in rows}
    sms_by = {status: n for status, n in sms}
    queue = Queue("xpilot", connection=stack.redis)
    return {"total": sum(by_status.values()), "by_status": by_status, "approved": by_status.get("审核通过", 0),
            "sms_sent": sms_by.pop("sent", 0), "sms_other": sms_by, "queued": queue.count,
            "failed_jobs": FailedJobRegistry(queue=queue).count, "open_calls": open_calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gunicorn", default=DEFAULT_GUNICORN, help=f"gunicorn options (default: {DEFAULT_GUNICORN})")
    parser.add_argument("--rq-workers", type=int, default=1, help="python -m worker processes (default 1)")
    parser.add_argument("--clients", default="1,8", help="client counts, one run each (default 1,8)")
    parser.add_argument("--declarations", default="200,800", help="timed declarations per run (default 200,800)")
    parser.add_argument("--warmup", type=int, default=24, help="untimed declarations before each run")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="server URL to create the bench database on")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis URL with the bench's own db number")
    parser.add_argument("--worker-args", default=DEFAULT_WORKER_ARGS,
                        help=f"options of python -m worker (default: {DEFAULT_WORKER_ARGS}; '' = forking worker)")
    parser.add_argument("--profile", nargs="?", const="cpu", choices=("cpu", "wall"),
                        help="py-spy one gunicorn worker during the largest run and print its hottest functions "
                             "(cpu: samples holding the GIL, the default; wall: all samples)")
    parser.add_argument("--keep-logs", type=Path, default=None, help="copy gunicorn/worker logs (and profile) here")
    args = parser.parse_args(argv)
    clients = [int(x) for x in args.clients.split(",")]
    counts = [int(x) for x in args.declarations.split(",")]
    if len(counts) != len(clients):
        parser.error("--clients and --declarations need as many values")
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C, even when started as a background job

    started = time.perf_counter()
    gunicorn_args = shlex.split(args.gunicorn)
    folder = Path(tempfile.mkdtemp(prefix="xpilot-cycle-"))
    stack = Stack(args.postgres, args.redis, gunicorn_args, args.rq_workers, folder, shlex.split(args.worker_args))
    log(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    reference = describe("start")
    results: list[Result] = []
    try:
        stack.create()
        log(f"database {stack.db_name}: migrate, demo load")
        stack.flask("db", "upgrade")
        stack.flask("demo", "load")
        with stack.engine.connect() as conn:  # type: ignore[union-attr]
            per_school = len(LEVELS) * conn.execute(text("SELECT count(*) FROM certificate")).scalar_one()
        needed = sum(c * math.ceil((math.ceil(args.warmup / c) + math.ceil(n / c)) / per_school)
                     for c, n in zip(clients, counts, strict=True))
        catalog = setup_schools(stack.engine, needed + 10)  # type: ignore[arg-type]
        setup_s = time.perf_counter() - started
        log(f"{len(catalog.schools)} bench schools ready ({setup_s:.1f} s); starting gunicorn {args.gunicorn} "
            f"and {args.rq_workers} worker(s)")
        stack.start()
        floor = floor_latency(stack)
        schools = iter(catalog.schools)
        biggest = max(clients)
        for c, n in zip(clients, counts, strict=True):
            profile = folder / "profile.txt" if args.profile and c == biggest else None
            result = run_phase(stack, catalog, schools, c, n, args.warmup, profile, args.profile or "cpu")
            results.append(result)
            log(f"{c} client(s): {result.rate:.1f} declarations/s, {len(result.errors)} errors, SMS drained "
                f"{result.drain:.1f} s after the run")
        report(results, args.gunicorn, stack, setup_s, catalog, verify(stack), floor)
        if args.profile:
            print()
            print(f"py-spy profile ({args.profile}) of one gunicorn worker during the {max(clients)}-client run:")
            print("\n".join(summarize_profile(folder / "profile.txt")))
        print()
        print(reference)
        print(describe("end"))
        print(f"\n(whole run {time.perf_counter() - started:.0f} s)")
        return 0
    except (KeyboardInterrupt, Interrupted) as exc:
        log(f"interrupted ({str(exc) or 'Ctrl-C'}): cleaning up")
        return 130
    except Exception:
        for name in stack.procs:
            log(f"--- {name} log (tail) ---\n{stack.tail(name)}")
        raise
    finally:
        if args.keep_logs is not None:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for path in folder.glob("*.log"):
                (args.keep_logs / path.name).write_bytes(path.read_bytes())
            if (folder / "profile.txt").exists():
                (args.keep_logs / "profile.txt").write_bytes((folder / "profile.txt").read_bytes())
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not stop the clean-up half way
        try:
            stack.stop()
        finally:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            import shutil
            shutil.rmtree(folder, ignore_errors=True)
        log("stopped gunicorn and workers, dropped the database, flushed the Redis db")


if __name__ == "__main__":
    sys.exit(main())

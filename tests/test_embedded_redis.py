"""The embedded Redis stops with the process that started it: CLI commands, `make run`, the test suite.

A redis-server works in the folder of its data file (the instance folder, or the suite's temporary
folder), so the servers a test started are found by that working directory under the test's tmp_path,
whoever their parent is by then (a daemonized or orphaned server is re-parented; its environment is
overwritten by its process title).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

PROJECT = Path(__file__).resolve().parents[1]
GONE_WITHIN = 10.0  # seconds a stopped server may take to save and exit

pytestmark = pytest.mark.slow


@dataclass
class Embedded:
    """An environment on the embedded default whose files all live under one folder."""

    env: dict[str, str]
    root: Path
    started: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def servers(self) -> list[psutil.Process]:
        """Return the live redis-server processes working under the root folder."""
        return servers_under(self.root)

    def flask(self, *args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """Run `flask --app app ARGS` to its end."""
        return subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=PROJECT, env=self.env,
                              input=stdin, capture_output=True, text=True, timeout=timeout)

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a long-running process in a session of its own (as a terminal would, for its signals)."""
        with log.open("wb") as out:
            process = subprocess.Popen(argv, cwd=PROJECT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.started.append(process)
        return process

    def assert_no_server_left(self, after: str) -> None:
        deadline = time.monotonic() + GONE_WITHIN
        while self.servers() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [f"{proc.pid} {' '.join(proc.cmdline())}" for proc in self.servers()]
        assert left == [], f"redis-server still running after {after}"


def servers_under(root: Path) -> list[psutil.Process]:
    """Return the live redis-server processes whose working directory is root or a folder in it."""
    found = []
    for proc in psutil.process_iter(["name", "status"]):
        if "redis-server" not in (proc.info["name"] or "") or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if Path(proc.cwd()).is_relative_to(root):
                found.append(proc)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    """An environment with a SQLite database and an instance folder under tmp_path, and no REDIS_URL."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "DATABASE_URL", "XPILOT_INSTANCE", "PORT")}
    env.update({"DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}", "XPILOT_INSTANCE": str(tmp_path / "instance"),
                "XPILOT_ENV": "dev", "PYTHONUNBUFFERED": "1"})
    root = tmp_path.resolve()
    embedded = Embedded(env, root)
    yield embedded
    # What a failing test left behind: these processes and servers are this test's own.
    for process in embedded.started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for proc in servers_under(root):
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def wait_for(condition: Callable[[], bool], timeout: float, what: str, process: subprocess.Popen[bytes],
             log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"exited ({process.returncode}) before {what}:\n{log.read_text('utf-8', 'replace')[-3000:]}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text('utf-8', 'replace')[-3000:]}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stop(process: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    """Send sig as a terminal (the whole group: Ctrl-C) or as `kill PID` would, then wait for the exit."""
    if group:
        os.killpg(process.pid, sig)
    else:
        process.send_signal(sig)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"did not exit within 60 s of signal {sig}")


def test_cli_commands_stop_the_embedded_redis_they_started(embedded: Embedded) -> None:
    used = embedded.flask("shell", stdin="from app.queue import jobs\nprint('PID', jobs.redis.info('server')['process_id'])\n")
    assert used.returncode == 0, used.stderr
    pid = int(used.stdout.split("PID", 1)[1].split()[0])
    embedded.assert_no_server_left("`flask --app app shell`")
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    upgraded = embedded.flask("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    embedded.assert_no_server_left("`flask --app app db upgrade`")

    loaded = embedded.flask("demo", "load")
    assert loaded.returncode == 0 and "gd_reviewer" in loaded.stdout, loaded.stderr
    embedded.assert_no_server_left("`flask --app app demo load`")

    refused = embedded.flask("users", "create", "--role", "nobody", "--username", "x", "--password", "longpassword1")
    assert refused.returncode == 1, refused.stdout
    embedded.assert_no_server_left("`flask --app app users create` ending in an error")


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False), (signal.SIGKILL, False)],
                         ids=["ctrl-c", "sigterm", "sigkill"])
def test_stopped_flask_command_stops_the_embedded_redis_it_started(embedded: Embedded, tmp_path: Path, sig: int,
                                                                    group: bool) -> None:
    port = free_port()
    log = tmp_path / "flask-run.log"
    web = embedded.start([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port), "--no-reload"], log)
    wait_for(lambda: port_open(port), 60, "the web server", web, log)
    assert len(embedded.servers()) == 1

    stop(web, sig, group)

    embedded.assert_no_server_left(f"`flask --app app run` got signal {sig}")
    # The next command on the folder starts a server of its own (and stops it).
    upgraded = embedded.flask("db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    embedded.assert_no_server_left("`flask --app app db upgrade`")


def test_command_after_a_server_killed_outright_starts_a_fresh_one(embedded: Embedded, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "flask-run.log"
    web = embedded.start([sys.executable, "-m", "flask", "--app", "app", "run", "--port", str(port), "--no-reload"], log)
    wait_for(lambda: port_open(port), 60, "the web server", web, log)
    [server] = embedded.servers()
    registry = json.loads((embedded.root / "instance" / "redis.server.json").read_text("utf-8"))
    server.kill()  # no chance to remove its socket
    stop(web, signal.SIGKILL, group=True)

    upgraded = embedded.flask("db", "upgrade")

    assert upgraded.returncode == 0, upgraded.stderr
    embedded.assert_no_server_left("`flask --app app db upgrade`")
    assert not Path(registry["socket"]).parent.exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_make_run_shares_its_embedded_redis_and_stops_it_when_stopped(embedded: Embedded, tmp_path: Path,
                                                                     sig: int) -> None:
    port = free_port()
    embedded.env["PORT"] = str(port)
    log = tmp_path / "runner.log"
    runner = embedded.start([sys.executable, "-m", "app.runner"], log)
    try:
        wait_for(lambda: port_open(port), 180, "the web server of `make run`", runner, log)
        [server] = embedded.servers()

        joined = embedded.flask("shell", stdin="from app.queue import jobs\nprint('PID', jobs.redis.info('server')['process_id'])\n")
        assert joined.returncode == 0, joined.stderr
        assert int(joined.stdout.split("PID", 1)[1].split()[0]) == server.pid
        outbox = embedded.flask("sms", "outbox")
        assert outbox.returncode == 0, outbox.stderr

        # The commands joined the server of `make run` and left it serving it.
        time.sleep(0.5)
        assert [proc.pid for proc in embedded.servers()] == [server.pid]
        assert server.is_running() and port_open(port)
    finally:
        if runner.poll() is None:
            stop(runner, sig, group=sig == signal.SIGINT)
    assert runner.returncode == 0, log.read_text("utf-8", "replace")[-3000:]
    embedded.assert_no_server_left(f"`make run` got signal {sig}")


INNER_TESTS = '''
import os
import time
from pathlib import Path

import redis

from app.queue import jobs

KEPT = []  # a client still connected when the run ends, as a test's worker or queue may leave one

def record(app):
    with app.app_context():
        pid = jobs.redis.info("server")["process_id"]
    with open(os.environ["XPILOT_TEST_RECORD"], "a") as out:
        out.write(f"{pid}\\n")


def test_passes(app):
    record(app)


def test_passes_too(app):
    record(app)
    KEPT.append(redis.Redis.from_url(jobs.url))
    KEPT[-1].ping()


def test_fails(app):
    record(app)
    assert False, "a failing test"


def test_waits_when_asked(app):
    record(app)
    KEPT.append(redis.Redis.from_url(jobs.url))
    KEPT[-1].ping()
    if os.environ.get("XPILOT_TEST_WAIT"):
        Path(os.environ["XPILOT_TEST_WAIT"]).touch()
        time.sleep(120)
'''


def inner_suite(embedded: Embedded, tmp_path: Path) -> tuple[list[str], Path]:
    """Write a few tests using the suite's fixtures; return the pytest command that runs them and the record file."""
    tests = tmp_path / "inner" / "test_inner.py"
    tests.parent.mkdir()
    tests.write_text(textwrap.dedent(INNER_TESTS), "utf-8")
    record = tmp_path / "servers.txt"
    embedded.env["XPILOT_TEST_RECORD"] = str(record)
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
            "--basetemp", str(tmp_path / "basetemp"), str(tests)]
    return argv, record


def test_suite_runs_on_one_embedded_redis_and_stops_it_at_the_end(embedded: Embedded, tmp_path: Path) -> None:
    argv, record = inner_suite(embedded, tmp_path)

    done = subprocess.run(argv, cwd=PROJECT, env=embedded.env, capture_output=True, text=True, timeout=300)

    assert "1 failed, 3 passed" in done.stdout, done.stdout + done.stderr
    assert len(set(record.read_text().split())) == 1  # one server for the whole run
    embedded.assert_no_server_left("a test run with a failing test")


@pytest.mark.parametrize(("sig", "group"), [(signal.SIGINT, True), (signal.SIGTERM, False)], ids=["ctrl-c", "sigterm"])
def test_interrupted_test_run_stops_its_embedded_redis(embedded: Embedded, tmp_path: Path, sig: int, group: bool) -> None:
    argv, record = inner_suite(embedded, tmp_path)
    waiting = tmp_path / "waiting"
    embedded.env["XPILOT_TEST_WAIT"] = str(waiting)
    log = tmp_path / "inner.log"
    run = embedded.start([*argv, "-k", "waits"], log)
    wait_for(waiting.exists, 120, "the test that waits", run, log)
    assert len(embedded.servers()) == 1

    stop(run, sig, group)

    embedded.assert_no_server_left(f"a test run got signal {sig}")

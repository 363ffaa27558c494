"""Redis and the RQ queue: a real server from REDIS_URL, else the embedded one (app.embedded_redis).

Every client has short connect and read timeouts (settings: redis_connect_timeout, redis_timeout), so a hung or
unreachable Redis costs a request at most that long, never a hang. After such a failure the app's client stops
asking Redis for `redis_retry_after` seconds (the breaker) and fails at once with RedisUnavailable, so that while
Redis is away only the first request of each pause waits for a timeout. What needs Redis then falls back (see
app.accounts.login_throttle, app.core.ratelimit, app.refcache) or is left to the worker's catch-up
(app.processes.jobs.catch_up): work committed to the database is never lost with a job that could not be queued.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
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


class RedisUnavailable(redis.ConnectionError):
    """Redis failed a moment ago; it is not asked again until the breaker's pause is over."""


class Breaker:
    """Fail at once for `pause` seconds after Redis timed out or refused, instead of making every caller wait."""

    def __init__(self, pause: float = 0.0) -> None:
        self.pause = pause
        self._until = 0.0
        self._lock = threading.Lock()

    def check(self) -> None:
        """Raise RedisUnavailable while the pause after a failure lasts."""
        if time.monotonic() < self._until:
            raise RedisUnavailable("Redis 暂时不可用（刚刚超时或拒绝连接），稍后再试")

    def trip(self) -> None:
        with self._lock:
            self._until = time.monotonic() + self.pause

    def __deepcopy__(self, memo: dict[int, Any]) -> Breaker:
        return self  # redis-py copies its Retry for every connection: they all share this one breaker


class _TrippingRetry(Retry):
    """Retry a dropped connection once at once (Redis restarted under a pooled connection), never a timeout;
    any connection failure or timeout that still gets through trips the breaker."""

    def __init__(self, breaker: Breaker) -> None:
        super().__init__(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))
        self.breaker = breaker

    def call_with_retry(self, do: Callable[[], Any], fail: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return super().call_with_retry(do, fail, *args, **kwargs)
        except RedisUnavailable:
            raise
        except (redis.ConnectionError, redis.TimeoutError):
            self.breaker.trip()
            raise

    def __deepcopy__(self, memo: dict[int, Any]) -> _TrippingRetry:
        return _TrippingRetry(self.breaker)


class _GuardedPool(redis.ConnectionPool):
    """A connection pool that refuses to hand out connections while its breaker is open."""

    breaker = Breaker()

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        self.breaker.check()
        return super().get_connection(*args, **kwargs)


def client_options(connect_timeout: float, timeout: float) -> dict[str, Any]:
    """Keyword arguments of a Redis client with the given connect and read timeouts (seconds) and no slow
    retries (redis-py's default retries a timeout three times with backoff)."""
    return {"socket_connect_timeout": connect_timeout, "socket_timeout": timeout,
            "retry": Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,))}


class JobQueue:
    """The app's Redis connection and RQ queue."""

    def __init__(self) -> None:
        self.url = ""
        self.connect_timeout = 1.0
        self.timeout = 2.0
        self.breaker = Breaker()
        self._redis: redis.Redis | None = None

    def init_app(self, url: str, *, connect_timeout: float = 1.0, timeout: float = 2.0,
                 retry_after: float = 5.0) -> None:
        self.close()
        self.url, self.connect_timeout, self.timeout = url, connect_timeout, timeout
        self.breaker = Breaker(retry_after)
        options = {**client_options(connect_timeout, timeout), "retry": _TrippingRetry(self.breaker)}
        pool = _GuardedPool.from_url(url, **options)
        pool.breaker = self.breaker
        self._redis = redis.Redis(connection_pool=pool)

    def client(self) -> redis.Redis:
        """A new client of the same server with the same timeouts, and no breaker (the worker's own)."""
        return redis.Redis.from_url(self.url, **client_options(self.connect_timeout, self.timeout))

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

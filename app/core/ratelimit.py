"""Fixed-window rate limits kept in Redis.

While Redis cannot be asked (hung, gone, or refused by the breaker of app.queue) each process counts in its own
memory with the same windows, so registrations and texts stay limited (per process) instead of failing.
"""
from __future__ import annotations

import logging
import threading
import time

import redis

from app.core.errors import ServiceError
from app.queue import jobs

log = logging.getLogger(__name__)


class RateLimited(ServiceError):
    """Too many attempts in the window."""


def hit(bucket: str, key: str, limit: tuple[int, int], message: str) -> None:
    """Count one attempt; raise RateLimited with the message once the limit is passed."""
    count, seconds = limit
    name = f"xpilot:rl:{bucket}:{key}"
    try:
        current, ttl = _count_in_redis(name, seconds)
    except redis.RedisError as exc:
        _local.warn(exc)
        current, ttl = _local.count(name, seconds)
    if current > count:
        minutes = max(1, (ttl + 59) // 60) if ttl > 0 else max(1, seconds // 60)
        raise RateLimited(f"{message}，请 {minutes} 分钟后再试")


def _count_in_redis(name: str, seconds: int) -> tuple[int, int]:
    current = int(jobs.redis.incr(name))
    ttl = int(jobs.redis.ttl(name))
    if current == 1 or ttl == -1:
        jobs.redis.expire(name, seconds)
        ttl = seconds
    return current, ttl


class _LocalWindows:
    """The fixed windows of this process, used while Redis cannot be asked."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}  # name -> (count, window ends)
        self._lock = threading.Lock()
        self._warned = -60.0

    def count(self, name: str, seconds: int) -> tuple[int, int]:
        now = time.monotonic()
        with self._lock:
            for old in [key for key, (_, ends) in self._windows.items() if ends <= now]:
                del self._windows[old]
            current, ends = self._windows.get(name, (0, now + seconds))
            self._windows[name] = (current + 1, ends)
        return current + 1, int(ends - now)

    def warn(self, exc: Exception) -> None:
        """Log Redis trouble at most once a minute."""
        if time.monotonic() - self._warned >= 60:
            self._warned = time.monotonic()
            log.warning("rate limits: Redis cannot be asked (%s); counting in this process meanwhile", exc)


_local = _LocalWindows()

"""Fixed-window rate limits kept in Redis."""
from __future__ import annotations

from app.core.errors import ServiceError
from app.queue import jobs


class RateLimited(ServiceError):
    """Too many attempts in the window."""


def hit(bucket: str, key: str, limit: tuple[int, int], message: str) -> None:
    """Count one attempt; raise RateLimited with the message once the limit is passed."""
    count, seconds = limit
    name = f"xpilot:rl:{bucket}:{key}"
    current = jobs.redis.incr(name)
    if int(current) == 1 or jobs.redis.ttl(name) == -1:
        jobs.redis.expire(name, seconds)
    if int(current) > count:
        ttl = jobs.redis.ttl(name)
        minutes = max(1, (int(ttl) + 59) // 60) if ttl and int(ttl) > 0 else max(1, seconds // 60)
        raise RateLimited(f"{message}，请 {minutes} 分钟后再试")


"""Login throttling: growing waits for the address that keeps failing, never a lockout of the account.

School usernames are the public 学校标识码: if failed passwords locked the account, anyone could keep any school
out at the deadline. So failures are counted per (account, address) and per address: past `free` failures the
address waits before its next attempt, `first` seconds, doubling with each further failure up to `longest`.
The owner at another address is not slowed down; an address failing across many accounts is, past its own
(larger) count. A success forgives the failures of its (account, address) and takes its attempt back from the
address's count; failures are forgotten `remember` seconds after the last one.

Each counter is a Redis hash: `n`, the attempts not known to have succeeded (failures, and attempts whose
password is being checked), and `last`, when the latest of them began. Admission and counting happen in one
script, so parallel attempts cannot slip past a wait: once an address is being throttled every admitted attempt
restarts its wait. Times come from app.clock (tests move it).

Without Redis (hung, gone, or refused by the breaker of app.queue) logins still work: each web process counts
with the same rules in its own memory (`_local`) until Redis answers again. The waits then hold per process, so
an address can try at most as many times more as there are web processes; the counts made meanwhile are not
carried over to Redis, and those kept in Redis are not seen. Refusing every login while Redis is away would
lock out everyone at once, and counting nowhere would let an outage open the door to guessing.
"""
from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis

from app import clock
from app.core.ratelimit import RateLimited
from app.queue import jobs

# KEYS: the counters; ARGV: now, first, longest, then free and remember of each counter.
# Returns the seconds still to wait (0: admitted and counted).
_ADMIT = """
local now, first, longest = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local function wait(n, free)
  if n < free then return nil end
  return math.min(longest, first * 2 ^ (n - free))
end
local remaining = 0
for i, key in ipairs(KEYS) do
  local n = tonumber(redis.call('HGET', key, 'n') or '0')
  local last = tonumber(redis.call('HGET', key, 'last') or '0')
  local w = wait(n, tonumber(ARGV[2 + 2 * i]))
  if w and now < last + w then remaining = math.max(remaining, last + w - now) end
end
if remaining > 0 then return tostring(remaining) end
for i, key in ipairs(KEYS) do
  local before = tonumber(redis.call('HGET', key, 'n') or '0')
  redis.call('HINCRBY', key, 'n', 1)
  if before >= tonumber(ARGV[2 + 2 * i]) then redis.call('HSET', key, 'last', ARGV[1]) end
  redis.call('EXPIRE', key, math.ceil(tonumber(ARGV[3 + 2 * i]) + longest))
end
return '0'
"""
# KEYS[1]: the address's counter, whose count gives back one attempt if it still has one.
_GIVE_BACK = """
if tonumber(redis.call('HGET', KEYS[1], 'n') or '0') > 0 then redis.call('HINCRBY', KEYS[1], 'n', -1) end
return 0
"""


@dataclass(frozen=True)
class LoginLimits:
    """How many failures are free, how long they are remembered, and how long the waits after them are."""

    per_account_address: tuple[int, int]  # (free failures, seconds remembered) of one account from one address
    per_address: tuple[int, int]  # the same for one address, all accounts together
    waits: tuple[int, int]  # (first wait, longest wait) in seconds

    @classmethod
    def from_settings(cls, settings: Any) -> LoginLimits:
        return cls(tuple(settings.login_limit), tuple(settings.login_limit_per_ip), tuple(settings.login_wait))


def _keys(username: str, address: str) -> tuple[str, str]:
    # A digest keeps keys short and free of whatever an attacker types as a username.
    account = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"xpilot:login:{account}:{address}", f"xpilot:login:address:{address}"


def admit(username: str, address: str, limits: LoginLimits) -> None:
    """Count a login attempt, or raise RateLimited if its address must still wait."""
    pair, whole = _keys(username, address)
    now = clock.now().timestamp()
    try:
        remaining = float(jobs.redis.eval(_ADMIT, 2, pair, whole, now, limits.waits[0], limits.waits[1],
                                          *limits.per_account_address, *limits.per_address))
    except redis.RedisError as exc:
        _without_redis(exc)
        remaining = _local.admit((pair, whole), now, limits)
    if remaining > 0:
        raise RateLimited(f"登录失败次数过多，请 {math.ceil(remaining)} 秒后再试")


def failed(username: str, address: str) -> None:
    """Record that the admitted attempt failed: its wait, if any, starts now."""
    now = clock.now().timestamp()
    keys = _keys(username, address)
    try:
        with jobs.redis.pipeline() as pipe:
            for key in keys:
                pipe.hset(key, "last", now)
            pipe.execute()
    except redis.RedisError as exc:
        _without_redis(exc)
    _local.failed(keys, now)  # a no-op unless the attempt was admitted here


def succeeded(username: str, address: str) -> None:
    """Forgive the failures of this account from this address; give the attempt back to the address's count."""
    pair, whole = _keys(username, address)
    _local.succeeded(pair, whole)
    try:
        jobs.redis.delete(pair)
        jobs.redis.eval(_GIVE_BACK, 1, whole)
    except redis.RedisError as exc:
        _without_redis(exc)


class _LocalCounters:
    """The counters of the Redis script above, kept in this process's memory while Redis cannot be asked."""

    def __init__(self) -> None:
        self._counters: dict[str, tuple[int, float, float]] = {}  # key -> (n, last, forget at)
        self._lock = threading.Lock()

    def admit(self, keys: tuple[str, str], now: float, limits: LoginLimits) -> float:
        first, longest = limits.waits
        rules = (limits.per_account_address, limits.per_address)
        with self._lock:
            self._forget(now)
            remaining = 0.0
            for key, (free, _) in zip(keys, rules, strict=True):
                n, last, _ = self._counters.get(key, (0, 0.0, 0.0))
                if n >= free:
                    remaining = max(remaining, last + min(longest, first * 2 ** (n - free)) - now)
            if remaining > 0:
                return remaining
            for key, (free, remember) in zip(keys, rules, strict=True):
                n, last, _ = self._counters.get(key, (0, 0.0, 0.0))
                self._counters[key] = (n + 1, now if n >= free else last, now + remember + longest)
            return 0.0

    def failed(self, keys: tuple[str, str], now: float) -> None:
        with self._lock:
            for key in keys:
                if key in self._counters:
                    n, _, forget = self._counters[key]
                    self._counters[key] = (n, now, forget)

    def succeeded(self, pair: str, whole: str) -> None:
        with self._lock:
            self._counters.pop(pair, None)
            if whole in self._counters:
                n, last, forget = self._counters[whole]
                self._counters[whole] = (max(0, n - 1), last, forget)

    def _forget(self, now: float) -> None:
        for key in [key for key, (_, _, forget) in self._counters.items() if forget <= now]:
            del self._counters[key]


_local = _LocalCounters()
log = logging.getLogger(__name__)
_warned = [-60.0]


def _without_redis(exc: Exception) -> None:
    """Log Redis trouble at most once a minute (it would otherwise repeat on every login)."""
    if time.monotonic() - _warned[0] >= 60:
        _warned[0] = time.monotonic()
        log.warning("login throttle: Redis cannot be asked (%s); counting in this process meanwhile", exc)

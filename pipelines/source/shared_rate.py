"""Where the adaptive rate's state lives: in this process, or in Redis for everyone.

``LocalRate`` keeps a ``RateState`` in memory: one budget per client (one per step).
``RedisRate`` keeps it as one Redis hash and runs ``reserve`` and ``throttled`` as one Lua script
each, atomically, on Redis's clock: every step, run and worker that names the same Redis and key
shares one paced stream and one Retry-After pause, so three runs at once together stay within
the API's rate. A call costs one Redis round trip (about 0.1 ms on loopback).

Hand-written because the budget must adapt (a 429 anywhere lowers the rate everywhere): the
libraries that share a limit through Redis (limits, pyrate-limiter) keep fixed rates and answer
yes or no instead of a slot to wait for.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipelines.core.urls import mask_url
from pipelines.source.ratecontrol import INF, RatePolicy, RateState, current_rate, reserve, throttled


class LocalRate:
    """The rate of one client, in process."""

    def __init__(
        self, policy: RatePolicy, clock: Callable[[], float] = time.monotonic, start: float | None = None
    ) -> None:
        """``start``: the rate an earlier client learned from the API's 429s: this one starts
        there (and grows from it) instead of finding it again with 429s of its own."""
        self.policy, self.clock = policy, clock
        self.state = RateState()
        if start is not None and 0 < start < policy.ceiling:
            self.state.rate, self.state.since = max(policy.floor, start), clock()

    async def reserve(self) -> float:
        return self.reserve_nowait()

    def reserve_nowait(self) -> float:
        """``reserve`` without an await (in process, it needs none): on every call."""
        return reserve(self.state, self.policy, self.clock())

    async def throttled(self, retry_after: float) -> bool:
        return throttled(self.state, self.policy, self.clock(), retry_after)

    def current(self) -> float:
        return current_rate(self.state, self.policy, self.clock())

    def learned(self) -> float | None:
        """The rate the API's 429s set last (None: none came, nothing was learned)."""
        return self.state.rate if self.state.rate != INF else None

    async def aclose(self) -> None:
        return None


# The Lua twin of ratecontrol.reserve / throttled (a test runs both on the same fake clock).
# -1 stands for "none" (INF) in the hash and in the ceiling. Numbers go back as strings: Redis
# would truncate a Lua number to an integer.
_SCRIPT = """
local key, op = KEYS[1], ARGV[1]
local ceiling, growth, backoff, floor = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local retry_after, ttl = tonumber(ARGV[6]), tonumber(ARGV[8])
local now = tonumber(ARGV[7])
if not now then
  local t = redis.call('TIME')  -- seconds since 2023-11-14, so that 14 digits keep microseconds
  now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
end
local s = redis.call('HMGET', key, 'rate', 'since', 'tat', 'pause', 'window', 'count', 'previous')
local rate, since, tat = tonumber(s[1] or -1), tonumber(s[2] or 0), tonumber(s[3] or 0)
local pause, window = tonumber(s[4] or 0), tonumber(s[5] or 0)
local count, previous = tonumber(s[6] or 0), tonumber(s[7] or 0)

local function f(x) return string.format('%.17g', x) end  -- tostring keeps 14 digits: not a twin
local function current()
  if rate < 0 then return ceiling end
  local r = rate * (1 + growth * math.max(0, now - since))
  if ceiling >= 0 and r > ceiling then r = ceiling end
  return r
end
local function roll()
  local elapsed = now - window
  if elapsed >= 2 then window, count, previous = now, 0, 0
  elseif elapsed >= 1 then window, count, previous = window + 1, 0, count end
end

local answer
roll()
if op == 'reserve' then
  count = count + 1
  local start = math.max(now, pause)
  local r = current()
  local wait
  if r < 0 then
    wait = start - now
  else
    local slot = math.max(tat, start)
    tat = slot + 1 / r
    wait = slot - now
  end
  answer = {f(wait), f(r), f(pause)}
else
  local event = now >= pause
  pause = math.max(pause, now + retry_after)
  if event then
    local sent = previous * math.max(0, 1 - (now - window)) + count
    local r = current()
    local cut = math.max(sent, floor)
    if r < 0 or cut < r then r = cut end
    rate = math.max(floor, backoff * r)
    since = now
  end
  answer = {event and '1' or '0', f(current()), f(pause)}
end
redis.call('HSET', key, 'rate', f(rate), 'since', f(since), 'tat', f(tat),
  'pause', f(pause), 'window', f(window), 'count', count, 'previous', previous)
redis.call('PEXPIRE', key, ttl)
return answer
"""


class RedisRate:
    """The rate shared through Redis by every client that names the same ``url`` and ``key``.

    ``clock`` (tests only) replaces Redis's own clock, which is otherwise the one every caller
    agrees on.
    """

    TTL_MS = 24 * 3600 * 1000  # an unused budget is forgotten after a day

    def __init__(self, url: str, key: str, policy: RatePolicy, clock: Callable[[], float] | None = None) -> None:
        import redis.asyncio as aioredis  # only a shared limiter needs redis

        self.url, self.key, self.policy, self.clock = url, key, policy, clock
        self._redis = aioredis.Redis.from_url(url)
        self._script = self._redis.register_script(_SCRIPT)
        self._current = policy.ceiling

    async def _call(self, op: str, retry_after: float = 0.0) -> list[bytes]:
        from redis.exceptions import RedisError

        ceiling = -1 if self.policy.ceiling == INF else self.policy.ceiling
        now = "" if self.clock is None else repr(self.clock())
        args = [op, ceiling, self.policy.growth, self.policy.backoff, self.policy.floor, retry_after, now, self.TTL_MS]
        try:
            answer = await self._script(keys=[self.key], args=args)
        except RedisError as exc:
            raise RuntimeError(
                f"SOURCE_RATE_LIMITER_URL: the shared rate limiter at {mask_url(self.url)} failed: {exc}"
            ) from exc
        rate = float(answer[1])
        self._current = INF if rate < 0 else rate
        return answer

    async def reserve(self) -> float:
        return float((await self._call("reserve"))[0])

    def reserve_nowait(self) -> None:
        """None: a slot of the shared rate takes a round trip to Redis (``reserve``)."""
        return None

    async def throttled(self, retry_after: float) -> bool:
        return (await self._call("throttled", retry_after))[0] == b"1"

    def current(self) -> float:
        """The rate at the last call (every caller's, as Redis holds it)."""
        return self._current

    async def ping(self) -> None:
        from redis.exceptions import RedisError

        try:
            await self._redis.ping()
        except RedisError as exc:
            raise RuntimeError(
                f"SOURCE_RATE_LIMITER_URL: cannot reach the shared rate limiter at {mask_url(self.url)}: {exc}"
            ) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()

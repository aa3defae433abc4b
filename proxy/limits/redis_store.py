"""Limit state in Redis, shared by every proxy replica that names the same store.

Each call costs two round trips: one script checks every limit of every scope
and takes the charge only when all allow it, atomically (Redis runs a script
alone), so replicas racing for the last request of a minute never both get it;
another corrects the charge when the call ends and frees its place in flight.
The bucket arithmetic is ``proxy.limits.buckets``' in Lua. Bucket keys expire
once they would be full again, so an idle key costs nothing; calls in flight
are a sorted set of leases that expire after ``concurrency_lease``, so a
replica that dies cannot hold its slots forever.

Errors are not handled here: the limiter decides what a failed store means.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis

from proxy.limits.buckets import day_of, month_of, refilled
from proxy.limits.store import Charge, Decision, Levels, LimitName, Scope, refusal, tightest_windows

KEY_PREFIX = "genai_collector:limits:"
MAX_CONNECTIONS = 64
# Budget counters outlive their window a little (keys list may show yesterday's), then go.
DAY_KEY_SECONDS = 2 * 86_400
MONTH_KEY_SECONDS = 40 * 86_400
KEYS_PER_SCOPE = 5  # requests bucket, tokens bucket, leases in flight, day's spend, month's spend
ARGS_PER_SCOPE = 5  # rpm, tpm, concurrency, daily budget, monthly budget ("" when not limited)
LIMIT_CODES: tuple[LimitName, ...] = ("rpm", "tpm", "concurrency", "daily_budget", "monthly_budget")

_BUCKET = """
local function refilled(key, capacity, now)
  local stored = redis.call('HMGET', key, 'l', 't', 'c')
  if not stored[1] then return capacity end
  local level = tonumber(stored[1])
  -- a limit changed since the level was stored moves it by as much
  if stored[3] then level = level + capacity - tonumber(stored[3]) end
  level = level + math.max(0, now - tonumber(stored[2])) * capacity / 60
  if level > capacity then return capacity end
  return level
end
local function store_level(key, level, capacity, now)
  redis.call('HSET', key, 'l', tostring(level), 't', tostring(now), 'c', tostring(capacity))
  -- gone once it would be full again: a missing bucket is a full one
  redis.call('PEXPIRE', key, math.ceil((capacity - level) * 60000 / capacity) + 1000)
end
"""

# KEYS: KEYS_PER_SCOPE per scope. ARGV: now, tokens, cost, lease, lease expiry, then ARGS_PER_SCOPE per scope.
# Returns {0, scope index, limit code, level, then per scope: requests level, tokens level} when refused
# (the levels as they are), else {1, then per scope: requests level, tokens level} (after the take); "" = not limited.
TAKE = (
    _BUCKET
    + """
local now, tokens, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local lease, lease_until = ARGV[4], tonumber(ARGV[5])
local scopes = #KEYS / 5
local levels = {}
for i = 0, scopes - 1 do
  local k, a = i * 5, 5 + i * 5
  local rpm, tpm = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local request_level, token_level = '', ''
  if rpm then request_level = refilled(KEYS[k + 1], rpm, now) end
  if tpm then token_level = refilled(KEYS[k + 2], tpm, now) end
  levels[i] = {request_level, token_level}
end
local function refused(i, code, level)
  local answer = {0, i, code, tostring(level)}
  for j = 0, scopes - 1 do
    table.insert(answer, tostring(levels[j][1]))
    table.insert(answer, tostring(levels[j][2]))
  end
  return answer
end
for i = 0, scopes - 1 do
  local k, a = i * 5, 5 + i * 5
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local daily, monthly = tonumber(ARGV[a + 4]), tonumber(ARGV[a + 5])
  local request_level, token_level = levels[i][1], levels[i][2]
  if rpm and (rpm <= 0 or request_level < 1) then return refused(i, 1, request_level) end
  if tpm then
    local wanted = math.min(tokens, tpm)
    if tpm <= 0 or token_level < wanted or token_level <= 0 then return refused(i, 2, token_level) end
  end
  if conc then
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) >= conc then return refused(i, 3, 0) end
  end
  if daily then
    local spent = tonumber(redis.call('GET', KEYS[k + 4]) or '0')
    if spent >= daily or spent + cost > daily then return refused(i, 4, spent) end
  end
  if monthly then
    local spent = tonumber(redis.call('GET', KEYS[k + 5]) or '0')
    if spent >= monthly or spent + cost > monthly then return refused(i, 5, spent) end
  end
end
local answer = {1}
for i = 0, scopes - 1 do
  local k, a = i * 5, 5 + i * 5
  local rpm, tpm, conc = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local request_level, token_level = levels[i][1], levels[i][2]
  if rpm then
    request_level = request_level - 1
    store_level(KEYS[k + 1], request_level, rpm, now)
  end
  if tpm then
    token_level = token_level - tokens
    store_level(KEYS[k + 2], token_level, tpm, now)
  end
  if conc then
    redis.call('ZADD', KEYS[k + 3], lease_until, lease)
    redis.call('PEXPIRE', KEYS[k + 3], math.ceil((lease_until - now) * 1000))
  end
  if cost > 0 then
    redis.call('INCRBYFLOAT', KEYS[k + 4], tostring(cost))
    redis.call('EXPIRE', KEYS[k + 4], ARGV[#ARGV - 1])
    redis.call('INCRBYFLOAT', KEYS[k + 5], tostring(cost))
    redis.call('EXPIRE', KEYS[k + 5], ARGV[#ARGV])
  end
  table.insert(answer, tostring(request_level))
  table.insert(answer, tostring(token_level))
end
return answer
"""
)

# KEYS: KEYS_PER_SCOPE per scope. ARGV: now, tokens delta, cost delta, lease, then each scope's tpm ("" when none).
SETTLE = (
    _BUCKET
    + """
local now, delta, cost_delta, lease = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = 0, #KEYS / 5 - 1 do
  local k = i * 5
  local tpm = tonumber(ARGV[5 + i])
  if tpm and tpm > 0 and delta ~= 0 then
    local level = math.min(tpm, refilled(KEYS[k + 2], tpm, now) - delta)
    store_level(KEYS[k + 2], level, tpm, now)
  end
  redis.call('ZREM', KEYS[k + 3], lease)
  if cost_delta ~= 0 then
    for _, key in ipairs({KEYS[k + 4], KEYS[k + 5]}) do
      if redis.call('EXISTS', key) == 1 then
        local spent = tonumber(redis.call('INCRBYFLOAT', key, tostring(cost_delta)))
        if spent < 0 then redis.call('SET', key, '0', 'KEEPTTL') end
      end
    end
  end
end
return 1
"""
)


def scope_keys(scope: Scope, day: str, month: str) -> list[str]:
    base = KEY_PREFIX + scope.id
    return [f"{base}:rpm", f"{base}:tpm", f"{base}:in_flight", f"{base}:day:{day}", f"{base}:month:{month}"]


def _arg(value: float | None) -> str:
    return "" if value is None else repr(value)


class RedisStore:
    def __init__(self, url: str, timeout: float, lease_seconds: float, settlement_lost: Callable[[], None]) -> None:
        # At most MAX_CONNECTIONS at once; a call finding none free waits up to ``timeout`` like any slow answer.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._redis = aioredis.Redis(connection_pool=pool)
        self._take = self._redis.register_script(TAKE)
        self._settle = self._redis.register_script(SETTLE)
        self._lease_seconds = lease_seconds
        self._settling: set[asyncio.Task[None]] = set()
        self._settlement_lost = settlement_lost  # counts a correction lost to a store error

    async def take(self, scopes: Sequence[Scope], charge: Charge, now: float) -> Decision:
        keys: list[str] = []
        args: list[Any] = [repr(now), charge.tokens, repr(charge.cost or 0.0), charge.lease]
        args.append(repr(now + self._lease_seconds))
        for scope in scopes:
            keys.extend(scope_keys(scope, charge.day, charge.month))
            limits = scope.limits
            args.extend(
                _arg(value)
                for value in (limits.rpm, limits.tpm, limits.concurrency, limits.daily_budget, limits.monthly_budget)
            )
        args.extend((DAY_KEY_SECONDS, MONTH_KEY_SECONDS))
        answer = await self._take(keys=keys, args=args)
        if int(answer[0]) == 0:
            scope = scopes[int(answer[1])]
            limit = LIMIT_CODES[int(answer[2]) - 1]
            levels = _levels(answer[4:], len(scopes))
            return Decision(refusal(scope, limit, float(answer[3]), charge, now), *tightest_windows(scopes, levels))
        return Decision(None, *tightest_windows(scopes, _levels(answer[1:], len(scopes))))

    def settle(self, scopes: Sequence[Scope], charge: Charge, tokens_delta: int, cost_delta: float, now: float) -> None:
        task = asyncio.get_running_loop().create_task(self._send_settle(scopes, charge, tokens_delta, cost_delta, now))
        self._settling.add(task)
        task.add_done_callback(self._settling.discard)

    async def _send_settle(
        self, scopes: Sequence[Scope], charge: Charge, tokens_delta: int, cost_delta: float, now: float
    ) -> None:
        keys = [key for scope in scopes for key in scope_keys(scope, charge.day, charge.month)]
        args: list[Any] = [repr(now), tokens_delta, repr(cost_delta), charge.lease]
        args.extend(_arg(scope.limits.tpm) for scope in scopes)
        try:
            await self._settle(keys=keys, args=args)
        except (aioredis.RedisError, OSError):
            # The estimate stays charged and the lease expires by itself: never an overspend.
            self._settlement_lost()

    async def close(self) -> None:
        if self._settling:
            await asyncio.gather(*self._settling, return_exceptions=True)
        await self._redis.aclose()
        await self._redis.connection_pool.disconnect()


def _levels(values: Sequence[Any], count: int) -> list[Levels]:
    """Each scope's bucket levels as the script returns them, two strings per scope ("" when not limited)."""
    return [(_level(values[2 * i]), _level(values[2 * i + 1])) for i in range(count)]


def _level(value: Any) -> float | None:
    text = value.decode() if isinstance(value, bytes) else str(value)
    return float(text) if text else None


def read_usage(url: str, timeout: float, scope: Scope, now: float) -> dict[str, str]:
    """What ``scope`` uses now against its limits (for ``keys list``), read from the store at ``url``."""
    import redis

    keys = scope_keys(scope, day_of(now), month_of(now))
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.hmget(keys[0], "l", "t", "c")
        pipe.hmget(keys[1], "l", "t", "c")
        pipe.zcount(keys[2], now, "+inf")
        pipe.get(keys[3])
        pipe.get(keys[4])
        requests, tokens, in_flight, day, month = pipe.execute()
    finally:
        client.close()
    limits, used = scope.limits, {}
    for name, limit, state in (("rpm", limits.rpm, requests), ("tpm", limits.tpm, tokens)):
        if limit is not None:
            stored = (float(state[0]), float(state[1]), now, limit, float(state[2])) if state[0] is not None else None
            level = refilled(*stored) if stored is not None else limit
            used[name] = f"{max(0.0, limit - level):.0f}/{limit}"
    if limits.concurrency is not None:
        used["concurrency"] = f"{in_flight}/{limits.concurrency}"
    for name, budget, spent in (
        ("daily_budget", limits.daily_budget, day),
        ("monthly_budget", limits.monthly_budget, month),
    ):
        if budget is not None:
            used[name] = f"${float(spent or 0):.4f}/${budget:g}"
    return used

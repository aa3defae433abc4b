"""Token buckets for requests and tokens per minute, and the UTC day and month that budgets run over.

A bucket holds up to its per-minute limit and refills continuously at that
limit per minute, so a full minute's allowance can be spent at once and is
then earned back evenly. Settling a call with more tokens than it was charged
can take a bucket below zero: the debt is repaid by refill before the next
call passes. The Redis store's Lua scripts do the same arithmetic.
"""

from __future__ import annotations

import datetime
import functools

SECONDS_PER_MINUTE = 60.0
SECONDS_PER_DAY = 86_400


def refilled(level: float | None, since: float, now: float, capacity: float, was: float | None = None) -> float:
    """A bucket's level at ``now``: ``level`` at ``since`` plus what refilled since, at most ``capacity``.

    A bucket never seen (None) is full. A limit changed since (``was``, the capacity
    the level was stored with) moves the level by as much, so a raised limit applies at once.
    """
    if level is None:
        return capacity
    if was is not None and was != capacity:
        level += capacity - was
    return min(capacity, level + max(0.0, now - since) * capacity / SECONDS_PER_MINUTE)


def seconds_until(level: float, wanted: float, capacity: float) -> float:
    """How long until a bucket at ``level`` holds ``wanted`` (0 when it already does)."""
    if capacity <= 0:
        return SECONDS_PER_MINUTE
    return max(0.0, (wanted - level) * SECONDS_PER_MINUTE / capacity)


def day_of(now: float) -> str:
    """The UTC day budgets charge at ``now`` (seconds since the epoch), e.g. 2026-12-06."""
    return _day_name(int(now // SECONDS_PER_DAY))


def month_of(now: float) -> str:
    """The UTC month budgets charge at ``now``, e.g. 2026-12."""
    return _day_name(int(now // SECONDS_PER_DAY))[:7]


@functools.lru_cache(maxsize=64)  # a call asks for today's name: a dictionary hit, not a date computation
def _day_name(day: int) -> str:
    return datetime.datetime.fromtimestamp(day * SECONDS_PER_DAY, datetime.UTC).strftime("%Y-%m-%d")


def seconds_to_next_day(now: float) -> float:
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    start = moment.replace(hour=0, minute=0, second=0, microsecond=0) + datetime.timedelta(days=1)
    return (start - moment).total_seconds()


def seconds_to_next_month(now: float) -> float:
    moment = datetime.datetime.fromtimestamp(now, datetime.UTC)
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    start = datetime.datetime(year, month, 1, tzinfo=datetime.UTC)
    return (start - moment).total_seconds()

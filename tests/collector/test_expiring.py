"""ExpiringMap: bounded in entries and in age; what it forgets is reported, or handed back when asked."""

from __future__ import annotations

from collector.expiring import IDLE, LIMIT, ExpiringMap
from tests.conftest import ManualClock


def test_the_oldest_goes_first_past_the_limit_and_past_the_age() -> None:
    clock, evicted = ManualClock(), []
    held: ExpiringMap[str, int] = ExpiringMap(2, 10.0, lambda reason, count: evicted.append((reason, count)), clock)
    held.put("a", 1)
    clock.now = 5.0
    held.put("b", 2)
    held.put("c", 3)  # over the limit: "a" goes
    assert (held.get("a"), held.get("b"), evicted) == (None, 2, [(LIMIT, 1)])
    clock.now = 12.0
    held.put("c", 4)  # put again: young again
    clock.now = 15.5
    held.expire()
    assert ("b" in held, held.get("c"), evicted[-1]) == (False, 4, (IDLE, 1))


def test_expired_entries_can_be_taken_instead_of_reported() -> None:
    clock, evicted = ManualClock(), []
    held: ExpiringMap[str, int] = ExpiringMap(10, 10.0, lambda reason, count: evicted.append((reason, count)), clock)
    held.put("a", 1)
    held.put("b", 2)
    clock.now = 3.0
    held.put("c", 3)
    clock.now = 11.0
    assert held.take_expired() == [("a", 1), ("b", 2)]
    assert held.take_expired() == [] and len(held) == 1 and evicted == []

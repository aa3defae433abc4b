"""The judge's daily budget in USD: a call starts only when its estimated cost still fits in today's budget.

Each call reserves its estimate (its prompt and the most output it may write, priced by genai_cost's
price book) before it is sent and settles to its real cost when answered, so concurrent calls cannot
together overrun the budget. The day is the UTC day; at midnight the spend starts again from 0.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SECONDS_PER_DAY = 86_400


class DailyBudget:
    """Spend and reservations of the current UTC day against ``limit_usd`` (0: no limit)."""

    def __init__(self, limit_usd: float, clock: Callable[[], float] = time.time) -> None:
        self.limit_usd = limit_usd
        self._clock = clock
        self._lock = threading.Lock()
        self._day = self._today()
        self.spent_usd = 0.0
        self._reserved_usd = 0.0

    def _today(self) -> int:
        return int(self._clock() // SECONDS_PER_DAY)

    def _roll(self) -> None:
        today = self._today()
        if today != self._day:
            self._day, self.spent_usd, self._reserved_usd = today, 0.0, 0.0

    def reserve(self, estimate_usd: float) -> bool:
        """Hold ``estimate_usd`` for a call about to start; False when it does not fit in what is left today."""
        with self._lock:
            self._roll()
            if self.limit_usd and self.spent_usd + self._reserved_usd + estimate_usd > self.limit_usd:
                return False
            self._reserved_usd += estimate_usd
            return True

    def settle(self, estimate_usd: float, actual_usd: float) -> None:
        """The call ended: its reservation goes, its real cost counts (0 when it cost nothing or failed)."""
        with self._lock:
            self._roll()
            self._reserved_usd = max(self._reserved_usd - estimate_usd, 0.0)
            self.spent_usd += actual_usd

    @property
    def day(self) -> int:
        with self._lock:
            self._roll()
            return self._day

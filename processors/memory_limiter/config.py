"""Settings of the ``memory_limiter`` processor, named as in the OpenTelemetry Collector.

The limit is either fixed (``limit_mib``) or a share of the memory available
(``limit_percentage``; 80% when neither is set). Data is refused once usage
reaches the soft limit: the limit minus the spike allowance, which leaves room
for what arrives between two checks.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import Duration

DEFAULT_CHECK_INTERVAL = Duration(1.0)
DEFAULT_LIMIT_PERCENTAGE = 80
# As in the Go collector: without a spike setting, a fifth of the limit.
DEFAULT_SPIKE_FRACTION = 0.2
BYTES_PER_MIB = 1024 * 1024
MAX_PERCENTAGE = 100


@dataclass(frozen=True)
class MemoryLimiterConfig:
    check_interval: Duration = DEFAULT_CHECK_INTERVAL
    limit_mib: int = 0  # 0: use limit_percentage
    spike_limit_mib: int = 0  # 0: a fifth of limit_mib
    limit_percentage: int = 0  # 0: DEFAULT_LIMIT_PERCENTAGE, unless limit_mib is set
    spike_limit_percentage: int = 0  # 0: a fifth of the limit

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.check_interval <= 0:
            yield "check_interval", "must be more than 0"
        negative = [
            name
            for name in ("limit_mib", "spike_limit_mib", "limit_percentage", "spike_limit_percentage")
            if getattr(self, name) < 0
        ]
        for name in negative:
            yield name, "must not be negative"
        if negative:
            return  # the comparisons below would only repeat the mistake
        for name in ("limit_percentage", "spike_limit_percentage"):
            if getattr(self, name) > MAX_PERCENTAGE:
                yield name, f"must be at most {MAX_PERCENTAGE}"
        if self.limit_mib and self.limit_percentage:
            yield "limit_percentage", "set either limit_mib or limit_percentage, not both"
        if self.limit_mib and self.spike_limit_percentage:
            yield "spike_limit_percentage", "applies only with limit_percentage"
        if not self.limit_mib and self.spike_limit_mib:
            yield "spike_limit_mib", "applies only with limit_mib"
        if self.limit_mib and self.spike_limit_mib >= self.limit_mib:
            yield "spike_limit_mib", f"must be less than limit_mib ({self.limit_mib})"
        limit_percentage = self.limit_percentage or DEFAULT_LIMIT_PERCENTAGE
        if not self.limit_mib and self.spike_limit_percentage >= limit_percentage:
            yield "spike_limit_percentage", f"must be less than limit_percentage ({limit_percentage})"

    def limits(self, total_bytes: int) -> tuple[int, int]:
        """(hard limit, soft limit) in bytes; ``total_bytes`` is what percentages are taken of."""
        if self.limit_mib:
            hard = self.limit_mib * BYTES_PER_MIB
            spike = self.spike_limit_mib * BYTES_PER_MIB if self.spike_limit_mib else int(hard * DEFAULT_SPIKE_FRACTION)
        else:
            hard = total_bytes * (self.limit_percentage or DEFAULT_LIMIT_PERCENTAGE) // MAX_PERCENTAGE
            if self.spike_limit_percentage:
                spike = total_bytes * self.spike_limit_percentage // MAX_PERCENTAGE
            else:
                spike = int(hard * DEFAULT_SPIKE_FRACTION)
        return hard, hard - spike

"""Latency outliers: a call far slower than its model usually is, judged against a running distribution.

LLM latencies are skewed (a long answer takes many times a short one), so the
distribution kept is of log-durations: an exponentially weighted mean and
variance per provider, model and operation, which follows a model that gets
slower or faster over the day. A call is judged before it is added, and only
once enough calls of its model were seen.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass

from processors.genai_loop_detection.config import LatencySettings

# Weight of each new call in the running figures: about the last few hundred calls count.
SMOOTHING = 0.01
MAX_MODELS = 1_000  # distinct (provider, model, operation) tracked; the least recent is forgotten


@dataclass(slots=True)
class _Distribution:
    count: int = 0
    mean: float = 0.0
    variance: float = 0.0

    def add(self, value: float) -> None:
        self.count += 1
        if self.count == 1:
            self.mean = value
            return
        # Warm up as a plain running mean until the smoothing weight takes over.
        weight = max(SMOOTHING, 1.0 / self.count)
        delta = value - self.mean
        self.mean += weight * delta
        self.variance = (1 - weight) * (self.variance + weight * delta * delta)


@dataclass(frozen=True)
class Outlier:
    seconds: float
    usual_seconds: float  # exp(mean log-duration): the model's typical duration
    deviations: float


class LatencyWatch:
    def __init__(self, settings: LatencySettings) -> None:
        self._settings = settings
        self._models: OrderedDict[tuple[str, str, str], _Distribution] = OrderedDict()

    def observe(self, model: tuple[str, str, str], seconds: float) -> Outlier | None:
        """Judge one call's duration against its model's distribution so far, then add it."""
        if seconds <= 0:
            return None
        distribution = self._models.get(model)
        if distribution is None:
            distribution = self._models[model] = _Distribution()
            if len(self._models) > MAX_MODELS:
                self._models.popitem(last=False)
        else:
            self._models.move_to_end(model)
        value = math.log(seconds)
        outlier = None
        settings = self._settings
        if distribution.count >= settings.min_samples and seconds >= settings.min_duration:
            spread = math.sqrt(distribution.variance)
            if spread > 0:
                deviations = (value - distribution.mean) / spread
                if deviations >= settings.deviations:
                    outlier = Outlier(seconds, math.exp(distribution.mean), deviations)
        distribution.add(value)
        return outlier

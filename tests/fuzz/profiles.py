"""Hypothesis budgets for the fuzzers: ``ci`` by default, ``long`` with ``GENAI_FUZZ=long``.

Each fuzzer states its CI example count through ``fuzz_settings``; the long
profile multiplies it. The profile is applied per test, never loaded globally,
so hypothesis tests elsewhere in the suite keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase

ENV_VAR = "GENAI_FUZZ"
CI = "ci"
LONG = "long"
LONG_MULTIPLIER = 50
_SLOW_INPUTS_OK = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]

# derandomize: CI runs the same examples every time, so a red run is reproducible and never a coin toss.
settings.register_profile(CI, deadline=None, database=None, derandomize=True, suppress_health_check=_SLOW_INPUTS_OK)
settings.register_profile(
    LONG,
    deadline=None,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
    suppress_health_check=_SLOW_INPUTS_OK,
)


def profile_name() -> str:
    """The profile chosen by ``GENAI_FUZZ`` (``ci`` when unset)."""
    name = os.environ.get(ENV_VAR, CI).strip().lower() or CI
    if name not in (CI, LONG):
        raise ValueError(f"{ENV_VAR} must be {CI} or {LONG}, got {name!r}")
    return name


def fuzz_settings(ci_examples: int) -> settings:
    """Settings for one fuzzer: ``ci_examples`` examples in CI, many more in the long profile."""
    name = profile_name()
    examples = ci_examples * LONG_MULTIPLIER if name == LONG else ci_examples
    return settings(settings.get_profile(name), max_examples=examples)

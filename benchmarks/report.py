"""The figures the benchmarks print: percentiles, medians and ranges over rounds, per-round ratios, peers beside us.

Imported by the scripts beside it; not run on its own.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the value below which ``fraction`` of ``values`` fall."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        raise ValueError("no values")
    return Summary(statistics.median(values), min(values), max(values))


def ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Round by round: each round's figure over the same round's baseline."""
    if len(numerators) != len(denominators):
        raise ValueError(f"{len(numerators)} rounds against {len(denominators)}")
    return [a / b if b else float("inf") for a, b in zip(numerators, denominators, strict=True)]


def _number(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}"


@dataclass
class Figures:
    """Figures gathered round by round, printed as median, range and every round."""

    rounds: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.rounds.setdefault(name, []).append(value)

    def __getitem__(self, name: str) -> list[float]:
        return self.rounds[name]

    def __contains__(self, name: str) -> bool:
        return name in self.rounds

    def line(self, name: str, decimals: int = 2, width: int = 0) -> str:
        values = self.rounds[name]
        summary = summarize(values)
        shown = ", ".join(_number(value, decimals) for value in values)
        return (
            f"{name:<{width}}  median {_number(summary.median, decimals):>10}   range "
            f"{_number(summary.low, decimals)} - {_number(summary.high, decimals)}   rounds: {shown}"
        )

    def print(self, decimals: int = 2) -> None:
        width = max((len(name) for name in self.rounds), default=0)
        for name in self.rounds:
            print(self.line(name, decimals, width))


def ratio_line(label: str, numerators: Sequence[float], denominators: Sequence[float], width: int = 0) -> str:
    """``label``: the median of the per-round ratios, their range and every round."""
    values = ratios(numerators, denominators)
    summary = summarize(values)
    shown = ", ".join(f"{value:.2f}" for value in values)
    return (
        f"{label:<{width}}  median {summary.median:>9.2f}x  range {summary.low:.2f} - {summary.high:.2f}"
        f"   rounds: {shown}"
    )


def beside(label: str, ours: Sequence[float], theirs: Sequence[float], peer: str, decimals: int = 2) -> str:
    """One figure for genai-collector and a peer, their medians side by side and the peer's over ours."""
    mine, other = summarize(ours), summarize(theirs)
    ratio = summarize(ratios(theirs, ours))
    return (
        f"{label}: genai-collector {_number(mine.median, decimals)} "
        f"({_number(mine.low, decimals)} - {_number(mine.high, decimals)}), {peer} {_number(other.median, decimals)} "
        f"({_number(other.low, decimals)} - {_number(other.high, decimals)}); {peer} / genai-collector "
        f"{ratio.median:.2f}x ({ratio.low:.2f} - {ratio.high:.2f})"
    )


def megabytes(value: float) -> float:
    return value / 1e6

"""The exporter's series in the Prometheus text exposition format (version 0.0.4), as client_golang writes it.

One ``# HELP`` and ``# TYPE`` per metric name; a histogram's series as
cumulative ``_bucket`` samples with ``le`` (``+Inf`` last), ``_sum`` and ``_count``;
an exponential histogram (a native histogram, which this format cannot carry)
as its ``le="+Inf"`` bucket, ``_sum`` and ``_count``; a summary as a sample per
``quantile``, ``_sum`` and ``_count``; ``target_info`` first.
"""

from __future__ import annotations

from collections.abc import Iterable

from collector.telemetry import render_labels
from exporters.prometheus.naming import Kind, number_text
from exporters.prometheus.store import TARGET_INFO, TARGET_INFO_HELP, Family, Labels, MetricStore, Series

INF = "+Inf"


def render(store: MetricStore, namespace: str = "") -> str:
    lines: list[str] = []
    if store.targets:
        name = f"{namespace}_{TARGET_INFO}" if namespace else TARGET_INFO
        lines += [f"# HELP {name} {TARGET_INFO_HELP}", f"# TYPE {name} gauge"]
        lines += [f"{name}{render_labels(labels)} 1" for labels, _ in sorted(store.targets.values())]
    for name in sorted(store.families):
        _family(store.families[name], lines)
    return "\n".join(lines) + "\n" if lines else ""


def _family(family: Family, lines: list[str]) -> None:
    help_text = family.help.replace("\\", "\\\\").replace("\n", "\\n")
    lines.append(f"# HELP {family.name} {help_text}")
    lines.append(f"# TYPE {family.name} {family.kind.type_name}")
    for labels in sorted(family.series):
        series = family.series[labels]
        if family.kind in (Kind.GAUGE, Kind.COUNTER, Kind.NON_MONOTONIC_SUM):
            lines.append(_sample(family.name, labels, series.value))
        elif family.kind is Kind.SUMMARY:
            lines.extend(_sample(family.name, labels, v, ("quantile", number_text(q))) for q, v in series.quantiles)
            lines.extend(_sum_and_count(family.name, labels, series))
        else:
            lines.extend(_buckets(family.name, labels, series))
            lines.extend(_sum_and_count(family.name, labels, series))


def _buckets(name: str, labels: Labels, series: Series) -> Iterable[str]:
    cumulative = 0
    for bound, count in zip(series.bounds, series.bucket_counts, strict=False):
        cumulative += count
        yield _sample(f"{name}_bucket", labels, cumulative, ("le", number_text(bound)))
    yield _sample(f"{name}_bucket", labels, series.count, ("le", INF))


def _sum_and_count(name: str, labels: Labels, series: Series) -> Iterable[str]:
    yield _sample(f"{name}_sum", labels, series.total)
    yield _sample(f"{name}_count", labels, series.count)


def _sample(name: str, labels: Labels, value: float, extra: tuple[str, str] | None = None) -> str:
    pairs = (*labels, extra) if extra else labels
    return f"{name}{render_labels(pairs)} {number_text(value)}"

"""The three OTLP signals and what differs between them: their data type, the items they count, their names.

Traces, logs and metrics flow as their OTLP protobuf (``TracesData``, ``LogsData``,
``MetricsData``), each wire-identical to the body of its Export request. Code
that handles any of them (a fan-out, a queue, a counter) asks this module how
many items a batch holds, or for an empty batch of the same signal, rather than
branching on the signal itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias, TypeVar

from google.protobuf.message import Message
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData
from opentelemetry.proto.metrics.v1.metrics_pb2 import MetricsData
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.pdata import data_point_count, log_record_count, span_count

__all__ = ["Signal", "SIGNALS", "OtlpData", "TracesData", "LogsData", "MetricsData", "SignalKind", "SIGNAL_KINDS"]

Signal = Literal["traces", "logs", "metrics"]
SIGNALS: tuple[Signal, ...] = ("traces", "logs", "metrics")

OtlpData: TypeAlias = TracesData | LogsData | MetricsData
# One batch of any signal, where the code is the same for all three.
D = TypeVar("D", TracesData, LogsData, MetricsData)
M = TypeVar("M", bound=Message)


@dataclass(frozen=True)
class SignalKind:
    """What the code handling one signal needs to know of it."""

    signal: Signal
    data_type: type[OtlpData]
    # What a batch is counted in, for a sentence ("3 log records").
    items_text: str
    count: Callable[[OtlpData], int]


# Each count takes its own signal's message only: the ignores say so to mypy, the table keeps them apart.
SIGNAL_KINDS: dict[Signal, SignalKind] = {
    "traces": SignalKind("traces", TracesData, "spans", span_count),  # type: ignore[arg-type]
    "logs": SignalKind("logs", LogsData, "log records", log_record_count),  # type: ignore[arg-type]
    "metrics": SignalKind("metrics", MetricsData, "data points", data_point_count),  # type: ignore[arg-type]
}
_BY_TYPE: dict[type, SignalKind] = {kind.data_type: kind for kind in SIGNAL_KINDS.values()}


def kind_of(data: OtlpData) -> SignalKind:
    """The signal ``data`` belongs to."""
    return _BY_TYPE[type(data)]


def signal_of(data: OtlpData) -> Signal:
    return kind_of(data).signal


def item_count(data: OtlpData) -> int:
    """How many items (spans, log records or data points) ``data`` holds."""
    return kind_of(data).count(data)


def empty_like(data: M) -> M:
    """An empty batch of ``data``'s signal."""
    return type(data)()


def merged(batches: Sequence[M]) -> M:
    """One batch holding every resource of ``batches`` (all of one signal, at least one), in order."""
    if len(batches) == 1:
        return batches[0]
    result = empty_like(batches[0])
    for batch in batches:
        result.MergeFrom(batch)  # repeated fields concatenate: the resources, one after another
    return result

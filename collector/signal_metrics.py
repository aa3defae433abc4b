"""The pipeline's self-metrics for one signal, under the Collector's name for its items.

Receivers, processors and exporters count the same things for every signal, in
spans, log records or metric points (``otelcol_receiver_accepted_spans``,
``otelcol_receiver_accepted_log_records``, ``otelcol_receiver_accepted_metric_points``).
Code that serves any signal binds its series here instead of choosing a metric itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from collector.generated_metrics import PipelineSelfMetrics
from collector.signals import Signal
from collector.telemetry import BoundCounter, Telemetry


class _ReceiverCounter(Protocol):
    def add(self, amount: float, *, receiver: str, transport: str) -> None: ...

    def bind(self, *, receiver: str, transport: str) -> BoundCounter: ...


class _ProcessorCounter(Protocol):
    def bind(self, *, processor: str) -> BoundCounter: ...


class _ExporterCounter(Protocol):
    def bind(self, *, exporter: str) -> BoundCounter: ...


class _ExporterFailureCounter(Protocol):
    def add(self, amount: float, *, exporter: str, reason: str) -> None: ...


@dataclass(frozen=True)
class SignalMetrics:
    """The counters of one signal, one per thing counted."""

    signal: Signal
    receiver_accepted: _ReceiverCounter
    receiver_refused: _ReceiverCounter
    processor_incoming: _ProcessorCounter
    processor_outgoing: _ProcessorCounter
    processor_refused: _ProcessorCounter
    exporter_sent: _ExporterCounter
    exporter_send_failed: _ExporterFailureCounter
    exporter_enqueue_failed: _ExporterCounter
    exporter_rejected: _ExporterCounter

    @property
    def data_type(self) -> str | None:
        """The queue gauges' ``data_type`` label: none for traces (their series as they always were)."""
        return None if self.signal == "traces" else self.signal


def signal_metrics(telemetry: Telemetry, signal: Signal) -> SignalMetrics:
    """The counters of ``signal`` in ``telemetry``."""
    m = PipelineSelfMetrics(telemetry)
    if signal == "logs":
        return SignalMetrics(
            signal,
            m.receiver_accepted_log_records,
            m.receiver_refused_log_records,
            m.processor_incoming_log_records,
            m.processor_outgoing_log_records,
            m.processor_refused_log_records,
            m.exporter_sent_log_records,
            m.exporter_send_failed_log_records,
            m.exporter_enqueue_failed_log_records,
            m.exporter_rejected_log_records,
        )
    if signal == "metrics":
        return SignalMetrics(
            signal,
            m.receiver_accepted_metric_points,
            m.receiver_refused_metric_points,
            m.processor_incoming_metric_points,
            m.processor_outgoing_metric_points,
            m.processor_refused_metric_points,
            m.exporter_sent_metric_points,
            m.exporter_send_failed_metric_points,
            m.exporter_enqueue_failed_metric_points,
            m.exporter_rejected_metric_points,
        )
    return SignalMetrics(
        signal,
        m.receiver_accepted_spans,
        m.receiver_refused_spans,
        m.processor_incoming_spans,
        m.processor_outgoing_spans,
        m.processor_refused_spans,
        m.exporter_sent_spans,
        m.exporter_send_failed_spans,
        m.exporter_enqueue_failed_spans,
        m.exporter_rejected_spans,
    )

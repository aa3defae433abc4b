"""The step both OTLP transports share, for each signal: cut out invalid spans, hand the rest to the pipeline,
count the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from collector.component import Consumer
from collector.errors import ConsumeError, RetryableError
from collector.generated_metrics import PipelineSelfMetrics, ReceiverRefusedSpans
from collector.receivers.otlp.config import RequestLimits
from collector.receivers.otlp.limits import Rejection, reject_oversized_spans
from collector.signal_metrics import SignalMetrics, signal_metrics
from collector.signals import SIGNAL_KINDS, OtlpData, Signal, TracesData
from collector.telemetry import BoundCounter, Telemetry


@dataclass(frozen=True)
class Ingest:
    """Feeds one receiver transport's requests of one signal into its pipeline consumer."""

    consumer: Consumer[Any]
    telemetry: Telemetry
    receiver: str
    transport: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    limits: RequestLimits = RequestLimits()
    signal: Signal = "traces"

    # The series every request counts into, made once (set in __post_init__, past the frozen __setattr__).
    _metrics: SignalMetrics = field(init=False, repr=False, compare=False)
    _invalid_spans: ReceiverRefusedSpans = field(init=False, repr=False, compare=False)
    _accepted: BoundCounter = field(init=False, repr=False, compare=False)
    _refused: BoundCounter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        metrics, receiver, transport = signal_metrics(self.telemetry, self.signal), self.receiver, self.transport
        accepted = metrics.receiver_accepted.bind(receiver=receiver, transport=transport)
        refused = metrics.receiver_refused.bind(receiver=receiver, transport=transport)
        object.__setattr__(self, "_metrics", metrics)
        object.__setattr__(self, "_invalid_spans", PipelineSelfMetrics(self.telemetry).receiver_refused_spans)
        object.__setattr__(self, "_accepted", accepted)
        object.__setattr__(self, "_refused", refused)

    async def __call__(self, data: OtlpData) -> Rejection | None:
        """Returns once every exporter's queue holds the valid items, with the spans rejected as invalid if any.

        Raises ConsumeError when the pipeline refuses the items. The per-request
        limits are the transports' to check, before and after decoding.
        """
        rejection = None
        if isinstance(data, TracesData):
            rejection = reject_oversized_spans(data, self.limits)
        if rejection is not None:
            # Labelled with the limit, unlike pipeline refusals, so a dashboard can tell
            # a client sending bad spans from a pipeline that cannot keep up.
            for limit, count in rejection.by_limit.items():
                self._invalid_spans.add(count, receiver=self.receiver, transport=self.transport, reason=limit)
        kind = SIGNAL_KINDS[self.signal]
        count = kind.count(data)
        if count == 0:
            return rejection
        try:
            await self.consumer.consume(data)
        except ConsumeError:
            self._refused.add(count)
            raise
        except Exception as exc:
            # A component bug: the client keeps its data and may retry, as the Go
            # collector treats every error not marked permanent.
            self.logger.exception("pipeline failed on %d %s", count, kind.items_text)
            self._refused.add(count)
            raise RetryableError(f"internal error in the pipeline: {type(exc).__name__}") from exc
        self._accepted.add(count)
        return rejection

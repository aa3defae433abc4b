"""The step both OTLP transports share: cut out invalid spans, hand the rest to the pipeline, count the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collector.component import TracesConsumer, TracesData
from collector.errors import ConsumeError, RetryableError
from collector.generated_metrics import PipelineSelfMetrics
from collector.pdata import span_count
from collector.receivers.otlp.config import RequestLimits
from collector.receivers.otlp.limits import Rejection, reject_oversized_spans
from collector.telemetry import BoundCounter, Telemetry


@dataclass(frozen=True)
class Ingest:
    """Feeds one receiver transport's requests into its pipeline consumer."""

    consumer: TracesConsumer
    telemetry: Telemetry
    receiver: str
    transport: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    limits: RequestLimits = RequestLimits()

    # The series every request counts into, made once (set in __post_init__, past the frozen __setattr__).
    _metrics: PipelineSelfMetrics = field(init=False, repr=False, compare=False)
    _accepted: BoundCounter = field(init=False, repr=False, compare=False)
    _refused: BoundCounter = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        metrics, receiver, transport = PipelineSelfMetrics(self.telemetry), self.receiver, self.transport
        accepted = metrics.receiver_accepted_spans.bind(receiver=receiver, transport=transport)
        refused = metrics.receiver_refused_spans.bind(receiver=receiver, transport=transport)
        object.__setattr__(self, "_metrics", metrics)
        object.__setattr__(self, "_accepted", accepted)
        object.__setattr__(self, "_refused", refused)

    async def __call__(self, traces: TracesData) -> Rejection | None:
        """Returns once every exporter's queue holds the valid spans, with the spans rejected as invalid if any.

        Raises ConsumeError when the pipeline refuses the spans. The per-request
        limits are the transports' to check, before and after decoding.
        """
        rejection = reject_oversized_spans(traces, self.limits)
        if rejection is not None:
            # Labelled with the limit, unlike pipeline refusals, so a dashboard can tell
            # a client sending bad spans from a pipeline that cannot keep up.
            refused_spans = self._metrics.receiver_refused_spans
            for limit, count in rejection.by_limit.items():
                refused_spans.add(count, receiver=self.receiver, transport=self.transport, reason=limit)
        count = span_count(traces)
        if count == 0:
            return rejection
        try:
            await self.consumer.consume(traces)
        except ConsumeError:
            self._refused.add(count)
            raise
        except Exception as exc:
            # A component bug: the client keeps its data and may retry, as the Go
            # collector treats every error not marked permanent.
            self.logger.exception("pipeline failed on %d spans", count)
            self._refused.add(count)
            raise RetryableError(f"internal error in the pipeline: {type(exc).__name__}") from exc
        self._accepted.add(count)
        return rejection

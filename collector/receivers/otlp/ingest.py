"""The step both OTLP transports share: cut out invalid spans, hand the rest to the pipeline, count the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collector.component import TracesConsumer, TracesData
from collector.errors import ConsumeError, RetryableError
from collector.pdata import span_count
from collector.receivers.otlp.config import RequestLimits
from collector.receivers.otlp.limits import Rejection, reject_oversized_spans
from collector.telemetry import Telemetry

REFUSED_SPANS = "otelcol_receiver_refused_spans"
ACCEPTED_SPANS = "otelcol_receiver_accepted_spans"


@dataclass(frozen=True)
class Ingest:
    """Feeds one receiver transport's requests into its pipeline consumer."""

    consumer: TracesConsumer
    telemetry: Telemetry
    receiver: str
    transport: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))
    limits: RequestLimits = RequestLimits()

    async def __call__(self, traces: TracesData) -> Rejection | None:
        """Returns once every exporter's queue holds the valid spans, with the spans rejected as invalid if any.

        Raises ConsumeError when the pipeline refuses the spans. The per-request
        limits are the transports' to check, before and after decoding.
        """
        labels = {"receiver": self.receiver, "transport": self.transport}
        rejection = reject_oversized_spans(traces, self.limits)
        if rejection is not None:
            # Labelled with the limit, unlike pipeline refusals, so a dashboard can tell
            # a client sending bad spans from a pipeline that cannot keep up.
            for limit, count in rejection.by_limit.items():
                self.telemetry.add(REFUSED_SPANS, count, reason=limit, **labels)
        count = span_count(traces)
        if count == 0:
            return rejection
        try:
            await self.consumer.consume(traces)
        except ConsumeError:
            self.telemetry.add(REFUSED_SPANS, count, **labels)
            raise
        except Exception as exc:
            # A component bug: the client keeps its data and may retry, as the Go
            # collector treats every error not marked permanent.
            self.logger.exception("pipeline failed on %d spans", count)
            self.telemetry.add(REFUSED_SPANS, count, **labels)
            raise RetryableError(f"internal error in the pipeline: {type(exc).__name__}") from exc
        self.telemetry.add(ACCEPTED_SPANS, count, **labels)
        return rejection

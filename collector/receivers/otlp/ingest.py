"""The step both OTLP transports share: hand a decoded request to the pipeline and count the outcome."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from collector.component import TracesConsumer, TracesData
from collector.errors import ConsumeError, RetryableError
from collector.pdata import span_count
from collector.telemetry import Telemetry


@dataclass(frozen=True)
class Ingest:
    """Feeds one receiver transport's requests into its pipeline consumer."""

    consumer: TracesConsumer
    telemetry: Telemetry
    receiver: str
    transport: str
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(__name__))

    async def __call__(self, traces: TracesData) -> None:
        """Returns once every exporter's queue holds the spans; raises ConsumeError otherwise."""
        count = span_count(traces)
        if count == 0:
            return
        labels = {"receiver": self.receiver, "transport": self.transport}
        try:
            await self.consumer.consume(traces)
        except ConsumeError:
            self.telemetry.add("otelcol_receiver_refused_spans", count, **labels)
            raise
        except Exception as exc:
            # A component bug: the client keeps its data and may retry, as the Go
            # collector treats every error not marked permanent.
            self.logger.exception("pipeline failed on %d spans", count)
            self.telemetry.add("otelcol_receiver_refused_spans", count, **labels)
            raise RetryableError(f"internal error in the pipeline: {type(exc).__name__}") from exc
        self.telemetry.add("otelcol_receiver_accepted_spans", count, **labels)

"""The ``debug`` exporter: prints what reaches it, for seeing a pipeline work.

``verbosity: basic`` prints one summary line per batch, ``normal`` one line per
span, ``detailed`` every field of every span. It writes synchronously to the
collector's log (standard error) and keeps no queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from google.protobuf import text_format

from collector.component import ComponentSettings, Exporter, ExporterFactory, Host, TracesData
from collector.generated_metrics import PipelineSelfMetrics
from collector.pdata import iter_spans, span_count


@dataclass(frozen=True)
class DebugConfig:
    verbosity: Literal["basic", "normal", "detailed"] = "basic"


class DebugExporter:
    def __init__(self, settings: ComponentSettings, config: DebugConfig) -> None:
        self._logger = settings.logger
        self._sent = PipelineSelfMetrics(settings.telemetry).exporter_sent_spans.bind(exporter=str(settings.id))
        self._verbosity = config.verbosity

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        self._logger.info("Traces: %d resource spans, %d spans", len(traces.resource_spans), span_count(traces))
        if self._verbosity == "normal":
            for _, _, span in iter_spans([traces]):
                self._logger.info("  %s trace_id=%s span_id=%s", span.name, span.trace_id.hex(), span.span_id.hex())
        elif self._verbosity == "detailed":
            self._logger.info("%s", text_format.MessageToString(traces, as_utf8=True))
        # No queue: a batch is exported once it is logged, counted as the queued exporters count theirs.
        self._sent.add(span_count(traces))


def create_exporter(settings: ComponentSettings, config: DebugConfig) -> Exporter:
    return DebugExporter(settings, config)


# It shows what the pipeline accepted: a batch another exporter refused is shown when the client sends it again.
factory = ExporterFactory(type="debug", config_type=DebugConfig, create=create_exporter, accepted_only=True)

"""The ``genai_normalize`` processor: every GenAI dialect onto the current OpenTelemetry GenAI conventions.

Runs at ingest, before anything else reads GenAI attributes, so every later
processor and every query sees one vocabulary (see ``dialects`` for what is
mapped). Source keys a rule consumed are removed unless ``keep_original`` is
set; keys no rule knows are left alone. A span with no key of any GenAI dialect
is recognised by one pass over its key names and passes untouched. In a logs
pipeline it maps the GenAI events of every convention version forward (see ``events``).
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.component import (
    ComponentSettings,
    Host,
    LogsConsumer,
    LogsData,
    Processor,
    ProcessorFactory,
    TracesConsumer,
)
from processors.genai_normalize.dialects import needs_normalizing, normalize
from processors.genai_normalize.events import normalize_record
from processors.genai_normalize.normalization import Normalization
from processors.span_view import SpanView, ViewProcessor


@dataclass(frozen=True)
class GenAiNormalizeConfig:
    # Keep the source keys next to the current ones (e.g. for dashboards built on the old names).
    keep_original: bool = False


class GenAiNormalizeProcessor(ViewProcessor):
    def __init__(
        self, settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: TracesConsumer
    ) -> None:
        super().__init__(next_consumer)
        self._keep_original = config.keep_original

    def edit(self, view: SpanView) -> None:
        keys = frozenset(view.keys())
        name = view.span.name
        if not needs_normalizing(keys, name):
            return
        normalization = Normalization(view, name, self._keep_original)
        normalize(normalization, keys)
        if not self._keep_original and normalization.consumed:
            view.remove(normalization.consumed)


class GenAiNormalizeLogsProcessor:
    """The GenAI events of a logs pipeline onto the newest conventions (``events``); other records pass untouched."""

    def __init__(self, config: GenAiNormalizeConfig, next_consumer: LogsConsumer) -> None:
        self._keep_original = config.keep_original
        self._next = next_consumer

    async def start(self, host: Host) -> None:
        pass

    async def consume(self, logs: LogsData) -> None:
        for resource_logs in logs.resource_logs:
            for scope_logs in resource_logs.scope_logs:
                for record in scope_logs.log_records:
                    normalize_record(record, self._keep_original)
        await self._next.consume(logs)

    async def shutdown(self) -> None:
        pass


def create_processor(
    settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiNormalizeProcessor(settings, config, next_consumer)


def create_logs_processor(
    settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: LogsConsumer
) -> Processor:
    return GenAiNormalizeLogsProcessor(config, next_consumer)


factory = ProcessorFactory(
    type="genai_normalize",
    config_type=GenAiNormalizeConfig,
    create=create_processor,
    runs_in="worker",
    create_logs=create_logs_processor,
)

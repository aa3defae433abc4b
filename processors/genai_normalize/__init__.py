"""The ``genai_normalize`` processor: every GenAI dialect onto the current OpenTelemetry GenAI conventions.

Runs at ingest, before anything else reads GenAI attributes, so every later
processor and every query sees one vocabulary (see ``dialects`` for what is
mapped). Source keys a rule consumed are removed unless ``keep_original`` is
set; keys no rule knows are left alone. A span with no key of any GenAI dialect
is recognised by one pass over its key names and passes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.component import ComponentSettings, Host, Processor, ProcessorFactory, TracesConsumer, TracesData
from collector.pdata import SpanAttributes
from processors.genai_normalize.dialects import Normalization, needs_normalizing, normalize


@dataclass(frozen=True)
class GenAiNormalizeConfig:
    # Keep the source keys next to the current ones (e.g. for dashboards built on the old names).
    keep_original: bool = False


class GenAiNormalizeProcessor:
    def __init__(
        self, settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: TracesConsumer
    ) -> None:
        self._keep_original = config.keep_original
        self._next = next_consumer

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        for resource_spans in traces.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self._normalize(span)
        await self._next.consume(traces)

    def _normalize(self, span: Any) -> None:
        keys = frozenset([pair.key for pair in span.attributes])
        if not needs_normalizing(keys, span.name):
            return
        attributes = SpanAttributes(span)
        normalization = Normalization(attributes, span.name, self._keep_original)
        normalize(normalization, keys)
        if not self._keep_original and normalization.consumed:
            attributes.remove(normalization.consumed)


def create_processor(
    settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiNormalizeProcessor(settings, config, next_consumer)


factory = ProcessorFactory(type="genai_normalize", config_type=GenAiNormalizeConfig, create=create_processor)

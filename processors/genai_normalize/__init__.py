"""The ``genai_normalize`` processor: every GenAI dialect onto the current OpenTelemetry GenAI conventions.

Runs at ingest, before anything else reads GenAI attributes, so every later
processor and every query sees one vocabulary (see ``dialects`` for what is
mapped). Source keys a rule consumed are removed unless ``keep_original`` is
set; keys no rule knows are left alone. A span with no key of any GenAI dialect
is recognised by one pass over its key names and passes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector.component import ComponentSettings, Processor, ProcessorFactory, TracesConsumer
from processors.genai_normalize.dialects import needs_normalizing, normalize
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


def create_processor(
    settings: ComponentSettings, config: GenAiNormalizeConfig, next_consumer: TracesConsumer
) -> Processor:
    return GenAiNormalizeProcessor(settings, config, next_consumer)


factory = ProcessorFactory(
    type="genai_normalize", config_type=GenAiNormalizeConfig, create=create_processor, runs_in="worker"
)

"""Pass-rate alerts: a dimension's share of passing evaluation results, per service, below its threshold.

The ``genai_evaluation`` connector emits one ``gen_ai.evaluation.result`` log record per result, with
``genai_collector.evaluation.passed`` when the dimension has a pass threshold. This keeps the last
``window`` pass/fail outcomes of each (dimension, service) and, once ``min_results`` arrived, raises an
alert while the pass rate is below ``min_pass_rate``; the exporter's cooldown keeps it to one per incident.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector import semconv
from collector.pdata import any_value, resource_attribute
from exporters.alerts.config import PassRateSettings

PASSED = semconv.EVALUATION_PASSED
EVALUATION_CATEGORY = "evaluation"
DETECTOR_PREFIX = "evaluation."
UNKNOWN_SERVICE = "unknown_service"


@dataclass(frozen=True)
class LowPassRate:
    """A (dimension, service) whose pass rate is below its threshold, with its latest result's ids."""

    rule: PassRateSettings
    service: str
    rate: float
    results: int
    trace_id: str
    span_id: str
    time_unix_nano: int

    def describe(self) -> str:
        return (
            f"{self.rule.dimension} pass rate {self.rate:.0%} is below {self.rule.min_pass_rate:.0%} "
            f"over the last {self.results} results"
        )


class PassRates:
    """The recent outcomes per (dimension, service); bounded by ``window`` each."""

    def __init__(self, settings: tuple[PassRateSettings, ...]) -> None:
        self._settings = {rule.dimension: rule for rule in settings}
        self._outcomes: dict[tuple[str, str], deque[bool]] = {}

    def observe(self, batches: Iterable[LogsData]) -> list[LowPassRate]:
        """Record the batches' results; each (dimension, service) whose rate is now below its threshold."""
        low: dict[tuple[str, str], LowPassRate] = {}
        for logs in batches:
            for resource_logs in logs.resource_logs:
                name = resource_attribute(resource_logs.resource, semconv.SERVICE_NAME)
                service = str(name) if name is not None else UNKNOWN_SERVICE
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        if record.event_name != semconv.EVALUATION_RESULT_EVENT:
                            continue
                        values = {pair.key: any_value(pair.value) for pair in record.attributes}
                        rule = self._settings.get(str(values.get(semconv.EVALUATION_NAME, "")))
                        passed = values.get(PASSED)
                        if rule is None or not isinstance(passed, bool):
                            continue
                        outcomes = self._outcomes.setdefault((rule.dimension, service), deque(maxlen=rule.window))
                        outcomes.append(passed)
                        rate = sum(outcomes) / len(outcomes)
                        key = (rule.dimension, service)
                        if len(outcomes) >= rule.min_results and rate < rule.min_pass_rate:
                            low[key] = LowPassRate(
                                rule,
                                service,
                                rate,
                                len(outcomes),
                                record.trace_id.hex(),
                                record.span_id.hex(),
                                record.time_unix_nano,
                            )
                        else:
                            low.pop(key, None)
        return list(low.values())

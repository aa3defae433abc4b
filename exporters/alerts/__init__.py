"""The ``alerts`` exporter: chosen findings to a webhook, Slack and PagerDuty, each incident once.

It reads the ``gen_ai.security.finding`` events that ``genai_security`` puts on
spans (and any later processor's findings in the same shape), keeps those at
``min_severity`` or above, and sends one alert per detector per batch to each
destination: a JSON webhook, a Slack incoming webhook, the PagerDuty Events API
v2 (``trigger`` with a dedup key per detector, so PagerDuty groups them too).
In a logs pipeline it reads the ``gen_ai.evaluation.result`` records of the
``genai_evaluation`` connector instead, and alerts when a dimension's pass rate
drops below its ``evaluations`` threshold (``exporters.alerts.evaluations``).
A destination that alerted for a detector stays quiet about that detector for
``cooldown``; what was held back is counted in the next alert. A destination
that fails is retried with the exporter's backoff; the others are not sent again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from opentelemetry.proto.logs.v1.logs_pb2 import LogsData

from collector.component import ComponentSettings, Exporter, ExporterFactory
from collector.errors import RetryableError
from collector.exporterhelper import QueuedExporter
from collector.findings import CATEGORY, CONFIDENCE, DETECTOR, FINDING_EVENT, SEVERITY, SEVERITY_RANK
from collector.pdata import any_value, iter_spans, resource_attribute
from collector.queue import Batch
from exporters.alerts.config import ALERT_QUEUE, AlertsConfig, PagerDutySettings, SlackSettings, WebhookSettings
from exporters.alerts.evaluations import DETECTOR_PREFIX, EVALUATION_CATEGORY, LowPassRate, PassRates

PAGERDUTY_SEVERITY = {"critical": "critical", "high": "error", "medium": "warning", "low": "info"}
SOURCE = "genai-collector"


@dataclass(frozen=True)
class Alert:
    detector: str
    category: str
    severity: str
    confidence: float
    service: str
    span_name: str
    trace_id: str
    span_id: str
    time_unix_nano: int
    count: int = 1  # findings of this detector in the batch

    def summary(self) -> str:
        return f"{self.severity} {self.category} finding ({self.detector}) in {self.service}: {self.span_name}"

    def details(self, held_back: int) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "category": self.category,
            "severity": self.severity,
            "confidence": self.confidence,
            "service": self.service,
            "span_name": self.span_name,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "time_unix_nano": self.time_unix_nano,
            "findings_in_batch": self.count,
            "held_back_since_last_alert": held_back,
        }


def pass_rate_alert(low: LowPassRate) -> Alert:
    """The alert for a dimension whose pass rate is too low; its ids are those of the latest result."""
    return Alert(
        detector=DETECTOR_PREFIX + low.rule.dimension,
        category=EVALUATION_CATEGORY,
        severity=low.rule.severity,
        confidence=1.0,
        service=low.service,
        span_name=low.describe(),
        trace_id=low.trace_id,
        span_id=low.span_id,
        time_unix_nano=low.time_unix_nano,
        count=low.results,
    )


def alerts_in(batch: Batch, min_severity: str, detectors: tuple[str, ...]) -> list[Alert]:
    """One alert per detector: its first finding in the batch, with how many there were."""
    floor = SEVERITY_RANK[min_severity]
    found: dict[str, Alert] = {}
    for resource, _, span in iter_spans(batch.items):
        service_name = resource_attribute(resource, "service.name")
        service = str(service_name) if service_name is not None else "unknown_service"
        for event in span.events:
            if event.name != FINDING_EVENT:
                continue
            values = {pair.key: any_value(pair.value) for pair in event.attributes}
            detector = str(values.get(DETECTOR, ""))
            category = str(values.get(CATEGORY, ""))
            severity = str(values.get(SEVERITY, "low"))
            if SEVERITY_RANK.get(severity, 0) < floor or (detectors and not {detector, category} & set(detectors)):
                continue
            if detector in found:
                previous = found[detector]
                found[detector] = Alert(**{**previous.__dict__, "count": previous.count + 1})
                continue
            found[detector] = Alert(
                detector,
                category,
                severity,
                float(values.get(CONFIDENCE, 0.0)),
                service,
                span.name,
                span.trace_id.hex(),
                span.span_id.hex(),
                event.time_unix_nano,
            )
    return list(found.values())


class Destination:
    """Where alerts go; ``post`` raises on failure."""

    name = ""

    def post(self, client: httpx.Client, alert: Alert, held_back: int) -> None:
        raise NotImplementedError


class Webhook(Destination):
    name = "webhook"

    def __init__(self, settings: WebhookSettings) -> None:
        self._settings = settings

    def post(self, client: httpx.Client, alert: Alert, held_back: int) -> None:
        headers = {key: value.reveal() for key, value in self._settings.headers.items()}
        body = {"source": SOURCE, "summary": alert.summary(), **alert.details(held_back)}
        client.post(self._settings.endpoint, json=body, headers=headers).raise_for_status()


class Slack(Destination):
    name = "slack"

    def __init__(self, settings: SlackSettings) -> None:
        self._settings = settings

    def post(self, client: httpx.Client, alert: Alert, held_back: int) -> None:
        extra = f" ({held_back} more held back since the last alert)" if held_back else ""
        text = f":rotating_light: {alert.summary()}{extra}\ntrace `{alert.trace_id}` span `{alert.span_id}`"
        client.post(self._settings.webhook_url.reveal(), json={"text": text}).raise_for_status()


class PagerDuty(Destination):
    name = "pagerduty"

    def __init__(self, settings: PagerDutySettings) -> None:
        self._settings = settings

    def post(self, client: httpx.Client, alert: Alert, held_back: int) -> None:
        event = {
            "routing_key": self._settings.routing_key.reveal(),
            "event_action": "trigger",
            "dedup_key": f"{SOURCE}/{alert.service}/{alert.detector}",
            "payload": {
                "summary": alert.summary(),
                "source": alert.service,
                "severity": PAGERDUTY_SEVERITY.get(alert.severity, "warning"),
                "component": alert.span_name,
                "class": alert.category,
                "custom_details": alert.details(held_back),
            },
        }
        client.post(self._settings.endpoint, json=event).raise_for_status()


class AlertSender:
    """The blocking part (runs in the exporter's worker thread): cooldowns, then one post per destination."""

    def __init__(self, config: AlertsConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._clock = clock
        self._destinations: list[Destination] = []
        if config.webhook is not None:
            self._destinations.append(Webhook(config.webhook))
        if config.slack is not None:
            self._destinations.append(Slack(config.slack))
        if config.pagerduty is not None:
            self._destinations.append(PagerDuty(config.pagerduty))
        self._last_sent: dict[tuple[str, str], float] = {}
        self._held_back: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._pass_rates = PassRates(config.evaluations)

    def start(self) -> None:
        self._client = httpx.Client(timeout=self._config.timeout, trust_env=False)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, batch: Batch) -> None:
        assert self._client is not None, "the alerts exporter is not started"
        failed: list[str] = []
        if batch.items and isinstance(batch.items[0], LogsData):
            alerts = [pass_rate_alert(low) for low in self._pass_rates.observe(batch.items)]
        else:
            alerts = alerts_in(batch, self._config.min_severity, self._config.detectors)
        for alert in alerts:
            for destination in self._destinations:
                key = (destination.name, alert.detector)
                with self._lock:
                    last = self._last_sent.get(key)
                    if last is not None and self._clock() - last < self._config.cooldown:
                        self._held_back[key] = self._held_back.get(key, 0) + alert.count
                        continue
                    held_back = self._held_back.get(key, 0)
                try:
                    destination.post(self._client, alert, held_back)
                except httpx.HTTPError as exc:
                    # Never the URL or headers: a Slack URL and a routing key are credentials.
                    failed.append(f"{destination.name} ({type(exc).__name__})")
                    continue
                with self._lock:
                    self._last_sent[key] = self._clock()
                    self._held_back[key] = 0
        if failed:
            raise RetryableError(f"alerts not delivered to {', '.join(sorted(set(failed)))}")


def create_exporter(settings: ComponentSettings, config: AlertsConfig) -> Exporter:
    return QueuedExporter(settings, AlertSender(config), ALERT_QUEUE, config.retry_on_failure)


def create_logs_exporter(settings: ComponentSettings, config: AlertsConfig) -> Exporter:
    """Pass-rate alerts from evaluation results (a retried batch may count its results again, as findings do)."""
    return QueuedExporter(settings, AlertSender(config), ALERT_QUEUE, config.retry_on_failure, signal="logs")


factory = ExporterFactory(
    type="alerts", config_type=AlertsConfig, create=create_exporter, create_logs=create_logs_exporter
)

"""Settings of the ``alerts`` exporter: which findings alert, where they go, how often."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from collector.config.types import Duration, Secret
from collector.exporterhelper import BatchSettings, QueueSettings, RetrySettings

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
DEFAULT_COOLDOWN = Duration(600.0)
DEFAULT_TIMEOUT = Duration(5.0)
# Alerts should leave within seconds, not wait for a storage-sized batch.
ALERT_QUEUE = QueueSettings(
    queue_size=10_000, batch=BatchSettings(flush_timeout=Duration(0.5), min_size=1, max_size=1000)
)

Severity = Literal["low", "medium", "high", "critical"]
DEFAULT_PASS_RATE_WINDOW = 100
DEFAULT_PASS_RATE_MIN_RESULTS = 20


def _valid_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


@dataclass(frozen=True)
class WebhookSettings:
    endpoint: str = ""
    headers: dict[str, Secret] = field(default_factory=dict)  # e.g. an Authorization header: never shown

    def validate(self) -> Iterable[tuple[str, str]]:
        if not _valid_url(self.endpoint):
            yield "endpoint", f'expected an http(s) URL, got "{self.endpoint}"'


@dataclass(frozen=True)
class SlackSettings:
    webhook_url: Secret = field(default_factory=lambda: Secret(""))  # the URL is the credential

    def validate(self) -> Iterable[tuple[str, str]]:
        if not _valid_url(self.webhook_url.reveal()):
            yield "webhook_url", "expected the Slack incoming-webhook URL (https://hooks.slack.com/services/...)"


@dataclass(frozen=True)
class PagerDutySettings:
    routing_key: Secret = field(default_factory=lambda: Secret(""))
    endpoint: str = PAGERDUTY_EVENTS_URL

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.routing_key.reveal():
            yield "routing_key", "is required (the integration key of a PagerDuty Events API v2 service)"
        if not _valid_url(self.endpoint):
            yield "endpoint", f'expected an http(s) URL, got "{self.endpoint}"'


@dataclass(frozen=True)
class PassRateSettings:
    """Alert when the share of passing ``gen_ai.evaluation.result`` records of ``dimension`` (per service), over
    its last ``window`` results, drops below ``min_pass_rate``; judged once ``min_results`` arrived."""

    dimension: str = ""
    min_pass_rate: float = 0.0
    window: int = DEFAULT_PASS_RATE_WINDOW
    min_results: int = DEFAULT_PASS_RATE_MIN_RESULTS
    severity: Severity = "high"

    def validate(self) -> Iterable[tuple[str, str]]:
        if not self.dimension:
            yield "dimension", "is required (an evaluation dimension's name)"
        if not 0 < self.min_pass_rate <= 1:
            yield "min_pass_rate", "must be more than 0 and at most 1"
        if self.window < 1:
            yield "window", "must be at least 1"
        if not 1 <= self.min_results <= self.window:
            yield "min_results", "must be at least 1 and at most window"


@dataclass(frozen=True)
class AlertsConfig:
    """Findings at ``min_severity`` or above (of ``detectors``, when listed) go to every destination set;
    in a logs pipeline, evaluation pass rates below their ``evaluations`` threshold do.

    ``cooldown`` is per alert type (the detector, or the dimension) and destination: one incident pages once.
    """

    min_severity: Severity = "high"
    detectors: tuple[str, ...] = ()  # detector ids or categories; empty: all
    cooldown: Duration = DEFAULT_COOLDOWN
    timeout: Duration = DEFAULT_TIMEOUT
    webhook: WebhookSettings | None = None
    slack: SlackSettings | None = None
    pagerduty: PagerDutySettings | None = None
    retry_on_failure: RetrySettings = field(default_factory=RetrySettings)
    evaluations: tuple[PassRateSettings, ...] = ()

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.webhook is None and self.slack is None and self.pagerduty is None:
            yield "", "set at least one destination: webhook, slack or pagerduty"
        if self.cooldown < 0:
            yield "cooldown", "must not be negative"
        if self.timeout <= 0:
            yield "timeout", "must be more than 0"

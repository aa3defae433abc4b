"""What every route of the api extension works with: the settings, the store's tables and runner, the live stream.

One ``ApiContext`` is made when the extension starts (once the store it reads
is known) and handed to every route group; handlers reach it as
``ApiCall.context``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from collector.extensions.api.config import ApiConfig
from collector.extensions.api.generated_metrics import ApiSelfMetrics
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.tables import StoreTables
from collector.telemetry import Telemetry

if TYPE_CHECKING:
    from collector.extensions.api.stream.hub import StreamHub


@dataclass
class ApiContext:
    config: ApiConfig
    runner: QueryRunner
    tables: StoreTables
    telemetry: Telemetry
    logger: logging.Logger
    hub: StreamHub
    host: object = None  # the running Service, for /health
    clock: Callable[[], int] = field(default=time.time_ns)  # Unix nanoseconds; tests pin it
    metrics: ApiSelfMetrics = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.metrics = ApiSelfMetrics(self.telemetry)

    def observe(self, operation: str, seconds: float) -> None:
        """Count one answered request of ``operation`` and the time it took."""
        self.metrics.api_requests.add(1, operation=operation)
        self.metrics.api_request_seconds.add(seconds, operation=operation)

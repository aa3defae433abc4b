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
from collector.extensions.api.query.runner import QueryRunner
from collector.extensions.api.query.tables import StoreTables
from collector.telemetry import Telemetry

if TYPE_CHECKING:
    from collector.extensions.api.stream.hub import StreamHub

REQUESTS_METRIC = "genai_api_requests"
REQUESTS_HELP = "Requests the api extension answered, by operation."
REQUEST_SECONDS_METRIC = "genai_api_request_seconds"
REQUEST_SECONDS_HELP = "Seconds spent answering api requests, by operation (divide by genai_api_requests)."


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

    def observe(self, operation: str, seconds: float) -> None:
        """Count one answered request of ``operation`` and the time it took."""
        self.telemetry.add(REQUESTS_METRIC, 1, REQUESTS_HELP, operation=operation)
        self.telemetry.add(REQUEST_SECONDS_METRIC, seconds, REQUEST_SECONDS_HELP, operation=operation)

"""What an OTLP exporter does with a partial success: count the rejected items, log the server's message.

The request itself was accepted, so the exporterhelper counts it sent; the
items the server rejected are counted in ``otelcol_exporter_rejected_spans``
(``_log_records``, ``_metric_points``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from google.protobuf.message import Message

from collector.receivers.otlp.services import SERVICES
from collector.signals import SIGNAL_KINDS, Signal
from collector.telemetry import BoundCounter


def note_partial_success(
    response: Message,
    server: str,
    redact: Callable[[str], str],
    rejected: BoundCounter,
    logger: logging.Logger,
    signal: Signal = "traces",
) -> None:
    """Count in ``rejected`` and log ``response``'s partial success (of ``signal``'s Export service), if any;
    ``redact`` cleans the server's text."""
    count, text = SERVICES[signal].partial_success(response)
    message = redact(text)
    if count > 0:
        rejected.add(count)
        items = SIGNAL_KINDS[signal].items_text
        logger.warning("%s rejected %d %s of the request: %s", server, count, items, message or "(no reason given)")
    elif message:
        # The specification's way for a server to warn while accepting everything.
        logger.warning("%s accepted the request with a warning: %s", server, message)

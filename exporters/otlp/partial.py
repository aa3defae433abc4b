"""What an OTLP exporter does with a partial success: count the rejected spans, log the server's message.

The request itself was accepted, so the exporterhelper counts it sent; the
spans the server rejected are counted in ``otelcol_exporter_rejected_spans``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from collector.telemetry import BoundCounter


def note_partial_success(
    response: ExportTraceServiceResponse,
    server: str,
    redact: Callable[[str], str],
    rejected: BoundCounter,
    logger: logging.Logger,
) -> None:
    """Count in ``rejected`` and log ``response``'s partial success, if any; ``redact`` cleans the server's text."""
    partial = response.partial_success
    message = redact(partial.error_message)
    if partial.rejected_spans > 0:
        rejected.add(partial.rejected_spans)
        logger.warning(
            "%s rejected %d spans of the request: %s", server, partial.rejected_spans, message or "(no reason given)"
        )
    elif message:
        # The specification's way for a server to warn while accepting everything.
        logger.warning("%s accepted the request with a warning: %s", server, message)

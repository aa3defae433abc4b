"""OTLP/HTTP endpoints (POST /v1/traces, /v1/logs, /v1/metrics) as a Starlette app.

Every signal's path is served by the same handler. Answers as the OTLP
specification says: 200 with the signal's Export response in the request's
encoding (with a partial success naming the spans rejected for a per-span limit);
400 with a google.rpc.Status for a body that cannot be decoded;
413 for a body over the size limit (after decompression) or with too many
messages; 415 for another content type; 405 for another method; 503 with
Retry-After when the pipeline cannot take the data now, or when the listener
already holds its ``admission.request_limit_mib`` of requests; 429 with
Retry-After when the memory limiter asks clients to slow down.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from google.rpc import code_pb2, status_pb2
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector.errors import RETRYABLE_STATUS, ConsumeError, retry_after_header, status_for
from collector.httpserver import RequestBodyTooLarge, read_body, request_share
from collector.listeners.inflight import Overloaded
from collector.receivers.otlp.codec import (
    JSON,
    PROTOBUF,
    SUPPORTED_CONTENT_TYPES,
    BadRequest,
    BodyTooLarge,
    decode,
    decompress,
    encode_message,
)
from collector.receivers.otlp.config import HttpSettings, RequestLimits
from collector.receivers.otlp.ingest import Ingest
from collector.receivers.otlp.limits import check_counts, check_encoded_counts
from collector.receivers.otlp.services import SERVICES
from collector.signals import SIGNAL_KINDS, SIGNALS, OtlpData, Signal

# Decoding a large body takes long enough to stall every other request on the
# event loop; a thread costs ~50 µs, so small bodies decode inline.
DECODE_IN_THREAD_BYTES = 256 * 1024
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def create_app(settings: HttpSettings, *ingests: Ingest) -> Starlette:
    """The Starlette app serving each ingest's signal at its path (``settings.traces_url_path``, ...)."""
    return serving_app(settings, {ingest.signal: ingest for ingest in ingests})


def serving_app(settings: HttpSettings, served: Mapping[Signal, Ingest]) -> Starlette:
    """The Starlette app routing every signal's path; a signal serves once ``served`` holds its ingest (the
    mapping may grow until the first request), else its path answers 404 as an unknown one does."""
    limit = settings.max_request_body_size
    signals = {settings.url_path(signal): signal for signal in SIGNALS}

    async def export(request: Request) -> Response:
        ingest = served.get(signals[request.url.path])
        if ingest is None:
            return Response("Not Found", 404, media_type="text/plain")
        if request.method != "POST":
            return Response("405 method not allowed, supported: [POST]", 405, headers={"Allow": "POST"})
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in SUPPORTED_CONTENT_TYPES:
            return Response(
                f"415 unsupported media type, supported: [{JSON}, {PROTOBUF}]",
                415,
                media_type="text/plain",
            )
        try:
            body = await read_body(request, limit)
            body = decompress(body, request.headers.get("content-encoding", ""), limit)
            # The inflated body is what stays in memory from here on.
            request_share(request).resize(len(body))
            if len(body) > DECODE_IN_THREAD_BYTES:
                data = await asyncio.to_thread(_decode, body, content_type, ingest.limits, ingest.signal)
            else:
                data = _decode(body, content_type, ingest.limits, ingest.signal)
        except ClientDisconnect:
            # Nobody is left to answer; nothing was accepted.
            return Response(status_code=400)
        except Overloaded as exc:
            headers = {"Retry-After": retry_after_header(exc.retry_after)}
            return _status_response(RETRYABLE_STATUS.http_status, code_pb2.UNAVAILABLE, str(exc), content_type, headers)
        except RequestBodyTooLarge as exc:
            message = f"request body exceeds {exc.limit} bytes"
            return _status_response(413, code_pb2.INVALID_ARGUMENT, message, content_type)
        except BodyTooLarge as exc:
            return _status_response(413, code_pb2.INVALID_ARGUMENT, str(exc), content_type)
        except BadRequest as exc:
            return _status_response(400, code_pb2.INVALID_ARGUMENT, str(exc), content_type)
        try:
            rejection = await ingest(data)
        except ConsumeError as exc:
            mapping = status_for(exc)
            headers = {}
            if exc.retryable and exc.retry_after is not None:
                headers["Retry-After"] = retry_after_header(exc.retry_after)
            return _status_response(mapping.http_status, mapping.grpc_code.value[0], str(exc), content_type, headers)
        service = SERVICES[ingest.signal]
        answer = service.answer() if rejection is None else service.answer(rejection.spans, rejection.message)
        return Response(encode_message(answer, content_type), 200, media_type=content_type)

    # Every method routes to the handler, so a wrong one gets OTLP's 405 text.
    return Starlette(routes=[Route(path, export, methods=ANY_METHOD) for path in signals])


def _decode(body: bytes, content_type: str, limits: RequestLimits, signal: Signal) -> OtlpData:
    """The request's data; raises BadRequest, or TooManyMessages (before decoding when it can)."""
    check_encoded_counts(body, content_type, limits, signal)
    data = decode(body, content_type, SIGNAL_KINDS[signal].data_type)
    check_counts(data, limits)
    return data


def _status_response(
    http_status: int, code: int, message: str, content_type: str, headers: dict[str, str] | None = None
) -> Response:
    status = status_pb2.Status(code=code, message=message)
    return Response(encode_message(status, content_type), http_status, headers=headers, media_type=content_type)

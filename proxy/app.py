"""The GenAI proxy: a Starlette app that forwards LLM API calls and records each as a GenAI span.

Per call: read and check the body, authenticate, pick the upstream by model,
forward (retrying only before the first byte, when configured), then relay the
response as it arrives. Streams go through event by event while a tee rebuilds
what they carry; other bodies go through chunk by chunk while a copy is parsed
at the end. The span is finished when the relay ends, however it ends, and
handed to a fail-open span processor: telemetry never delays or fails a call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.propagate import inject
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span, TracerProvider
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from collector import semconv
from collector.inflate import BadRequest, BodyTooLarge, decompress
from collector.keys import KeysFileError
from collector.telemetry import Telemetry
from proxy.apis import Api, gemini
from proxy.apis.anthropic_messages import CountTokens, Messages
from proxy.apis.openai_chat import ChatCompletions
from proxy.apis.openai_completions import Completions
from proxy.apis.openai_embeddings import Embeddings
from proxy.apis.openai_responses import Responses
from proxy.auth import Authenticator, Caller, without_query_key
from proxy.config import ProxyConfig, UpstreamConfig, UpstreamProtocol
from proxy.conversations import ConversationLink, ConversationTracker, History
from proxy.errors import ApiFamily, ProxyError, error_response
from proxy.export import FailOpenSpanProcessor, SpanSink
from proxy.generated_metrics import ProxySelfMetrics
from proxy.guard import StreamCheck, StreamGuard, stop_event
from proxy.headers import client_headers, upstream_headers
from proxy.inbound import family_of, parse_body, read_body, unless_disconnected
from proxy.limits.limiter import QUOTA_CODE, Admission, Clock, Limiter, LimitExceeded, Pricer, rate_limit_headers
from proxy.paths import RefuseUnsafePaths
from proxy.record import CallRecord, provider_error_kind
from proxy.relay import GuardedTee, RelayResponse
from proxy.routing import Router
from proxy.semconv import Dialect, dialect_for
from proxy.spans import Outcome, finish_span, span_name
from proxy.sse import SseSplitter
from proxy.stitching import StreamSigner, TraceIds, mark_reply, strip_markers
from proxy.tenants import TenantHeader
from proxy.tokens import warm_up
from proxy.upstream import UpstreamBroken, UpstreamClient, UpstreamResponse, UpstreamTimeout, upstream_url

INSTRUMENTATION_NAME = "genai_collector.proxy"
SERVICE_NAME = "genai-proxy"
# A non-streamed body is parsed from a copy; beyond this size, before or after inflating, it is relayed unparsed.
MAX_PARSED_BODY_BYTES = 64 * 1024 * 1024
# Bodies up to this size (by Content-Length) are read whole and answered in one piece.
WHOLE_BODY_BYTES = 256 * 1024

API_ROUTES: tuple[tuple[str, Api], ...] = (
    ("/v1/chat/completions", ChatCompletions()),
    ("/v1/completions", Completions()),
    ("/v1/responses", Responses()),
    ("/v1/embeddings", Embeddings()),
    ("/v1/messages", Messages()),
    ("/v1/messages/count_tokens", CountTokens()),
)
# Azure OpenAI speaks OpenAI's bodies on its own paths: per deployment, or (v1) naming the deployment as the model.
AZURE_APIS: tuple[tuple[str, Api], ...] = (
    ("chat/completions", ChatCompletions()),
    ("completions", Completions()),
    ("embeddings", Embeddings()),
    ("responses", Responses()),
)
# Gemini's methods on models/{model}, by the name after the colon.
GEMINI_METHODS: dict[str, Api] = {
    "generateContent": gemini.GenerateContent(stream=False),
    "streamGenerateContent": gemini.GenerateContent(stream=True),
    "countTokens": gemini.CountTokens(),
    "embedContent": gemini.EmbedContent(),
    "batchEmbedContents": gemini.EmbedContent(),
}
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Each protocol's error format (Azure OpenAI answers in OpenAI's).
PROTOCOL_FAMILIES: dict[UpstreamProtocol, ApiFamily] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "azure_openai": "openai",
}


@dataclass(frozen=True)
class Target:
    """What a request's path means: its adapter (None: forwarded untouched) and where it may go.

    ``protocol`` picks the upstreams (None: the request's headers tell, on the paths
    OpenAI and Anthropic share); ``model`` is the name the path gives (Gemini's
    model, Azure's deployment), else the body's ``model`` is routed on.
    """

    api: Api | None
    protocol: UpstreamProtocol | None
    model: str | None = None


@dataclass
class _Call:
    """One call in flight: what the relay needs to finish its span."""

    span: Span
    record: CallRecord
    api: Api | None
    upstream: UpstreamConfig
    caller: Caller
    started: float  # monotonic
    history: History | None = None  # its messages' digests, once worked out (to find or remember its conversation)
    admission: Admission | None = None  # what its limits charged it, settled when it finishes
    finished: bool = False


class ProxyService:
    """The proxy app plus what it owns: the upstream client, the tracer, the span queue."""

    def __init__(
        self,
        config: ProxyConfig,
        sink: SpanSink,
        telemetry: Telemetry,
        logger: logging.Logger,
        dialect: Dialect | None = None,
        resource: Resource | None = None,
        stream_check: StreamCheck | None = None,
        price: Pricer | None = None,
        clock: Clock = time.time,
    ) -> None:
        """``price`` gives a call's USD for budgets (the collector wires genai_cost's prices); ``clock`` the limits'."""
        self._config = config
        # Given by whoever wires the proxy (the collector builds it from the genai_security detectors).
        self._stream_check = stream_check if config.early_stop.enabled else None
        self._requests = ProxySelfMetrics(telemetry).proxy_requests
        self._logger = logger
        self._dialect = dialect or dialect_for(config.semconv)
        self._router = Router(config.upstreams)
        self.auth = Authenticator(config.auth, logger)
        self._tenant_header = TenantHeader(config.auth, telemetry, logger)
        self.limits = Limiter(config.limits, telemetry, logger, price, clock)
        self._conversations = ConversationTracker(config.conversations.ttl, config.conversations.max_entries)
        self._spans = FailOpenSpanProcessor(sink, config.span_queue_size, telemetry, logger)
        provider = TracerProvider(resource=resource or Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(self._spans)
        self._tracer = provider.get_tracer(INSTRUMENTATION_NAME)
        self._propagator = TraceContextTextMapPropagator()
        self._upstream = UpstreamClient(config.timeouts, config.retry)
        # Paths are checked before routing: a refused one never reaches authentication or an upstream.
        refuse_unsafe_paths = Middleware(RefuseUnsafePaths, refuse=self._refuse_path)
        self.app = Starlette(routes=self._routes(), middleware=[refuse_unsafe_paths])

    async def start(self) -> None:
        self._upstream.start()
        self._spans.start()
        await asyncio.to_thread(warm_up)

    async def stop(self) -> None:
        await self._upstream.close()
        await self.limits.close()
        await self._spans.stop()

    def _routes(self) -> list[Route]:
        routes = [Route(path, self._endpoint(Target(api, api.family)), methods=["POST"]) for path, api in API_ROUTES]
        for suffix, api in AZURE_APIS:
            routes.append(Route(f"/openai/deployments/{{deployment}}/{suffix}", self._azure(api), methods=["POST"]))
            routes.append(Route(f"/openai/v1/{suffix}", self._endpoint(Target(api, "azure_openai")), methods=["POST"]))
        routes.append(Route("/openai/responses", self._endpoint(Target(Responses(), "azure_openai")), methods=["POST"]))
        routes.append(Route("/openai/{rest:path}", self._endpoint(Target(None, "azure_openai")), methods=ANY_METHOD))
        for version in gemini.API_VERSIONS:
            routes.append(Route(f"/{version}/models/{{target}}", self._gemini, methods=["POST"]))
        for prefix in ("", "/upload"):
            for version in gemini.OWN_API_VERSIONS:
                gemini_rest = self._endpoint(Target(None, "gemini"))
                routes.append(Route(f"{prefix}/{version}/{{rest:path}}", gemini_rest, methods=ANY_METHOD))
        # Everything else under an API's prefix goes through untouched: the proxy never invents a 404 there.
        routes.append(Route("/v1/{rest:path}", self._endpoint(Target(None, None)), methods=ANY_METHOD))
        # Nothing else is forwarded; the answer is still in the format the client's SDK parses.
        routes.append(Route("/{rest:path}", self._not_forwarded, methods=ANY_METHOD))
        return routes

    async def _refuse_path(self, request: Request, problem: str) -> Response:
        self._count(None, None, "400")
        return error_response(family_of(request), 400, f"{problem}; the proxy does not forward it")

    async def _not_forwarded(self, request: Request) -> Response:
        self._count(None, None, "404")
        message = (
            "the proxy forwards paths under /v1 (OpenAI, Anthropic), /openai (Azure OpenAI) and /v1beta (Gemini) "
            f"only, not {request.method} {request.url.path}"
        )
        return error_response(family_of(request), 404, message)

    def _endpoint(self, target: Target) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(request, target)

        return endpoint

    def _azure(self, api: Api) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await self._handle(request, Target(api, "azure_openai", request.path_params["deployment"]))

        return endpoint

    async def _gemini(self, request: Request) -> Response:
        """``models/{model}:{method}``: the method picks the adapter; one the proxy does not read goes through."""
        named = gemini.model_of_path(request.path_params["target"])
        if named is None:  # no method: forwarded, and under /v1 as any other path there (the headers tell whose)
            own = request.url.path.split("/")[1] in gemini.OWN_API_VERSIONS
            return await self._handle(request, Target(None, "gemini" if own else None))
        model, method = named
        return await self._handle(request, Target(GEMINI_METHODS.get(method), "gemini", model))

    async def _handle(self, request: Request, target: Target) -> Response:
        started_ns, started = time.time_ns(), time.monotonic()
        api = target.api
        protocol: UpstreamProtocol = target.protocol or family_of(request)
        family = PROTOCOL_FAMILIES[protocol]
        try:
            body = await read_body(request, self._config.max_request_body_size)
            caller = self.auth.authenticate(request.headers, request.scope.get("query_string", b""))
            if not caller.managed and self._tenant_header.name:
                caller = self._header_tenant(request, caller)
            document = parse_body(body, required=api is not None)
            name = target.model or (document.get("model") if isinstance(document.get("model"), str) else None)
            upstream = self._route(protocol, name, passthrough=api is None)
            model = upstream.model_of(name)
        except ClientDisconnect:
            return Response(status_code=499)
        except ProxyError as exc:
            self._count(api, None, str(exc.status))
            return exc.response(family)
        except KeysFileError:  # logged by the authenticator, once per change
            self._count(api, None, "500")
            return error_response(family, 500, "the proxy cannot read its keys file; see its log")

        stripped, marked = (None, None)
        if api is not None and self._marks_replies:
            stripped, marked = strip_markers(api.name, document)
            document = stripped or document
        record = self._new_record(api, upstream, model, document)
        link, history = self._continued_conversation(api, record, caller, upstream, document, marked)
        span = self._start_span(request, api, record, upstream, caller, link, started_ns)
        call = _Call(span, record, api, upstream, caller, started, history)
        try:
            try:
                call.admission = await self.limits.admit(caller, record)
            except LimitExceeded as refused:
                self._finish(call, Outcome(error_type=refused.code, error_message=str(refused)))
                return _refusal(family, refused)
            response = await self._forward(request, call, body, document, stripped)
            if call.admission is not None:
                _set_limit_headers(response, call.admission)
            return response
        except asyncio.CancelledError:
            self._finish(call, Outcome(error_type="cancelled", error_message="the proxy stopped before a reply"))
            raise
        except Exception as exc:  # a bug of ours must not cost the call its answer or its span
            self._logger.exception("proxying a %s call failed", api.name if api else request.url.path)
            self._finish(call, Outcome(error_type=type(exc).__name__, error_message="the proxy failed"))
            return error_response(family, 500, f"the proxy failed ({type(exc).__name__}); see its log")

    async def _forward(
        self, request: Request, call: _Call, body: bytes, document: dict[str, Any], stripped: dict[str, Any] | None
    ) -> Response:
        api, upstream, span = call.api, call.upstream, call.span
        headers = upstream_headers(request.headers.raw, upstream, call.caller)
        if self._tenant_header.name:  # the proxy's own header goes no further: providers need no tenant names
            headers = [(k, v) for k, v in headers if k.lower() != self._tenant_header.raw_name]
        carrier: dict[str, str] = {}
        inject(carrier, context=trace.set_span_in_context(span))
        headers.extend((k.encode(), v.encode()) for k, v in carrier.items())
        changed = (api.upstream_body(document) if api else None) or stripped
        # ASCII escapes keep any text (lone surrogates included) valid JSON in valid UTF-8.
        content = body if changed is None else json.dumps(changed).encode()
        raw_path = request.scope.get("raw_path") or request.url.path.encode()
        query = request.scope.get("query_string", b"")
        if call.caller.managed:  # the proxy key a Gemini client may send as ?key= goes no further
            query = without_query_key(query)
        try:
            url = upstream_url(upstream, raw_path, query)
            upstream_response = await unless_disconnected(
                request, self._upstream.send(request.method, url, headers, content)
            )
        except ProxyError as exc:
            self._finish(call, Outcome(status_code=None, error_type=str(exc.status), error_message=exc.message))
            return exc.response(PROTOCOL_FAMILIES[upstream.protocol])
        except ClientDisconnect:
            self._finish(call, Outcome(error_type="cancelled", error_message="the client disconnected before a reply"))
            return Response(status_code=499)
        return await self._relay(request, call, upstream_response, document)

    def _header_tenant(self, request: Request, caller: Caller) -> Caller:
        """A pass-through caller with the tenant its trusted tenant header names (else as it was)."""
        host = request.client.host if request.client else None
        tenant = self._tenant_header.tenant(request.headers.get(self._tenant_header.name), host)
        return caller if tenant is None else replace(caller, tenant=tenant)

    def _route(self, protocol: UpstreamProtocol, model: str | None, passthrough: bool) -> UpstreamConfig:
        """The upstream for the call; a pass-through path naming an unknown model goes to the protocol's first."""
        try:
            return self._router.for_model(protocol, model)
        except ProxyError:
            if not passthrough:
                raise
            return self._router.for_model(protocol, None)

    @property
    def _marks_replies(self) -> bool:
        settings = self._config.conversations
        return settings.invisible_signature or settings.tool_call_trace_id

    def _new_record(
        self, api: Api | None, upstream: UpstreamConfig, model: str | None, document: dict[str, Any]
    ) -> CallRecord:
        record = CallRecord(
            operation=api.operation if api else "",
            provider=upstream.provider_name,
            dialect=self._dialect,
            capture_content=self._config.capture_content,
            request_model=model,
            stream=document.get("stream") is True,
        )
        if api is not None:
            try:
                api.describe_request(document, record)
            except Exception:  # a body of unexpected shape must not fail the call
                self._logger.debug("could not read the %s request", api.name, exc_info=True)
        return record

    def _continued_conversation(
        self,
        api: Api | None,
        record: CallRecord,
        caller: Caller,
        upstream: UpstreamConfig,
        document: dict[str, Any],
        marked: TraceIds | None,
    ) -> tuple[ConversationLink | None, History | None]:
        """The earlier call this one continues (named by a marker, a previous response, or its history).

        With it, the call's history as digests, when they were worked out to find it.
        """
        if api is None or not self._config.conversations.enabled:
            return None, None
        tracker, scope = self._conversations, _scope(caller, upstream)
        if marked is not None:
            # Only a trace this caller's calls made: a marker copied from someone else's reply joins nothing.
            conversation = tracker.conversation_of(scope, marked.trace_id)
            if conversation is not None:
                return ConversationLink(marked.trace_id, marked.span_id, conversation), None
        previous = document.get("previous_response_id")
        if isinstance(previous, str) and (link := tracker.find_response(scope, previous)) is not None:
            return link, None
        if not record.input_messages:
            return None, None
        history = History(scope, _history(record))
        return tracker.find(history), history

    def _start_span(
        self,
        request: Request,
        api: Api | None,
        record: CallRecord,
        upstream: UpstreamConfig,
        caller: Caller,
        link: ConversationLink | None,
        started_ns: int,
    ) -> Span:
        parent = self._propagator.extract(request.headers)
        if not trace.get_current_span(parent).get_span_context().is_valid and link is not None:
            parent = _context_of(link)
        url = urlsplit(upstream.base_url)
        attributes: dict[str, Any] = {
            semconv.PROVIDER_NAME: record.provider,
            semconv.SERVER_ADDRESS: url.hostname or "",
            semconv.SERVER_PORT: url.port or (443 if url.scheme == "https" else 80),
            semconv.PROXY_UPSTREAM: upstream.name,
        }
        if api is not None:
            attributes[semconv.OPERATION_NAME] = record.operation
            name = span_name(record.operation, record.request_model)
        else:
            attributes[semconv.HTTP_REQUEST_METHOD] = request.method
            attributes[semconv.URL_PATH] = request.url.path
            name = f"{request.method} {request.url.path}"
        if record.request_model:
            attributes[semconv.REQUEST_MODEL] = record.request_model
        if record.stream:
            attributes[semconv.REQUEST_STREAM] = True
        if caller.tenant is not None:
            attributes[semconv.TENANT_ID] = caller.tenant
        if api is not None and record.input_messages is not None:
            conversation = link.conversation_id if link else uuid.uuid4().hex
            attributes[semconv.CONVERSATION_ID] = conversation
        span = self._tracer.start_span(
            name, context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=started_ns
        )
        return span  # type: ignore[return-value]

    async def _relay(
        self, request: Request, call: _Call, response: UpstreamResponse, document: dict[str, Any]
    ) -> Response:
        """Send the upstream's answer on: streams event by event, small bodies whole, large ones chunk by chunk."""
        encoded = response.header("content-encoding", "identity").lower() not in ("identity", "")
        is_stream = response.header("content-type").startswith("text/event-stream")
        success = 200 <= response.status < 300
        if success and call.api is not None and is_stream and not encoded:
            tee = GuardedTee(call.api.stream_tee(document, call.record), self._signer(call), self._logger)
            # The tee may hold an event back (the usage chunk the client did not ask for): no fixed length.
            headers = client_headers(response.raw_headers, frozenset({b"content-length"}))
            return self._streaming(call, response, self._relay_chunks(call, response, tee, False), headers)
        length = response.header("content-length")
        small = length.isdigit() and int(length) <= WHOLE_BODY_BYTES
        marks = self._marks_replies and success and call.api is not None and not is_stream
        if not is_stream and (small or marks):
            return await self._relay_whole(request, call, response, marks)
        parse = call.api is not None and not is_stream
        relay = self._relay_chunks(call, response, None, parse)
        return self._streaming(call, response, relay, client_headers(response.raw_headers))

    def _streaming(
        self, call: _Call, response: UpstreamResponse, relay: AsyncIterator[bytes], headers: list[tuple[bytes, bytes]]
    ) -> Response:
        def abandoned() -> None:
            # The client left before the relay began (or the relay never ran): nothing else will clean up.
            if not call.finished:
                response.abort()
                self._finish(call, Outcome(error_type="cancelled", error_message="the client disconnected"))

        outgoing = RelayResponse(relay, response.status, abandoned)
        outgoing.raw_headers = headers
        return outgoing

    async def _relay_whole(self, request: Request, call: _Call, response: UpstreamResponse, mark: bool) -> Response:
        """Read a small (or to-be-marked) body whole, then answer in one piece: cheaper than streaming it."""
        outcome = Outcome(status_code=response.status)
        family = PROTOCOL_FAMILIES[call.upstream.protocol]
        try:
            body = await unless_disconnected(request, response.read())
        except UpstreamTimeout:
            response.abort()
            self._finish(call, Outcome(error_type="timeout", error_message="the upstream stalled mid-response"))
            return error_response(family, 504, "the upstream stalled mid-response")
        except UpstreamBroken as exc:
            response.abort()
            self._finish(call, Outcome(error_type="upstream_disconnected", error_message=str(exc)))
            return error_response(family, 502, "the upstream closed the connection mid-response")
        except ClientDisconnect:
            response.abort()
            self._finish(call, Outcome(error_type="cancelled", error_message="the client disconnected"))
            return Response(status_code=499)
        response.release()
        if response.status >= 400:
            outcome.error_type = str(response.status)
        self._read_copy(call, body, response.header("content-encoding"), outcome)
        headers = client_headers(response.raw_headers)
        if mark and call.api is not None and outcome.error_type is None:
            marked = self._marked(call, body)
            if marked is not None:
                body = marked
                headers = client_headers(response.raw_headers, frozenset({b"content-length", b"content-encoding"}))
                headers.append((b"content-length", str(len(body)).encode()))
        self._finish(call, outcome)
        outgoing = Response(body, response.status)
        outgoing.raw_headers = headers
        return outgoing

    def _marked(self, call: _Call, body: bytes) -> bytes | None:
        """The reply with the opt-in trace markers added, or None when there was nothing to mark."""
        assert call.api is not None
        try:
            document = json.loads(body)
        except ValueError:
            return None
        context = call.span.get_span_context()
        settings = self._config.conversations
        ids = TraceIds(context.trace_id, context.span_id)
        if not mark_reply(call.api.name, document, ids, settings.invisible_signature, settings.tool_call_trace_id):
            return None
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    async def _relay_chunks(
        self, call: _Call, response: UpstreamResponse, tee: GuardedTee | None, parse: bool
    ) -> AsyncIterator[bytes]:
        """The body as it arrives: through the tee for streams, else as is (a copy kept when ``parse``)."""
        outcome = Outcome(status_code=response.status)
        if response.status >= 400:
            outcome.error_type = str(response.status)
        splitter = SseSplitter() if tee is not None else None
        guard = StreamGuard(self._stream_check, call.record) if tee is not None and self._stream_check else None
        copy: list[bytes] | None = [] if parse or response.status >= 400 else None
        copied = 0
        first_chunk: float | None = None
        last_chunk: float | None = None
        complete = False
        try:
            async for chunk in response.chunks():
                now = time.monotonic()
                if first_chunk is None:
                    first_chunk = now
                    outcome.time_to_first_chunk = now - call.started
                last_chunk = now
                if splitter is not None and tee is not None:
                    out = tee.forward(splitter.feed(chunk))
                    found = guard.finding() if guard is not None else None
                    if found is not None and call.api is not None:
                        # Not what completed the finding: the client gets the stop, and the upstream is closed.
                        call.record.set(semconv.EARLY_STOP_DETECTOR, found)
                        outcome.error_type, outcome.error_message = "early_stop", f"stopped: {found}"
                        yield stop_event(call.api.name, found)
                        return
                    if out:
                        yield out
                    continue
                if copy is not None:
                    copied += len(chunk)
                    if copied <= MAX_PARSED_BODY_BYTES:
                        copy.append(chunk)
                    else:  # the client still gets every byte; only the span's reading is given up
                        copy = None
                        call.record.set(semconv.PROXY_RESPONSE_NOT_PARSED, semconv.NOT_PARSED_TOO_LARGE)
                yield chunk
            complete = True
            if splitter is not None and tee is not None and (last := tee.forward(splitter.finish())):
                yield last
            if splitter is not None and (rest := splitter.rest()):
                yield rest
            if copy is not None and copied:
                self._read_copy(call, b"".join(copy), response.header("content-encoding"), outcome)
        except UpstreamTimeout as exc:
            outcome.error_type, outcome.error_message = "timeout", str(exc)
        except UpstreamBroken as exc:
            outcome.error_type, outcome.error_message = "upstream_disconnected", str(exc)
        except (asyncio.CancelledError, GeneratorExit):
            outcome.error_type, outcome.error_message = "cancelled", "the client disconnected"
            raise
        finally:
            if first_chunk is not None and last_chunk is not None:
                outcome.streamed_seconds = last_chunk - first_chunk
            if not call.finished:
                if complete:
                    response.release()
                else:
                    response.abort()  # the upstream sees its connection close at once
            self._finish(call, outcome)

    def _read_copy(self, call: _Call, body: bytes, encoding: str, outcome: Outcome) -> None:
        """Read the reply's copy into the span; one that inflates past the parse limit is given up, and says so."""
        try:
            body = decompress(body, encoding, MAX_PARSED_BODY_BYTES)
        except BodyTooLarge:
            call.record.set(semconv.PROXY_RESPONSE_NOT_PARSED, semconv.NOT_PARSED_TOO_LARGE)
            return
        except BadRequest:  # an encoding the inflater does not take (br, zstd), or a corrupt body
            call.record.set(semconv.PROXY_RESPONSE_NOT_PARSED, semconv.NOT_PARSED_UNDECODABLE)
            return
        try:
            document = json.loads(body)
        except ValueError:
            return
        if outcome.error_type is not None:
            outcome.error_message = provider_error_kind(document) or outcome.error_type
            return
        if call.api is not None:
            try:
                call.api.read_response(document, call.record)
            except Exception:
                self._logger.debug("could not read the %s response", call.api.name, exc_info=True)

    def _signer(self, call: _Call) -> StreamSigner | None:
        if call.api is None or not self._config.conversations.invisible_signature:
            return None
        context = call.span.get_span_context()
        return StreamSigner(call.api.name, TraceIds(context.trace_id, context.span_id))

    def _finish(self, call: _Call, outcome: Outcome) -> None:
        """End the span (always, once) and remember the conversation; never raises into the relay."""
        if call.finished:
            return
        call.finished = True
        record = call.record
        try:
            finish_span(call.span, record, outcome, call.api.finish_reason_map() if call.api else {})
            response_model = record.attributes.get(semconv.RESPONSE_MODEL)
            if call.api is not None and record.request_model is None and isinstance(response_model, str):
                # An Azure deployment not mapped to a model: the name the conventions give it comes with the reply.
                call.span.update_name(span_name(record.operation, response_model))
        except Exception:  # what the span could not take is lost, the span itself is not
            self._logger.exception("could not describe a proxied call on its span")
        if call.admission is not None:  # settled with the usage the span shows (estimated when none came)
            model = record.attributes.get(semconv.RESPONSE_MODEL) or record.request_model
            self.limits.settle(call.admission, record, record.provider, model if isinstance(model, str) else None)
        call.span.end()
        code = outcome.error_type or str(outcome.status_code)
        self._count(call.api, call.upstream, code)
        if call.api is None or not self._config.conversations.enabled or outcome.error_type is not None:
            return
        try:
            self._remember(call)
        except Exception:
            self._logger.exception("could not remember a proxied conversation")

    def _remember(self, call: _Call) -> None:
        record, context = call.record, call.span.get_span_context()
        conversation = (call.span.attributes or {}).get(semconv.CONVERSATION_ID)
        if not isinstance(conversation, str):
            return
        link = ConversationLink(context.trace_id, context.span_id, conversation)
        scope = _scope(call.caller, call.upstream)
        self._conversations.remember_trace(scope, link)
        response_id = record.attributes.get(semconv.RESPONSE_ID)
        if call.api is not None and call.api.name == "responses" and isinstance(response_id, str):
            self._conversations.remember_response(scope, response_id, link)
        if record.input_messages and record.choices:
            history = call.history or History(scope, _history(record))
            self._conversations.remember(history, record.output_messages({})[0], link)

    def _count(self, api: Api | None, upstream: UpstreamConfig | None, code: str) -> None:
        self._requests.add(1, api=api.name if api else "other", upstream=upstream.name if upstream else "", code=code)


def _refusal(family: ApiFamily, refused: LimitExceeded) -> Response:
    """A 429 in the caller's provider format, with Retry-After and the x-ratelimit-* headers."""
    response = ProxyError(429, str(refused), refused.code, refused.retry_after).response(family)
    response.raw_headers.extend(rate_limit_headers(refused.decision))
    if refused.code == QUOTA_CODE:  # a spent budget comes back in hours: the SDKs' quick retries are no use
        response.raw_headers.append((b"x-should-retry", b"false"))
    return response


def _set_limit_headers(response: Response, admission: Admission) -> None:
    """The call's x-ratelimit-* headers, in place of any of the same names the upstream sent."""
    ours = rate_limit_headers(admission.decision)
    if ours:
        names = {name for name, _ in ours}
        response.raw_headers = [(k, v) for k, v in response.raw_headers if k.lower() not in names] + ours


def _scope(caller: Caller, upstream: UpstreamConfig) -> str:
    return f"{caller.credential_hash}/{upstream.name}"


def _history(record: CallRecord) -> list[dict[str, Any]]:
    """What a conversation is compared on: the system instructions (if separate) and the messages."""
    history: list[dict[str, Any]] = []
    if record.system_instructions:
        history.append({"role": "system", "parts": record.system_instructions})
    history.extend(record.input_messages or [])
    return history


def _context_of(link: ConversationLink) -> Context:
    parent = SpanContext(link.trace_id, link.span_id, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))
    return trace.set_span_in_context(NonRecordingSpan(parent))

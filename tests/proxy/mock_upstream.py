"""A deterministic stand-in for the OpenAI and Anthropic HTTP APIs, for testing the LLM proxy.

The official ``openai`` and ``anthropic`` SDKs work against it unchanged, streaming and not. Proxy tests point a
client at the proxy, the proxy at this mock, and compare what arrives through the proxy with what the mock sends
directly, byte for byte; so every answer depends only on the request: fixed ids, a fixed ``created`` time, reply
text and token counts computed from the request text, and no ``date``/``server`` headers.

The wire formats follow captures of the real services (field order, compact JSON with raw UTF-8, ``event:`` lines
for Anthropic and the Responses API, ``data: [DONE]`` for Chat Completions and legacy Completions, Anthropic's
``{"type": "ping"}`` with its odd space, OpenAI's ``obfuscation`` padding made deterministic).

A request picks a behaviour with the ``x-mock-scenario`` header (the SDKs send it through ``extra_headers``);
several may be combined with commas. See ``SCENARIOS``.

Usage::

    mock = MockUpstream(openai_key="sk-test")
    with serve(mock) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="sk-test")
        ...
    assert mock.requests[0].path == "/v1/chat/completions"
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

__all__ = [
    "ANTHROPIC_MESSAGE_ID",
    "CALL_ID",
    "CHAT_COMPLETION_ID",
    "COMPLETION_ID",
    "CREATED",
    "RESPONSE_ID",
    "SCENARIOS",
    "SCENARIO_HEADER",
    "TOOL_USE_ID",
    "MockUpstream",
    "RecordedRequest",
    "count_tokens",
    "create_app",
    "pieces",
    "reply_text",
    "serve",
]

Json = dict[str, Any]
Provider = Literal["openai", "anthropic"]

# Fixed identity of every answer, so two runs of the same request give the same bytes.
CREATED = 1_700_000_000
CHAT_COMPLETION_ID = "chatcmpl-mock-1"
COMPLETION_ID = "cmpl-mock-1"
RESPONSE_ID = "resp_mock_1"
RESPONSE_MESSAGE_ID = "msg_mock_1"
RESPONSE_FUNCTION_CALL_ID = "fc_mock_1"
CALL_ID = "call_mock_1"
ANTHROPIC_MESSAGE_ID = "msg_mock_1"
TOOL_USE_ID = "toolu_mock_1"
REQUEST_ID = "req_mock_1"
SYSTEM_FINGERPRINT = "fp_mock"

SCENARIO_HEADER = "x-mock-scenario"
SCENARIOS: dict[str, str] = {
    "no_usage": "act like an OpenAI-compatible server that ignores stream_options: no usage anywhere (OpenAI paths)",
    "error_400": "answer 400 in the provider's error format",
    "error_429": "answer 429 in the provider's error format, with retry-after: 1",
    "error_500": "answer 500 in the provider's error format",
    "error_then_ok": "the first request to a path with this scenario gets 503, later ones succeed",
    "slow": "pause slow_seconds (0.2 s) between stream pieces; non-streaming, before the answer",
    "stall": "send the first stream piece (non-streaming: the headers) then wait up to stall_seconds (30 s)",
    "stall_headers": "wait up to stall_seconds (30 s) before sending any response headers",
    "stream_error": "after two stream pieces send the provider's in-stream error event and end the stream",
    "drop": "send the first stream piece (non-streaming: half the body) then close the connection",
    "cached": "report half the prompt as read from the prompt cache",
    "reasoning": "report 16 reasoning tokens on top of the visible output (OpenAI paths)",
    "tool_loop": "call the first offered tool on every turn, also after tool results, as a looping agent's model does;"
    " each call gets a new id (call_mock_N, fc_mock_N, toolu_mock_N: N = the tool calls already in the request + 1)",
    "gzip": "send a non-streaming answer gzip-compressed, with content-encoding: gzip (as the real APIs do on request)",
    "gzip_bomb": "send a non-streaming answer gzip-compressed and followed by whitespace (still valid JSON) so that it"
    " inflates to gzip_bomb_bytes (80 MiB) from about 80 KiB",
    "chunked": "send a non-streaming answer without content-length, in chunked transfer encoding",
    "args_from_prompt": "a tool's argument is the last name in the last user message: a capitalised word followed by"
    " '?', '.', ',', ' and' or ' or' ('What is the weather in Rome?' gives {city: Rome}; Paris when there is none),"
    " and tool call ids count up through the conversation as tool_loop's do",
    "parallel_tools": "ask for the first offered tool once per name in the last user message (up to 4), in one reply,"
    " as parallel tool calls (OpenAI paths; implies args_from_prompt)",
    "retry_on_error": "after a tool result that says Did you mean 'X'?, call the same tool again with X, as a model"
    " correcting its arguments does (implies args_from_prompt)",
}
# At most this many parallel tool calls in one reply (parallel_tools).
PARALLEL_TOOL_LIMIT = 4
# What args_from_prompt picks when the user names nothing.
DEFAULT_ARGUMENT = "Paris"

OPENAI_HEADERS: tuple[tuple[str, str], ...] = (
    ("openai-organization", "org-mock"),
    ("openai-processing-ms", "1"),
    ("openai-version", "2020-10-01"),
    ("x-request-id", REQUEST_ID),
)
ANTHROPIC_HEADERS: tuple[tuple[str, str], ...] = (
    ("anthropic-organization-id", "org-mock"),
    ("request-id", REQUEST_ID),
)
JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"

OPENAI_MODELS: tuple[tuple[str, int], ...] = (
    ("gpt-4o-mini", 1721172741),
    ("gpt-4o", 1715367049),
    ("text-embedding-3-small", 1705948997),
)
ANTHROPIC_MODELS: tuple[tuple[str, str, str], ...] = (
    ("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
    ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"),
)

# Word-or-punctuation pieces stand in for tokens: a stream sends one piece per chunk, so the number of content
# chunks equals completion_tokens, as it roughly does on the real API.
_PIECE = re.compile(r"\s*(?:\w+|[^\w\s])|\s+")
_TOKEN = re.compile(r"\w+|[^\w\s]")
# Strings under these keys are structure, not text a model would read.
_STRUCTURAL_KEYS = frozenset(
    {"role", "type", "id", "tool_call_id", "tool_use_id", "call_id", "cache_control", "status", "detail", "format"}
)
_OBFUSCATION_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_POLL = 0.05  # how often a pause looks for a departed client or a closing server


# --------------------------------------------------------------------------------------------------------------------
# Recording


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the mock received it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "
    body: bytes
    raw_target: bytes = b""  # the path and query exactly as they came on the request line

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)

    @property
    def scenarios(self) -> frozenset[str]:
        """The scenario names in the ``x-mock-scenario`` header."""
        raw = self.headers.get(SCENARIO_HEADER, "")
        return frozenset(part.strip() for part in raw.split(",") if part.strip())


class MockUpstream:
    """State shared between the mock server (its own thread) and the test: what arrived, and the settings.

    ``requests`` and ``disconnects`` are written by the server thread under a lock; read them after the client
    call returned, or wait on ``disconnected`` (a ``threading.Event``, set at every client disconnect).
    """

    def __init__(
        self,
        *,
        openai_key: str | None = None,
        anthropic_key: str | None = None,
        slow_seconds: float = 0.2,
        stall_seconds: float = 30.0,
        gzip_bomb_bytes: int = 80 * 1024 * 1024,
    ) -> None:
        self.openai_key = openai_key
        self.gzip_bomb_bytes = gzip_bomb_bytes
        self.anthropic_key = anthropic_key
        self.slow_seconds = slow_seconds
        self.stall_seconds = stall_seconds
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.disconnected = threading.Event()
        self._lock = threading.Lock()
        self._failed_once: set[str] = set()  # paths that already had their error_then_ok failure
        # Set while the server shuts down, so stalled answers end at once instead of holding shutdown up.
        self.closing = threading.Event()

    def wait_for_disconnect(self, timeout: float = 5.0) -> bool:
        """True once a client has left before its answer was complete (bounded wait)."""
        return self.disconnected.wait(timeout)

    def requests_to(self, path: str) -> list[RecordedRequest]:
        """The recorded requests for one path, in arrival order."""
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def reset(self) -> None:
        """Forget recorded requests, disconnects and error_then_ok state."""
        with self._lock:
            self.requests.clear()
            self.disconnects = 0
            self._failed_once.clear()
            self.disconnected.clear()

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def _record_disconnect(self) -> None:
        with self._lock:
            self.disconnects += 1
        self.disconnected.set()

    def _first_failure(self, path: str) -> bool:
        with self._lock:
            if path in self._failed_once:
                return False
            self._failed_once.add(path)
            return True


# --------------------------------------------------------------------------------------------------------------------
# Wire helpers


def _dumps(value: Any) -> str:
    # Compact and raw UTF-8, as both services send it.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _data(value: Any) -> bytes:
    return f"data: {_dumps(value)}\n\n".encode()


def _event(name: str, value: Any) -> bytes:
    return f"event: {name}\ndata: {_dumps(value)}\n\n".encode()


DONE = b"data: [DONE]\n\n"
# Anthropic really sends the ping payload with a space after the colon, unlike every other event.
ANTHROPIC_PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def _obfuscation(seed: str) -> str:
    """Stand-in for OpenAI's random stream padding: same length range, but derived from the chunk."""
    digest = hashlib.sha256(seed.encode()).digest()
    length = 1 + digest[0] % 15
    return "".join(_OBFUSCATION_ALPHABET[b % len(_OBFUSCATION_ALPHABET)] for b in digest[1 : 1 + length])


def pieces(text: str) -> list[str]:
    """``text`` cut into token-like pieces (leading whitespace kept) that join back to it."""
    return _PIECE.findall(text)


def count_tokens(text: str) -> int:
    """The mock's token count of ``text``: words and punctuation marks."""
    return len(_TOKEN.findall(text))


def _strings(value: Any, key: str = "") -> Iterator[str]:
    if key in _STRUCTURAL_KEYS:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, str(k))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, key)


def _prompt_tokens(parts: Iterable[Any], turns: int) -> int:
    """Tokens of every text in the prompt, plus a few per turn as the real chat formats add."""
    return sum(count_tokens(s) for part in parts for s in _strings(part)) + 3 * turns + 3


def reply_text(user_text: str | None, after_tool: bool = False) -> str:
    """The assistant's answer to the last user text (or tool result)."""
    # Stripped again after the cut, so the reply never ends in whitespace (its pieces then equal its tokens).
    snippet = (user_text or "").strip()[:40].rstrip() or "nothing"
    return f"Thanks! The tool said: {snippet}" if after_tool else f"Hello! You said: {snippet}"


def _choice_text(text: str, index: int) -> str:
    # Choices beyond the first differ, as sampled choices would.
    return text if index == 0 else f"{text} [{index}]"


def _split_json(arguments: str) -> list[str]:
    # OpenAI streams {"city":"Paris"} as {" / city / ":" / Paris / "}.
    return re.findall(r"\w+|\W+", arguments)


def _split_every(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --------------------------------------------------------------------------------------------------------------------
# What the model "decides"


@dataclass(frozen=True)
class _ToolCall:
    name: str
    arguments: Json
    number: int = 1  # the call's place in the conversation; only "tool_loop" makes more than one

    @property
    def compact(self) -> str:
        return _dumps(self.arguments)

    @property
    def call_id(self) -> str:
        return _numbered(CALL_ID, self.number)

    @property
    def item_id(self) -> str:
        return _numbered(RESPONSE_FUNCTION_CALL_ID, self.number)

    @property
    def tool_use_id(self) -> str:
        return _numbered(TOOL_USE_ID, self.number)

    @property
    def tokens(self) -> int:
        return count_tokens(self.name) + count_tokens(self.compact) + 4


@dataclass(frozen=True)
class _Turn:
    """The reply to a request: text, or calls of the first offered tool (several only with parallel_tools)."""

    text: str
    tools: tuple[_ToolCall, ...]
    prompt_tokens: int

    @property
    def tool(self) -> _ToolCall | None:
        return self.tools[0] if self.tools else None


def _numbered(first_id: str, number: int) -> str:
    """``call_mock_1`` for the first call, ``call_mock_2`` for the second..."""
    return first_id if number == 1 else f"{first_id.rsplit('_', 1)[0]}_{number}"


def _argument_name(schema: Any) -> str:
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return str(next(iter(properties), "city")) if isinstance(properties, dict) and properties else "city"


# A name, as args_from_prompt reads one: a capitalised word ending a clause or joined to another by and/or.
_NAME = re.compile(r"(?<=[\s:])[A-Z][a-z]+(?=[?.,]| and | or )")
_SUGGESTION = re.compile(r"Did you mean '([^']+)'\?")
_PROMPT_SCENARIOS = frozenset({"args_from_prompt", "parallel_tools", "retry_on_error"})


def _planned_calls(
    scenarios: frozenset[str],
    name: str,
    schema: Any,
    user_text: str | None,
    tool_result: str | None,
    earlier: int,
) -> tuple[_ToolCall, ...]:
    """The calls of tool ``name`` a reply asks for; ``tool_result`` is set when the request ends with one."""
    loop = "tool_loop" in scenarios
    suggestion = _SUGGESTION.search(tool_result or "") if "retry_on_error" in scenarios else None
    if tool_result is not None and not loop and suggestion is None:
        return ()
    key = _argument_name(schema)
    if not scenarios & _PROMPT_SCENARIOS:
        return (_ToolCall(name, {key: DEFAULT_ARGUMENT}, earlier + 1 if loop else 1),)
    if suggestion is not None:
        values = [suggestion.group(1)]
    else:
        named = list(dict.fromkeys(_NAME.findall(user_text or ""))) or [DEFAULT_ARGUMENT]
        values = named[:PARALLEL_TOOL_LIMIT] if "parallel_tools" in scenarios else named[-1:]
    return tuple(_ToolCall(name, {key: value}, earlier + index + 1) for index, value in enumerate(values))


def _last_user_text(messages: list[Json], part_types: tuple[str, ...]) -> str | None:
    """The text of the last user message (None when it has no text)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _content_text(message.get("content"), part_types)
    return None


def _content_text(content: Any, part_types: tuple[str, ...]) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in part_types and "text" in p
        ]
        if texts:
            return " ".join(texts)
    return None


def _chat_turn(body: Json, scenarios: frozenset[str] = frozenset()) -> _Turn:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
    after_tool = bool(messages) and messages[-1].get("role") in ("tool", "function")
    last_user = _last_user_text(messages, ("text",))
    tool_result = _content_text(messages[-1].get("content"), ("text",)) if after_tool else None
    prompt = _prompt_tokens([messages, body.get("tools")], len(messages))
    choice = body.get("tool_choice", "auto")
    calls: tuple[_ToolCall, ...] = ()
    if tools and choice != "none":
        chosen = tools[0].get("function") or {}
        if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            wanted = choice["function"].get("name")
            chosen = next((t["function"] for t in tools if (t.get("function") or {}).get("name") == wanted), chosen)
        earlier = sum(len(m.get("tool_calls") or []) for m in messages if m.get("role") == "assistant")
        name = str(chosen.get("name", "tool"))
        calls = _planned_calls(scenarios, name, chosen.get("parameters"), last_user, tool_result, earlier)
    return _Turn(reply_text(tool_result if after_tool else last_user, after_tool), calls, prompt)


def _responses_turn(body: Json, scenarios: frozenset[str] = frozenset()) -> _Turn:
    raw = body.get("input")
    items: list[Any] = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    last = items[-1] if items and isinstance(items[-1], dict) else {}
    after_tool = last.get("type") == "function_call_output"
    tool_result: str | None = None
    if after_tool:
        output = last.get("output")
        tool_result = output if isinstance(output, str) else _content_text(output, ("input_text", "output_text"))
    messages = [item for item in items if isinstance(item, dict)]
    last_user = _last_user_text(messages, ("input_text", "text"))
    prompt = _prompt_tokens([body.get("instructions"), items, body.get("tools")], len(items))
    choice = body.get("tool_choice", "auto")
    calls: tuple[_ToolCall, ...] = ()
    if tools and choice != "none":
        chosen = tools[0]
        if isinstance(choice, dict) and choice.get("type") == "function":
            chosen = next((t for t in tools if t.get("name") == choice.get("name")), chosen)
        earlier = sum(1 for item in messages if item.get("type") == "function_call")
        name = str(chosen.get("name", "tool"))
        calls = _planned_calls(scenarios, name, chosen.get("parameters"), last_user, tool_result, earlier)
    return _Turn(reply_text(tool_result if after_tool else last_user, after_tool), calls, prompt)


def _anthropic_turn(body: Json, scenarios: frozenset[str] = frozenset()) -> _Turn:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and "input_schema" in t]
    last = messages[-1] if messages else {}
    results = (
        [b for b in (last.get("content") or []) if isinstance(b, dict) and b.get("type") == "tool_result"]
        if isinstance(last.get("content"), list)
        else []
    )
    after_tool = last.get("role") == "user" and bool(results)
    tool_result = _content_text(results[-1].get("content"), ("text",)) if after_tool else None
    # The user's own words, for the tool's arguments: the last user message that is not tool results.
    asked = _last_user_text([m for m in messages if not _has_tool_result(m)], ("text",))
    prompt = _prompt_tokens([body.get("system"), messages, body.get("tools")], len(messages))
    choice = body["tool_choice"] if isinstance(body.get("tool_choice"), dict) else {"type": "auto"}
    calls: tuple[_ToolCall, ...] = ()
    if tools and choice.get("type") != "none":
        chosen = tools[0]
        if choice.get("type") == "tool":
            chosen = next((t for t in tools if t.get("name") == choice.get("name")), chosen)
        earlier = sum(
            1
            for m in messages
            if m.get("role") == "assistant" and isinstance(m.get("content"), list)
            for b in m["content"]
            if isinstance(b, dict) and b.get("type") == "tool_use"
        )
        name = str(chosen.get("name", "tool"))
        # One tool_use block per reply: parallel_tools is for the OpenAI paths.
        single = scenarios - {"parallel_tools"} | ({"args_from_prompt"} if "parallel_tools" in scenarios else set())
        calls = _planned_calls(single, name, chosen.get("input_schema"), asked, tool_result, earlier)
    user_text = tool_result if after_tool else _last_user_text(messages, ("text",))
    return _Turn(reply_text(user_text, after_tool), calls, prompt)


def _has_tool_result(message: Json) -> bool:
    content = message.get("content")
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


def _limit(text: str, limit: int | None) -> tuple[list[str], bool]:
    """The reply pieces, cut to ``limit`` tokens; and whether they were cut."""
    parts = pieces(text)
    if limit is not None and limit < len(parts):
        return parts[:limit], True
    return parts, False


# --------------------------------------------------------------------------------------------------------------------
# Planned answers: what to send, and the pauses the scenarios ask for


@dataclass
class _Plan:
    status: int
    headers: list[tuple[str, str]]
    pieces: list[bytes]
    streaming: bool
    head_delay: float = 0.0  # before the response headers
    pauses: dict[int, float] = field(default_factory=dict)  # piece index -> pause before sending it
    drop_after: int | None = None  # close the connection after this many pieces


def _headers(provider: Provider, content_type: str, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    common = OPENAI_HEADERS if provider == "openai" else ANTHROPIC_HEADERS
    return [("content-type", content_type), *extra, *common]


def _json_plan(provider: Provider, value: Any, status: int = 200, extra: Iterable[tuple[str, str]] = ()) -> _Plan:
    body = _dumps(value).encode()
    headers = _headers(provider, JSON_TYPE, [("content-length", str(len(body))), *extra])
    return _Plan(status, headers, [body], streaming=False)


def _sse_plan(provider: Provider, chunks: list[bytes]) -> _Plan:
    return _Plan(200, _headers(provider, SSE_TYPE, [("cache-control", "no-cache")]), chunks, streaming=True)


def _openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> Json:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _anthropic_error(type_: str, message: str) -> Json:
    return {"type": "error", "error": {"type": type_, "message": message}}


def _error_plan(provider: Provider, status: int, extra: Iterable[tuple[str, str]] = ()) -> _Plan:
    """The provider's answer for one of the scenario statuses."""
    openai_errors = {
        400: _openai_error("Mock bad request.", "invalid_request_error"),
        429: _openai_error(
            "Rate limit reached for requests (mock). Please try again in 1s.", "requests", "rate_limit_exceeded"
        ),
        500: _openai_error("The server had an error while processing your request. Sorry about that!", "server_error"),
        503: _openai_error("The engine is currently overloaded, please try again later.", "server_error"),
    }
    anthropic_errors = {
        400: _anthropic_error("invalid_request_error", "Mock bad request."),
        429: _anthropic_error("rate_limit_error", "Number of requests has exceeded your rate limit (mock)."),
        500: _anthropic_error("api_error", "Internal server error"),
        503: _anthropic_error("api_error", "Service unavailable"),
    }
    body = openai_errors[status] if provider == "openai" else anthropic_errors[status]
    return _json_plan(provider, body, status, extra)


def _stream_error_piece(provider: Provider, api: str, sequence_number: int) -> bytes:
    if provider == "anthropic":
        return _event("error", _anthropic_error("overloaded_error", "Overloaded"))
    if api == "responses":
        error = {
            "type": "error",
            "sequence_number": sequence_number,
            "code": "server_error",
            "message": "The server had an error while processing your request.",
            "param": None,
        }
        return _event("error", error)
    return _data(_openai_error("The server had an error while processing your request.", "server_error"))


def _finish_stream(call: _Call, provider: Provider, api: str, chunks: list[bytes]) -> _Plan:
    if "stream_error" in call.scenarios:
        # Two pieces go out, then the in-stream error the real services send when generation fails midway.
        chunks = [*chunks[:2], _stream_error_piece(provider, api, 2)]
    return _sse_plan(provider, chunks)


# --------------------------------------------------------------------------------------------------------------------
# Requests


@dataclass(frozen=True)
class _Call:
    mock: MockUpstream
    request: RecordedRequest
    body: Json
    provider: Provider

    @property
    def scenarios(self) -> frozenset[str]:
        return self.request.scenarios

    @property
    def streaming(self) -> bool:
        return self.body.get("stream") is True

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    def stream_option(self, name: str) -> Any:
        options = self.body.get("stream_options")
        return options.get(name) if isinstance(options, dict) else None

    @property
    def include_usage(self) -> bool:
        # OpenAI sends stream usage only on request; a "no_usage" server ignores the request.
        return self.stream_option("include_usage") is True and "no_usage" not in self.scenarios

    @property
    def obfuscate(self) -> bool:
        return self.stream_option("include_obfuscation") is not False


def _cached(call: _Call, prompt: int) -> int:
    return prompt // 2 if "cached" in call.scenarios else 0


def _reasoning(call: _Call) -> int:
    return 16 if "reasoning" in call.scenarios else 0


# ---- Chat Completions


def _chat_usage(call: _Call, prompt: int, completion: int) -> Json:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": _cached(call, prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": _reasoning(call),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _chat(call: _Call) -> _Plan:
    body = call.body
    turn = _chat_turn(body, call.scenarios)
    n = _int(body.get("n")) or 1
    limit = _int(body.get("max_completion_tokens")) or _int(body.get("max_tokens"))
    answers: list[tuple[list[str], str]] = []  # (pieces, finish_reason) per choice
    completion = _reasoning(call)
    for index in range(n):
        if turn.tools:
            answers.append(([], "tool_calls"))
            completion += sum(tool.tokens for tool in turn.tools)
        else:
            parts, cut = _limit(_choice_text(turn.text, index), limit)
            answers.append((parts, "length" if cut else "stop"))
            completion += len(parts)
    usage = _chat_usage(call, turn.prompt_tokens, completion)
    if call.streaming:
        return _chat_stream(call, turn, answers, usage)

    choices = []
    for index, (parts, finish) in enumerate(answers):
        message: Json = {"role": "assistant", "content": "".join(parts) if not turn.tools else None}
        if turn.tools:
            message["tool_calls"] = [
                {"id": tool.call_id, "type": "function", "function": {"name": tool.name, "arguments": tool.compact}}
                for tool in turn.tools
            ]
        message |= {"refusal": None, "annotations": []}
        choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": finish})
    completion_object: Json = {
        "id": CHAT_COMPLETION_ID,
        "object": "chat.completion",
        "created": CREATED,
        "model": call.model,
        "choices": choices,
        "usage": usage,
        "service_tier": "default",
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }
    if "no_usage" in call.scenarios:
        del completion_object["usage"]
    return _json_plan("openai", completion_object)


def _chat_stream(call: _Call, turn: _Turn, answers: list[tuple[list[str], str]], usage: Json) -> _Plan:
    def chunk(choices: list[Json], final_usage: Json | None = None) -> bytes:
        value: Json = {
            "id": CHAT_COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": call.model,
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": choices,
        }
        # OpenAI's padding is random on every call; here it is derived from the chunk's content alone (not
        # its usage field), so the same stream asked with and without include_usage pads alike.
        padding = _obfuscation(_dumps(value))
        if call.include_usage:
            # With include_usage every chunk carries "usage":null and one last chunk carries the numbers.
            value["usage"] = final_usage
        if call.obfuscate:
            value["obfuscation"] = padding
        return _data(value)

    def choice(index: int, delta: Json, finish: str | None = None) -> Json:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}

    def call_header(position: int, tool: _ToolCall) -> Json:
        function = {"name": tool.name, "arguments": ""}
        return {"index": position, "id": tool.call_id, "type": "function", "function": function}

    chunks: list[bytes] = []
    for index in range(len(answers)):
        first: Json
        if not turn.tools:
            first = {"role": "assistant", "content": "", "refusal": None}
        else:
            header = call_header(0, turn.tools[0])
            first = {"role": "assistant", "content": None, "tool_calls": [header], "refusal": None}
        chunks.append(chunk([choice(index, first)]))
    if turn.tools:
        # Parallel calls follow one another: each opens with its id and name, then its argument fragments.
        for position, tool in enumerate(turn.tools):
            if position:
                for index in range(len(answers)):
                    chunks.append(chunk([choice(index, {"tool_calls": [call_header(position, tool)]})]))
            for fragment in _split_json(tool.compact):
                for index in range(len(answers)):
                    delta = {"tool_calls": [{"index": position, "function": {"arguments": fragment}}]}
                    chunks.append(chunk([choice(index, delta)]))
    else:
        # Choices interleave piece by piece, as the real API streams n > 1.
        for step in range(max(len(parts) for parts, _ in answers)):
            for index, (parts, _) in enumerate(answers):
                if step < len(parts):
                    chunks.append(chunk([choice(index, {"content": parts[step]})]))
    for index, (_, finish) in enumerate(answers):
        chunks.append(chunk([choice(index, {}, finish)]))
    if call.include_usage:
        chunks.append(chunk([], usage))
    chunks.append(DONE)
    return _finish_stream(call, "openai", "chat", chunks)


# ---- Legacy Completions


def _completions(call: _Call) -> _Plan:
    body = call.body
    prompt = body.get("prompt", "")
    prompts = [prompt] if isinstance(prompt, str) else [p if isinstance(p, str) else "" for p in prompt or [""]]
    n = _int(body.get("n")) or 1
    limit = _int(body.get("max_tokens"))
    answers: list[tuple[int, list[str], str]] = []
    for p_index, text in enumerate(prompts):
        for c_index in range(n):
            parts, cut = _limit(_choice_text(reply_text(text), c_index), limit)
            answers.append((p_index * n + c_index, parts, "length" if cut else "stop"))
    prompt_tokens = sum(max(1, count_tokens(p)) for p in prompts)
    completion_tokens = sum(len(parts) for _, parts, _ in answers)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if not call.streaming:
        choices = [
            {"text": "".join(parts), "index": index, "logprobs": None, "finish_reason": finish}
            for index, parts, finish in answers
        ]
        value: Json = {
            "id": COMPLETION_ID,
            "object": "text_completion",
            "created": CREATED,
            "model": call.model,
            "choices": choices,
            "usage": usage,
        }
        if "no_usage" in call.scenarios:
            del value["usage"]
        return _json_plan("openai", value)

    def chunk(choices: list[Json], final_usage: Json | None = None) -> bytes:
        # Legacy completion chunks put "model" after "choices".
        value = {
            "id": COMPLETION_ID,
            "object": "text_completion",
            "created": CREATED,
            "choices": choices,
            "model": call.model,
        }
        if call.include_usage:
            value["usage"] = final_usage
        return _data(value)

    chunks: list[bytes] = []
    for step in range(max(len(parts) for _, parts, _ in answers)):
        for index, parts, _ in answers:
            if step < len(parts):
                chunks.append(chunk([{"text": parts[step], "index": index, "logprobs": None, "finish_reason": None}]))
    for index, _, finish in answers:
        chunks.append(chunk([{"text": "", "index": index, "logprobs": None, "finish_reason": finish}]))
    if call.include_usage:
        chunks.append(chunk([], usage))
    chunks.append(DONE)
    return _finish_stream(call, "openai", "completions", chunks)


# ---- Responses


def _responses_usage(call: _Call, prompt: int, output: int) -> Json:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _cached(call, prompt), "cache_write_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": _reasoning(call)},
        "total_tokens": prompt + output,
    }


def _response_object(call: _Call, status: str, output: list[Json], usage: Json | None) -> Json:
    body = call.body
    reasoning: Json = body["reasoning"] if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": call.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "prompt_cache_key": body.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text", {"format": {"type": "text"}, "verbosity": "medium"}),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_logprobs": body.get("top_logprobs", 0),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata", {}),
    }


def _message_item(status: str, text: str | None) -> Json:
    content = [] if text is None else [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}]
    return {"id": RESPONSE_MESSAGE_ID, "type": "message", "status": status, "content": content, "role": "assistant"}


def _function_item(status: str, tool: _ToolCall, arguments: str) -> Json:
    return {
        "id": tool.item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": tool.call_id,
        "name": tool.name,
    }


def _responses(call: _Call) -> _Plan:
    turn = _responses_turn(call.body, call.scenarios)
    parts = pieces(turn.text)
    output_tokens = (sum(tool.tokens for tool in turn.tools) if turn.tools else len(parts)) + _reasoning(call)
    usage = None if "no_usage" in call.scenarios else _responses_usage(call, turn.prompt_tokens, output_tokens)
    done_items = [_function_item("completed", tool, tool.compact) for tool in turn.tools] or [
        _message_item("completed", turn.text)
    ]
    if not call.streaming:
        return _json_plan("openai", _response_object(call, "completed", done_items, usage))

    events: list[tuple[str, Json]] = []

    def emit(name: str, fields: Json) -> None:
        # Every event repeats its name in "type" and counts up in "sequence_number", both first.
        events.append((name, {"type": name, "sequence_number": len(events), **fields}))

    def delta(fields: Json) -> Json:
        if call.obfuscate:
            fields["obfuscation"] = _obfuscation(_dumps(fields) + str(len(events)))
        return fields

    emit("response.created", {"response": _response_object(call, "in_progress", [], None)})
    emit("response.in_progress", {"response": _response_object(call, "in_progress", [], None)})
    # Parallel function calls are output items one after the other, each added, filled and done in turn.
    for position, tool in enumerate(turn.tools):
        item = _function_item("in_progress", tool, "")
        emit("response.output_item.added", {"output_index": position, "item": item})
        place = {"item_id": tool.item_id, "output_index": position}
        for fragment in _split_json(tool.compact):
            emit("response.function_call_arguments.delta", delta({**place, "delta": fragment}))
        emit("response.function_call_arguments.done", {**place, "arguments": tool.compact})
        if position < len(turn.tools) - 1:
            emit("response.output_item.done", {"output_index": position, "item": done_items[position]})
    if not turn.tools:
        emit("response.output_item.added", {"output_index": 0, "item": _message_item("in_progress", None)})
        place = {"item_id": RESPONSE_MESSAGE_ID, "output_index": 0, "content_index": 0}
        empty_part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
        emit("response.content_part.added", {**place, "part": empty_part})
        for part in parts:
            emit("response.output_text.delta", delta({**place, "delta": part, "logprobs": []}))
        emit("response.output_text.done", {**place, "text": turn.text, "logprobs": []})
        emit("response.content_part.done", {**place, "part": {**empty_part, "text": turn.text}})
    last = len(done_items) - 1
    emit("response.output_item.done", {"output_index": last, "item": done_items[last]})
    emit("response.completed", {"response": _response_object(call, "completed", done_items, usage)})
    # The Responses API ends the stream after response.completed: no [DONE].
    return _finish_stream(call, "openai", "responses", [_event(name, value) for name, value in events])


# ---- Embeddings, models, files


def _embedding_vector(text: str, dimensions: int) -> list[float]:
    # Multiples of 1/128 are exact in float32, so the float and base64 encodings decode to the same numbers.
    return [(b - 128) / 128 for b in hashlib.shake_256(text.encode()).digest(dimensions)]


def _embeddings(call: _Call) -> _Plan:
    raw = call.body.get("input", "")
    if isinstance(raw, str):
        inputs = [raw]
    elif raw and all(isinstance(x, int) for x in raw):
        inputs = [" ".join(map(str, raw))]  # one input given as token ids
    else:
        inputs = [x if isinstance(x, str) else " ".join(map(str, x)) for x in raw or []]
    dimensions = _int(call.body.get("dimensions")) or 8
    as_base64 = call.body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vector = _embedding_vector(text, dimensions)
        embedding: Any = vector
        if as_base64:
            embedding = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = sum(max(1, count_tokens(text)) for text in inputs)
    value = {
        "object": "list",
        "data": data,
        "model": call.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return _json_plan("openai", value)


def _openai_model(model_id: str, created: int) -> Json:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "system"}


def _models(call: _Call) -> _Plan:
    if call.provider == "anthropic":
        data = [
            {"type": "model", "id": mid, "display_name": name, "created_at": created}
            for mid, name, created in ANTHROPIC_MODELS
        ]
        value = {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}
        return _json_plan("anthropic", value)
    return _json_plan("openai", {"object": "list", "data": [_openai_model(m, c) for m, c in OPENAI_MODELS]})


def _model(call: _Call) -> _Plan:
    wanted = call.request.path.removeprefix("/v1/models/")
    for model_id, created in OPENAI_MODELS:
        if model_id == wanted:
            return _json_plan("openai", _openai_model(model_id, created))
    error = _openai_error(f"The model '{wanted}' does not exist", "invalid_request_error", "model_not_found", "model")
    return _json_plan("openai", error, 404)


def _files(call: _Call) -> _Plan:
    file = {
        "object": "file",
        "id": "file-mock1",
        "purpose": "assistants",
        "filename": "mock.jsonl",
        "bytes": 42,
        "created_at": CREATED,
        "expires_at": None,
        "status": "processed",
        "status_details": None,
    }
    value = {"object": "list", "data": [file], "has_more": False, "first_id": "file-mock1", "last_id": "file-mock1"}
    return _json_plan("openai", value)


# ---- Anthropic Messages


def _anthropic_usage(call: _Call, prompt: int) -> tuple[int, int]:
    """(input_tokens, cache_read_input_tokens): Anthropic's input_tokens leaves out what came from the cache."""
    cached = _cached(call, prompt)
    return prompt - cached, cached


def _messages(call: _Call) -> _Plan:
    body = call.body
    if _int(body.get("max_tokens")) is None:
        return _json_plan("anthropic", _anthropic_error("invalid_request_error", "max_tokens: Field required"), 400)
    turn = _anthropic_turn(body, call.scenarios)
    tool = turn.tool
    # With a tool Claude first says what it is about to do, then calls it.
    text = f"I'll use {tool.name}." if tool else turn.text
    parts, cut = _limit(text, _int(body.get("max_tokens")))
    output_tokens = len(parts) + (tool.tokens if tool and not cut else 0)
    stop_reason = "max_tokens" if cut else ("tool_use" if tool else "end_turn")
    input_tokens, cache_read = _anthropic_usage(call, turn.prompt_tokens)
    content: list[Json] = [{"type": "text", "text": "".join(parts)}]
    if tool and not cut:
        content.append({"type": "tool_use", "id": tool.tool_use_id, "name": tool.name, "input": tool.arguments})

    def usage(output: int) -> Json:
        return {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": cache_read,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output,
            "service_tier": "standard",
        }

    def message(blocks: list[Json], stop: str | None, output: int) -> Json:
        return {
            "id": ANTHROPIC_MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": call.model,
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage(output),
        }

    if not call.streaming:
        return _json_plan("anthropic", message(content, stop_reason, output_tokens))

    chunks = [_event("message_start", {"type": "message_start", "message": message([], None, 1)})]
    chunks.append(
        _event(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
    )
    chunks.append(ANTHROPIC_PING)
    # Claude streams a few tokens per text delta rather than one.
    for group in range(0, len(parts), 3):
        delta = {"type": "text_delta", "text": "".join(parts[group : group + 3])}
        chunks.append(_event("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}))
    chunks.append(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    if tool and not cut:
        block = {"type": "tool_use", "id": tool.tool_use_id, "name": tool.name, "input": {}}
        chunks.append(
            _event("content_block_start", {"type": "content_block_start", "index": 1, "content_block": block})
        )
        # Tool input arrives as JSON text with spaces after separators, first as an empty fragment.
        for fragment in ["", *_split_every(json.dumps(tool.arguments, ensure_ascii=False), 7)]:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            chunks.append(_event("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": delta}))
        chunks.append(_event("content_block_stop", {"type": "content_block_stop", "index": 1}))
    # message_delta usage holds running totals (input and cache fields too), which clients overwrite, not add.
    final_usage = {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
    }
    delta_event = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        "usage": final_usage,
    }
    chunks.append(_event("message_delta", delta_event))
    chunks.append(_event("message_stop", {"type": "message_stop"}))
    return _finish_stream(call, "anthropic", "messages", chunks)


def _count_message_tokens(call: _Call) -> _Plan:
    input_tokens, _ = _anthropic_usage(call, _anthropic_turn(call.body).prompt_tokens)
    return _json_plan("anthropic", {"input_tokens": input_tokens})


# --------------------------------------------------------------------------------------------------------------------
# Dispatch

_ROUTES: dict[tuple[str, str], Callable[[_Call], _Plan]] = {
    ("POST", "/v1/chat/completions"): _chat,
    ("POST", "/v1/completions"): _completions,
    ("POST", "/v1/responses"): _responses,
    ("POST", "/v1/embeddings"): _embeddings,
    ("GET", "/v1/models"): _models,
    ("GET", "/v1/files"): _files,
    ("POST", "/v1/messages"): _messages,
    ("POST", "/v1/messages/count_tokens"): _count_message_tokens,
}
_JSON_BODY_PATHS = frozenset(path for method, path in _ROUTES if method == "POST")


def _provider(request: RecordedRequest) -> Provider:
    if request.path.startswith("/v1/messages") or "anthropic-version" in request.headers:
        return "anthropic"
    return "openai"


def _mask(key: str) -> str:
    return f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 7 else "***"


def _auth_failure(mock: MockUpstream, request: RecordedRequest, provider: Provider) -> _Plan | None:
    headers = request.headers
    if provider == "openai" and mock.openai_key is not None:
        authorization = headers.get("authorization", "")
        if authorization == f"Bearer {mock.openai_key}":
            return None
        if not authorization:
            message = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
        else:
            message = f"Incorrect API key provided: {_mask(authorization.removeprefix('Bearer '))}."
        return _json_plan("openai", _openai_error(message, "invalid_request_error", "invalid_api_key"), 401)
    if provider == "anthropic" and mock.anthropic_key is not None:
        # The classic header is x-api-key, but anthropic-sdk-python 2.x sends the API key as a Bearer token.
        api_key = headers.get("x-api-key")
        bearer = headers.get("authorization")
        if mock.anthropic_key in (api_key, (bearer or "").removeprefix("Bearer ")):
            return None
        message = "x-api-key header is required" if api_key is None and bearer is None else "invalid x-api-key"
        return _json_plan("anthropic", _anthropic_error("authentication_error", message), 401)
    return None


def _scenario_failure(mock: MockUpstream, request: RecordedRequest, provider: Provider) -> _Plan | None:
    scenarios = request.scenarios
    if "error_400" in scenarios:
        return _error_plan(provider, 400)
    if "error_429" in scenarios:
        return _error_plan(provider, 429, [("retry-after", "1")])
    if "error_500" in scenarios:
        return _error_plan(provider, 500)
    if "error_then_ok" in scenarios and mock._first_failure(request.path):
        return _error_plan(provider, 503)
    return None


def _not_found(request: RecordedRequest, provider: Provider) -> _Plan:
    if provider == "anthropic":
        return _json_plan("anthropic", _anthropic_error("not_found_error", "Not Found"), 404)
    message = f"Invalid URL ({request.method} {request.path})"
    return _json_plan("openai", _openai_error(message, "invalid_request_error"), 404)


def _apply_timing(mock: MockUpstream, scenarios: frozenset[str], plan: _Plan) -> None:
    if "stall_headers" in scenarios:
        plan.head_delay = mock.stall_seconds
    if "slow" in scenarios:
        if plan.streaming:
            plan.pauses |= {i: mock.slow_seconds for i in range(1, len(plan.pieces))}
        else:
            plan.head_delay = max(plan.head_delay, mock.slow_seconds)
    if "stall" in scenarios:
        plan.pauses[1 if plan.streaming else 0] = mock.stall_seconds
    if "drop" in scenarios:
        if not plan.streaming:
            body = plan.pieces[0]
            plan.pieces = [body[: len(body) // 2], body[len(body) // 2 :]]
        plan.drop_after = 1


def _apply_encoding(mock: MockUpstream, scenarios: frozenset[str], plan: _Plan) -> None:
    if plan.streaming or not scenarios & {"gzip", "gzip_bomb", "chunked"}:
        return
    body = b"".join(plan.pieces)
    encoding = None
    if "gzip_bomb" in scenarios:
        compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16: a gzip header and trailer
        parts = [compressor.compress(body)]
        padding, block = max(0, mock.gzip_bomb_bytes - len(body)), b" " * (1 << 20)
        for offset in range(0, padding, len(block)):
            parts.append(compressor.compress(block[: padding - offset]))
        body, encoding = b"".join(parts) + compressor.flush(), "gzip"
    elif "gzip" in scenarios:
        body, encoding = gzip.compress(body, mtime=0), "gzip"
    headers = [(k, v) for k, v in plan.headers if k != "content-length"]
    if "chunked" not in scenarios:
        headers.insert(1, ("content-length", str(len(body))))
    if encoding is not None:
        headers.insert(1, ("content-encoding", encoding))
    plan.headers, plan.pieces = headers, [body]


def _plan(mock: MockUpstream, request: RecordedRequest) -> _Plan:
    provider = _provider(request)
    failure = _auth_failure(mock, request, provider) or _scenario_failure(mock, request, provider)
    if failure is not None:
        return failure
    handler = _ROUTES.get((request.method, request.path))
    if handler is None and request.method == "GET" and request.path.startswith("/v1/models/"):
        handler = _model
    if handler is None:
        return _not_found(request, provider)
    body: Json = {}
    if request.path in _JSON_BODY_PATHS:
        try:
            parsed = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if not isinstance(parsed, dict):
            if provider == "anthropic":
                error = _anthropic_error("invalid_request_error", "There was an issue with your request body.")
            else:
                message = "We could not parse the JSON body of your request."
                error = _openai_error(message, "invalid_request_error")
            return _json_plan(provider, error, 400)
        body = parsed
    plan = handler(_Call(mock, request, body, provider))
    _apply_encoding(mock, request.scenarios, plan)
    _apply_timing(mock, request.scenarios, plan)
    return plan


class _PlannedResponse(Response):
    """Sends a plan piece by piece, pausing as asked, and notices a client that leaves before the end.

    A task reads ``receive`` for ``http.disconnect`` the whole time (uvicorn reports it as soon as the socket
    closes, also while we sit in a pause), so a disconnect is counted at once rather than at the next write.
    """

    def __init__(self, mock: MockUpstream, plan: _Plan) -> None:
        # Response.__init__ would add its own content-type and content-length; the plan has them already.
        self.status_code = plan.status
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in plan.headers]
        self._mock = mock
        self._plan = plan

    async def _pause(self, seconds: float, gone: asyncio.Event) -> bool:
        """Wait ``seconds``; True (and early) when the client left or the server is closing."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not (gone.is_set() or self._mock.closing.is_set()):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(gone.wait(), min(remaining, _POLL))
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        plan = self._plan
        gone = asyncio.Event()
        finished = False  # the last piece is on its way: leaving now is not an abort

        async def watch() -> None:
            while True:
                message: Message = await receive()
                if message["type"] == "http.disconnect":
                    if not finished:
                        self._mock._record_disconnect()
                    gone.set()
                    return

        watcher = asyncio.create_task(watch())
        try:
            if plan.head_delay and await self._pause(plan.head_delay, gone):
                return
            await send({"type": "http.response.start", "status": plan.status, "headers": self.raw_headers})
            for index, piece in enumerate(plan.pieces):
                pause = plan.pauses.get(index, 0.0)
                if pause and await self._pause(pause, gone):
                    return
                if gone.is_set():
                    return
                if plan.drop_after is not None and index >= plan.drop_after:
                    return  # uvicorn closes a connection whose answer the app left unfinished
                finished = index == len(plan.pieces) - 1
                await send({"type": "http.response.body", "body": piece, "more_body": True})
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def _header_dict(request: Request) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def create_app(mock: MockUpstream) -> Starlette:
    """The mock as an ASGI app; every path lands in one handler, so unknown ones are recorded too."""

    async def endpoint(request: Request) -> Response:
        recorded = RecordedRequest(
            method=request.method,
            path=request.url.path,
            query=request.url.query,
            headers=_header_dict(request),
            body=await request.body(),
            raw_target=request.scope.get("raw_path", b"")
            + (b"?" + request.scope["query_string"] if request.scope.get("query_string") else b""),
        )
        mock._record(recorded)
        return _PlannedResponse(mock, _plan(mock, recorded))

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    return Starlette(routes=[Route("/{path:path}", endpoint, methods=methods)])


@contextlib.contextmanager
def serve(mock: MockUpstream, *, timeout: float = 10.0) -> Iterator[str]:
    """Run the mock with uvicorn on 127.0.0.1 (a free port) in a background thread; yield its base URL.

    Startup and shutdown waits are bounded by ``timeout``. On exit, stalled answers are cut short so shutdown does
    not wait for them.
    """
    # Binding here, before the thread starts, gives the port without racing the server for it.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(mock),
        loop="asyncio",
        http="h11",
        ws="none",
        lifespan="off",
        log_config=None,  # leave the process's logging configuration alone
        log_level="warning",
        access_log=False,
        server_header=False,  # no server/date headers: answers must be byte-for-byte repeatable
        date_header=False,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    mock.closing.clear()
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"mock-upstream:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("the mock upstream server stopped during startup")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the mock upstream server did not start within {timeout} s")
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        mock.closing.set()
        server.should_exit = True
        thread.join(timeout)
        sock.close()

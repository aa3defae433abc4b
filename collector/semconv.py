"""The OpenTelemetry GenAI semantic convention names, spelled once for the proxy, the processors and the exporters.

The names are those of open-telemetry/semantic-conventions-genai, the GenAI
conventions' own repository since they left the core conventions; its first
standalone release builds on core v1.45.0. ``PREVIOUS`` is v1.41.0 of
open-telemetry/semantic-conventions, the last core release that held them, which
the proxy and the metrics still emit when configured with ``semconv: v1.41``.
``RENAMED`` maps every name that changed (including names of this project that
the conventions now define) old → new; docs/semconv.md is the same table for
readers, and genai_normalize maps spans that arrive with the old names forward.

Attributes the conventions do not define are named in their style and listed
at the end; docs/components.md says which they are.
"""

from __future__ import annotations

from typing import Final, Literal

# Which conventions a component emits: the newest, or the previous release for dashboards built on it.
Version = Literal["latest", "v1.41"]
LATEST: Final = "latest"
PREVIOUS: Final = "v1.41"
VERSIONS: Final = (LATEST, PREVIOUS)
CURRENT_RELEASE: Final = "open-telemetry/semantic-conventions-genai, first release (on core v1.45.0)"
PREVIOUS_RELEASE: Final = "open-telemetry/semantic-conventions v1.41.0"

# ----------------------------------------------------------------------------------------------------------------
# Span attributes

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
CONVERSATION_ID = "gen_ai.conversation.id"
OUTPUT_TYPE = "gen_ai.output.type"

REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"  # an int in the newest conventions, a double in v1.41.0
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"
REQUEST_REASONING_LEVEL = "gen_ai.request.reasoning.level"  # new
REQUEST_PREVIOUS_RESPONSE_ID = "gen_ai.request.previous_response.id"  # new

RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"

USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.usage.cache_write.input_tokens"
USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"  # v1.41.0's name of cache_write
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
# Per-modality parts of the input and output counts (each included in its total).
MODALITIES = ("text", "image", "audio", "video")
USAGE_INPUT_TOKENS_BY_MODALITY = {modality: f"gen_ai.usage.{modality}.input_tokens" for modality in MODALITIES}
USAGE_OUTPUT_TOKENS_BY_MODALITY = {modality: f"gen_ai.usage.{modality}.output_tokens" for modality in MODALITIES}

# Cost of one operation (the conventions' cost attributes, which replaced this project's gen_ai.usage.cost).
USAGE_COST_AMOUNT = "gen_ai.usage.cost.amount"
USAGE_COST_CURRENCY = "gen_ai.usage.cost.currency"
USAGE_COST_SOURCE = "gen_ai.usage.cost.source"
COST_SOURCE_PROVIDER = "provider"  # the cost came with the span (the provider or a gateway reported it)
COST_SOURCE_LOCAL = "local"  # priced by genai_cost from the token counts
COST_CURRENCY_USD = "USD"

EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

TOOL_NAME = "gen_ai.tool.name"
TOOL_CALL_ID = "gen_ai.tool.call.id"
TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
TOOL_CALL_RESULT = "gen_ai.tool.call.result"
AGENT_NAME = "gen_ai.agent.name"

EVALUATION_NAME = "gen_ai.evaluation.name"
EVALUATION_SCORE_VALUE = "gen_ai.evaluation.score.value"
EVALUATION_SCORE_LABEL = "gen_ai.evaluation.score.label"
EVALUATION_EXPLANATION = "gen_ai.evaluation.explanation"
EVALUATION_RESULT_EVENT = "gen_ai.evaluation.result"

OPENAI_REQUEST_SERVICE_TIER = "openai.request.service_tier"
OPENAI_RESPONSE_SERVICE_TIER = "openai.response.service_tier"
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = "openai.response.system_fingerprint"
OPENAI_API_TYPE = "openai.api.type"

SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
HTTP_REQUEST_METHOD = "http.request.method"
HTTP_RESPONSE_STATUS_CODE = "http.response.status_code"
URL_PATH = "url.path"
SERVICE_NAME = "service.name"

# Metric attributes.
TOKEN_TYPE = "gen_ai.token.type"  # v1.41.0's gen_ai.client.token.usage only
TOKEN_MODALITY = "gen_ai.token.modality"
TOKEN_MODALITY_UNKNOWN = "unknown"

# ----------------------------------------------------------------------------------------------------------------
# gen_ai.operation.name values

CHAT = "chat"
TEXT_COMPLETION = "text_completion"
GENERATE_CONTENT = "generate_content"
EMBEDDINGS = "embeddings"
EXECUTE_TOOL = "execute_tool"
CREATE_AGENT = "create_agent"
INVOKE_AGENT = "invoke_agent"
INVOKE_WORKFLOW = "invoke_workflow"
HANDLE_CONVERSATION_TURN = "handle_conversation_turn"  # a framework runner's entry point (was invoke_workflow)
PLAN = "plan"
RETRIEVAL = "retrieval"
FETCH_RESPONSE = "fetch_response"  # reads a stored response back: no inference, no tokens
APPLY_GUARDRAIL = "apply_guardrail"
MEMORY_OPERATIONS = frozenset(
    {
        "create_memory",
        "search_memory",
        "update_memory",
        "upsert_memory",
        "delete_memory",
        "create_memory_store",
        "delete_memory_store",
    }
)

# Calls to a model: the conventions' inference operations (gen_ai.client.inference spans).
INFERENCE_OPERATIONS = frozenset({CHAT, TEXT_COMPLETION, GENERATE_CONTENT})
# THE allow-list of what counts as an LLM call, one row of genai_calls and one observation of the call
# metrics: inference plus embeddings (a billed call to a model too). Agents, workflows, conversation turns,
# tools, planning, retrieval, memory, guardrails and response fetches are not calls; their spans enclose or
# sit beside the calls and would count them twice.
MODEL_CALL_OPERATIONS = INFERENCE_OPERATIONS | {EMBEDDINGS}
# Spans that enclose the calls and tool runs of one agent invocation (invoke_workflow folded in, as the
# conventions now report workflows and runner entry points as invocations).
INVOCATION_OPERATIONS = frozenset({INVOKE_AGENT, INVOKE_WORKFLOW, HANDLE_CONVERSATION_TURN})

ERROR_OTHER = "_OTHER"

# ----------------------------------------------------------------------------------------------------------------
# Metrics (OpenTelemetry names; the Prometheus exporter spells them its way)

INFERENCE_DURATION = "gen_ai.client.inference.duration"
INFERENCE_TIME_TO_FIRST_CHUNK = "gen_ai.client.inference.time_to_first_chunk"
INFERENCE_USAGE_INPUT_TOKENS = "gen_ai.client.inference.usage.input_tokens"
INFERENCE_USAGE_OUTPUT_TOKENS = "gen_ai.client.inference.usage.output_tokens"
INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.client.inference.usage.cache_read.input_tokens"
INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS = "gen_ai.client.inference.usage.cache_write.input_tokens"
INFERENCE_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.client.inference.usage.reasoning.output_tokens"
INFERENCE_OPERATION_INPUT_TOKENS = "gen_ai.client.inference.operation.input_tokens"
INFERENCE_OPERATION_OUTPUT_TOKENS = "gen_ai.client.inference.operation.output_tokens"
EMBEDDINGS_DURATION = "gen_ai.client.embeddings.duration"
EMBEDDINGS_OPERATION_INPUT_TOKENS = "gen_ai.client.embeddings.operation.input_tokens"
OPERATION_COST = "gen_ai.client.operation.cost"
INVOCATION_DURATION = "gen_ai.invocation.duration"  # agents, workflows and conversation turns alike
EXECUTE_TOOL_DURATION = "gen_ai.execute_tool.duration"
# v1.41.0's, emitted with ``semconv: v1.41``.
PREVIOUS_TOKEN_USAGE = "gen_ai.client.token.usage"
PREVIOUS_OPERATION_DURATION = "gen_ai.client.operation.duration"
PREVIOUS_TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"

# ----------------------------------------------------------------------------------------------------------------
# Not (yet) in the conventions: this project's own, named in their style

USAGE_SOURCE = "gen_ai.usage.source"  # "provider" or "estimated": where the token counts came from
OUTPUT_TOKENS_PER_SECOND = "gen_ai.response.output_tokens_per_second"
TENANT_ID = "tenant.id"
PROXY_UPSTREAM = "gen_ai.proxy.upstream"  # on every span the proxy makes: the upstream it forwarded to
EARLY_STOP_DETECTOR = "gen_ai.security.early_stop.detector"
# Why the proxy relayed a reply without reading it for the span: "too_large" or "undecodable".
PROXY_RESPONSE_NOT_PARSED = "gen_ai.proxy.response.not_parsed"
NOT_PARSED_TOO_LARGE = "too_large"
NOT_PARSED_UNDECODABLE = "undecodable"
# Parts of the cost (they add up to gen_ai.usage.cost.amount) and the price list that gave it.
USAGE_COST_PARTS = ("input", "output", "cache_read", "cache_write", "reasoning")
USAGE_COST_PART = {part: f"gen_ai.usage.cost.{part}" for part in USAGE_COST_PARTS}
USAGE_COST_PRICE_VERSION = "gen_ai.usage.cost.price_version"
COST_SOURCE_UNPRICED = "unpriced"  # a value of gen_ai.usage.cost.source of ours: no price known, no amount
# On a span that describes the same model call as another span (an app's own inference span whose call went
# through the proxy): the span id (hex) of the one that is counted. See processors/genai_dedup.
CALL_DUPLICATE_OF = "gen_ai.call.duplicate_of"
# On a gen_ai.evaluation.result record (connectors/genai_evaluation): what judged (``judge:<model>`` or
# ``rule:<type>``), and whether the result passed the dimension's threshold or labels.
EVALUATION_EVALUATOR = "genai_collector.evaluation.evaluator"
EVALUATION_PASSED = "genai_collector.evaluation.passed"
# On a judge model's call span: made by the evaluation connector, so never evaluated itself.
EVALUATOR_CALL = "genai_collector.evaluation.evaluator_call"
# This project's metric for cost before the conventions had one (emitted with ``semconv: v1.41``).
PREVIOUS_COST_TOTAL = "gen_ai.client.cost"

# ----------------------------------------------------------------------------------------------------------------
# What changed: old name → new name

RENAMED: dict[str, str] = {
    # attributes
    USAGE_CACHE_CREATION_INPUT_TOKENS: USAGE_CACHE_WRITE_INPUT_TOKENS,
    "gen_ai.usage.cost": USAGE_COST_AMOUNT,
    # metrics
    PREVIOUS_OPERATION_DURATION: INFERENCE_DURATION,
    PREVIOUS_TIME_TO_FIRST_CHUNK: INFERENCE_TIME_TO_FIRST_CHUNK,
    PREVIOUS_COST_TOTAL: OPERATION_COST,
}
# Values of gen_ai.usage.cost.source that changed.
RENAMED_COST_SOURCES: dict[str, str] = {"computed": COST_SOURCE_LOCAL}
# gen_ai.client.token.usage split by direction into counters (totals) and histograms (per call).
TOKEN_USAGE_REPLACEMENTS = (
    INFERENCE_USAGE_INPUT_TOKENS,
    INFERENCE_USAGE_OUTPUT_TOKENS,
    INFERENCE_OPERATION_INPUT_TOKENS,
    INFERENCE_OPERATION_OUTPUT_TOKENS,
    EMBEDDINGS_OPERATION_INPUT_TOKENS,
)


def previous_names(name: str) -> tuple[str, ...]:
    """The names ``name`` had before, newest first (empty when it never changed)."""
    return tuple(old for old, new in reversed(RENAMED.items()) if new == name)


def spellings(name: str) -> tuple[str, ...]:
    """``name`` then the names it had before, newest first: the order in which to read an attribute."""
    return (name, *previous_names(name))


def is_model_call(operation: str) -> bool:
    """True for a gen_ai.operation.name that counts as a call to a model (the allow-list)."""
    return operation in MODEL_CALL_OPERATIONS

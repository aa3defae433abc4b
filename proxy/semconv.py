"""Attribute names of the OpenTelemetry GenAI semantic conventions, as the proxy emits them.

The default is the v1.41.0 release (the last one published in
open-telemetry/semantic-conventions before the GenAI conventions moved to their
own repository). As the conventions' stability guidance asks, setting
``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` switches wholesale to
the newest experimental names instead of emitting both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

OPT_IN_ENV = "OTEL_SEMCONV_STABILITY_OPT_IN"
LATEST_EXPERIMENTAL = "gen_ai_latest_experimental"

OPERATION_NAME = "gen_ai.operation.name"
PROVIDER_NAME = "gen_ai.provider.name"
CONVERSATION_ID = "gen_ai.conversation.id"
OUTPUT_TYPE = "gen_ai.output.type"

REQUEST_MODEL = "gen_ai.request.model"
REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
REQUEST_TEMPERATURE = "gen_ai.request.temperature"
REQUEST_TOP_P = "gen_ai.request.top_p"
REQUEST_TOP_K = "gen_ai.request.top_k"
REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
REQUEST_SEED = "gen_ai.request.seed"
REQUEST_FREQUENCY_PENALTY = "gen_ai.request.frequency_penalty"
REQUEST_PRESENCE_PENALTY = "gen_ai.request.presence_penalty"
REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
REQUEST_STREAM = "gen_ai.request.stream"
REQUEST_ENCODING_FORMATS = "gen_ai.request.encoding_formats"

RESPONSE_ID = "gen_ai.response.id"
RESPONSE_MODEL = "gen_ai.response.model"
RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
RESPONSE_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"

USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"

EMBEDDINGS_DIMENSION_COUNT = "gen_ai.embeddings.dimension.count"

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"

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

# Not (yet) in the conventions; named in their style.
USAGE_SOURCE = "gen_ai.usage.source"  # "provider" or "estimated"
OUTPUT_TOKENS_PER_SECOND = "gen_ai.response.output_tokens_per_second"
TENANT_ID = "tenant.id"
UPSTREAM_NAME = "gen_ai.proxy.upstream"
EARLY_STOP_DETECTOR = "gen_ai.security.early_stop.detector"
# Why the reply was relayed but not read for the span: "too_large" or "undecodable".
RESPONSE_NOT_PARSED = "gen_ai.proxy.response.not_parsed"

# Values
OPERATION_CHAT = "chat"
OPERATION_TEXT_COMPLETION = "text_completion"
OPERATION_EMBEDDINGS = "embeddings"
ERROR_OTHER = "_OTHER"
NOT_PARSED_TOO_LARGE = "too_large"
NOT_PARSED_UNDECODABLE = "undecodable"


@dataclass(frozen=True)
class Dialect:
    """The names that differ between the default release and the latest experimental conventions."""

    cache_creation_input_tokens: str
    reasoning_level: str | None  # only the latest conventions have it
    previous_response_id: str | None
    top_k_is_int: bool
    finish_reason_in_output_messages: bool


V1_41 = Dialect(
    cache_creation_input_tokens="gen_ai.usage.cache_creation.input_tokens",
    reasoning_level=None,
    previous_response_id=None,
    top_k_is_int=False,
    finish_reason_in_output_messages=True,
)
LATEST = Dialect(
    cache_creation_input_tokens="gen_ai.usage.cache_write.input_tokens",
    reasoning_level="gen_ai.request.reasoning.level",
    previous_response_id="gen_ai.request.previous_response.id",
    top_k_is_int=True,
    # Deprecated there in favour of gen_ai.response.finish_reasons.
    finish_reason_in_output_messages=False,
)


def dialect_from_environment(environ: dict[str, str] | None = None) -> Dialect:
    """The dialect ``OTEL_SEMCONV_STABILITY_OPT_IN`` asks for."""
    value = (environ if environ is not None else os.environ).get(OPT_IN_ENV, "")
    return LATEST if LATEST_EXPERIMENTAL in {v.strip() for v in value.split(",")} else V1_41

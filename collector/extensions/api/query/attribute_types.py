"""Attribute values back from the store's strings into typed OTLP values, where the conventions say the type.

The store keeps every attribute value as a string (the contrib layout's
``Map(String, String)``: integers in decimal, doubles in plain notation,
booleans ``true``/``false``, arrays and maps as JSON, bytes in base64). A
string alone does not say which it was: ``"42"`` may be a model's name. So a
value is typed only where the attribute's name fixes its type, in the
OpenTelemetry semantic conventions (the GenAI ones this collector follows,
and the general ones its spans carry) or in this project's own names:

- integers: token counts (every ``gen_ai.usage.*tokens``), ``max_tokens``,
  ``top_k``, ``seed``, ``choice.count``, embedding dimensions, finding counts,
  ports, HTTP status codes, process ids;
- doubles: sampling parameters, cost amounts and their parts, time to first
  chunk, output tokens per second, confidences and evaluation scores;
- booleans: ``gen_ai.request.stream``;
- string arrays: finish reasons, stop sequences, encoding formats.

Every other value is returned as the string the store holds. A value that
does not parse as its conventional type (a double ``top_k`` written under an
older convention) is returned as a double when it is one, else as its string.
"""

from __future__ import annotations

import json
import math
from typing import Literal

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector import findings, semconv

Kind = Literal["int", "double", "bool", "string_array"]

_INTS = {
    semconv.REQUEST_MAX_TOKENS,
    semconv.REQUEST_TOP_K,
    semconv.REQUEST_SEED,
    semconv.REQUEST_CHOICE_COUNT,
    semconv.EMBEDDINGS_DIMENSION_COUNT,
    semconv.SERVER_PORT,
    semconv.HTTP_RESPONSE_STATUS_CODE,
    findings.FINDINGS_COUNT,
    "client.port",
    "network.peer.port",
    "network.local.port",
    "process.pid",
    "process.parent_pid",
    "thread.id",
    "code.lineno",
    "code.line.number",
    "http.request.resend_count",
    "http.request.body.size",
    "http.response.body.size",
}
_DOUBLES = {
    semconv.REQUEST_TEMPERATURE,
    semconv.REQUEST_TOP_P,
    semconv.REQUEST_FREQUENCY_PENALTY,
    semconv.REQUEST_PRESENCE_PENALTY,
    semconv.USAGE_COST_AMOUNT,
    *semconv.USAGE_COST_PART.values(),
    semconv.RESPONSE_TIME_TO_FIRST_CHUNK,
    semconv.OUTPUT_TOKENS_PER_SECOND,
    semconv.EVALUATION_SCORE_VALUE,
    findings.CONFIDENCE,
}
_BOOLS = {semconv.REQUEST_STREAM}
_STRING_ARRAYS = {
    semconv.RESPONSE_FINISH_REASONS,
    semconv.REQUEST_STOP_SEQUENCES,
    semconv.REQUEST_ENCODING_FORMATS,
}
_SPECIAL_DOUBLES = {"NaN": math.nan, "+Inf": math.inf, "-Inf": -math.inf}


def kind_of(key: str) -> Kind | None:
    """The type the conventions give attribute ``key``; None: keep the stored string."""
    if key in _INTS or (key.startswith("gen_ai.usage.") and key.endswith("tokens")):
        return "int"
    if key in _DOUBLES:
        return "double"
    if key in _BOOLS:
        return "bool"
    if key in _STRING_ARRAYS:
        return "string_array"
    return None


def set_typed(out: AnyValue, key: str, text: str) -> None:
    """Fill ``out`` with the stored ``text`` of attribute ``key``, typed where the module docstring says."""
    kind = kind_of(key)
    if kind == "int":
        try:
            out.int_value = int(text)
            return
        except ValueError:
            kind = "double"
    if kind == "double":
        number = _double(text)
        if number is not None:
            out.double_value = number
            return
    elif kind == "bool" and text in ("true", "false"):
        out.bool_value = text == "true"
        return
    elif kind == "string_array":
        items = _string_list(text)
        if items is not None:
            values = out.array_value.values
            for item in items:
                values.add().string_value = item
            return
    out.string_value = text


def _double(text: str) -> float | None:
    if text in _SPECIAL_DOUBLES:
        return _SPECIAL_DOUBLES[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None  # "inf" spelled otherwise is not how the store writes it


def _string_list(text: str) -> list[str] | None:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None
    if isinstance(parsed, list) and all(isinstance(item, str) for item in parsed):
        return parsed
    return None

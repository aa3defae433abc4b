"""Stored attribute strings back to OTLP values: typed where the conventions name the type, else strings."""

from __future__ import annotations

import math
from typing import Any

import pytest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.extensions.api.query.attribute_types import set_typed
from collector.pdata import any_value


def typed(key: str, text: str) -> Any:
    value = AnyValue()
    set_typed(value, key, text)
    return any_value(value)


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [
        ("gen_ai.usage.input_tokens", "120", 120),
        ("gen_ai.usage.cache_read.input_tokens", "7", 7),
        ("gen_ai.usage.image.output_tokens", "3", 3),  # every gen_ai.usage.*tokens
        ("gen_ai.request.top_k", "0.5", 0.5),  # a double under an older convention stays a double
        ("gen_ai.request.temperature", "0.7", 0.7),
        ("gen_ai.usage.cost.amount", "1E-7", 1e-7),
        ("gen_ai.request.stream", "false", False),
        ("gen_ai.response.finish_reasons", '["stop","length"]', ["stop", "length"]),
        ("server.port", "443", 443),
        ("gen_ai.request.model", "42", "42"),  # a string that looks like a number is still a string
        ("custom.count", "3", "3"),  # not in the conventions: kept as stored
        ("gen_ai.usage.input_tokens", "lots", "lots"),  # not what the convention says: kept as stored
        ("gen_ai.request.stream", "yes", "yes"),
        ("gen_ai.response.finish_reasons", "[1, 2]", "[1, 2]"),
    ],
)
def test_values_typed_by_the_conventions(key: str, text: str, value: Any) -> None:
    assert typed(key, text) == value


def test_special_doubles_come_back_as_the_store_wrote_them() -> None:
    assert math.isnan(typed("gen_ai.request.temperature", "NaN"))
    assert typed("gen_ai.request.temperature", "+Inf") == math.inf
    assert typed("gen_ai.request.temperature", "inf") == "inf"  # not how the store writes infinity

"""How OTLP values become the strings and Arrow columns of the store's tables, for every signal.

Values are rendered exactly as the contrib clickhouseexporter renders them
(pdata's ``Value.AsString``): strings as they are, booleans ``true``/``false``,
doubles in plain decimal notation, bytes in base64, arrays and maps as compact
JSON. Attribute maps are built as Arrow ``map<string, string>`` columns from
flat lists, and list columns (Nested ones) from offsets, so a table's walker
appends plain Python values and Arrow makes the columns in C.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pyarrow as pa
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SERVICE_NAME_KEY = "service.name"
TRACE_ID_BYTES = 16
SPAN_ID_BYTES = 8


def format_double(value: float) -> str:
    """A double as Go's strconv.FormatFloat(v, 'f', -1, 64): shortest digits, never an exponent."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    if "e" in text or "E" in text:
        text = format(Decimal(text), "f")
    elif text.endswith(".0"):
        text = text[:-2]
    return text


def _raw(value: AnyValue) -> Any:
    """An AnyValue as a plain Python value for JSON, as pdata's AsRaw gives it."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        d = value.double_value
        return d if math.isfinite(d) else format_double(d)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value":
        return [_raw(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _raw(kv.value) for kv in value.kvlist_value.values}
    return None


def _to_json(raw: Any) -> str:
    return json.dumps(raw, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def value_as_string(value: AnyValue) -> str:
    """An AnyValue as the one string the ``Map(..., String)`` columns store."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "int_value":
        return str(value.int_value)
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "double_value":
        return format_double(value.double_value)
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind == "array_value" or kind == "kvlist_value":
        return _to_json(_raw(value))
    return ""


def attributes_map(attributes: Iterable[KeyValue]) -> dict[str, str]:
    """Attributes as the string map the table stores; a later duplicate key wins, as in pdata."""
    return {kv.key: value_as_string(kv.value) for kv in attributes}


class MapBuilder:
    """Builds an Arrow ``map<string, string>`` column from flat key and value lists plus offsets.

    ``rendered`` caches the JSON of array and map values by their serialized
    bytes: the same list (finish reasons, stop sequences) recurs across a batch,
    and rendering JSON costs far more than serializing.
    """

    __slots__ = ("keys", "values", "offsets", "rendered")

    def __init__(self, rendered: dict[bytes, str]) -> None:
        self.keys: list[str] = []
        self.values: list[str] = []
        self.offsets: list[int] = [0]
        self.rendered = rendered

    def add(self, attributes: Iterable[KeyValue]) -> None:
        add_key, add_value, rendered = self.keys.append, self.values.append, self.rendered
        for kv in attributes:
            value = kv.value
            add_key(kv.key)
            kind = value.WhichOneof("value")
            # Most GenAI attributes are strings and integers: no general dispatch for them.
            if kind == "string_value":
                add_value(value.string_value)
            elif kind == "int_value":
                add_value(str(value.int_value))
            elif kind == "array_value" or kind == "kvlist_value":
                wire = value.SerializeToString()
                text = rendered.get(wire)
                if text is None:
                    text = rendered[wire] = value_as_string(value)
                add_value(text)
            else:
                add_value(value_as_string(value))
        self.offsets.append(len(self.keys))

    def add_flat(self, keys: list[str], values: list[str]) -> None:
        self.keys.extend(keys)
        self.values.extend(values)
        self.offsets.append(len(self.keys))

    def build(self) -> pa.MapArray:
        return pa.MapArray.from_arrays(
            pa.array(self.offsets, pa.int32()), pa.array(self.keys, pa.string()), pa.array(self.values, pa.string())
        )


class ListBuilder:
    """Offsets of a list column whose items are appended elsewhere."""

    __slots__ = ("offsets",)

    def __init__(self) -> None:
        self.offsets: list[int] = [0]

    def wrap(self, values: pa.Array) -> pa.ListArray:
        return pa.ListArray.from_arrays(pa.array(self.offsets, pa.int32()), values)


def resource_columns(attributes: Iterable[KeyValue]) -> tuple[list[str], list[str], str]:
    """Resource (or scope) attributes as the flat key and value lists of a map column, and the service name.

    The service name is ``service.name`` rendered as a string, empty when absent, as the contrib exporter takes it.
    """
    rendered = attributes_map(attributes)
    return list(rendered), list(rendered.values()), rendered.get(SERVICE_NAME_KEY, "")


def id_hex_or_empty(raw: bytes) -> str:
    """A trace or span ID as lower-case hex, empty when absent or all zeros (pdata's ``TraceIDToHexOrEmptyString``)."""
    return raw.hex() if raw.strip(b"\0") else ""


def id_hex_fixed(raw: bytes, size: int) -> str:
    """A trace or span ID as the hex of its ``size`` bytes; an absent one is all zeros, as pdata prints it."""
    return raw.hex() if raw else "00" * size

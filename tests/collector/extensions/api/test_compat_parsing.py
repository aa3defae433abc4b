"""Go-style durations and URL trace ids, as Jaeger and Tempo read them.

Go's time.ParseDuration (units ns, us/µs, ms, s, m, h; fractions and compounds) for Jaeger's minDuration and
Tempo's; jaegertracing/jaeger apiv3.TraceIDFromString (hex, or base64 of 16 bytes) and grafana/tempo
pkg/util.HexStringToTraceID (hex up to 32 digits) for trace ids.
"""

from __future__ import annotations

import base64

import pytest

from collector.extensions.api.durations import PROMETHEUS_UNITS, parse_duration
from collector.extensions.api.traceid import parse_hex_trace_id, parse_jaeger_trace_id


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("0", 0), ("1.5s", 1_500_000_000), ("1h30m", 5_400_000_000_000), ("250ms", 250_000_000), ("2us", 2_000),
     ("2µs", 2_000), ("-1s", -1_000_000_000), ("1ns", 1)],
)  # fmt: skip
def test_go_durations(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


def test_prometheus_units_only_where_asked() -> None:
    assert parse_duration("1d", PROMETHEUS_UNITS) == 86_400_000_000_000
    with pytest.raises(ValueError, match='unknown unit "d"'):
        parse_duration("1d")


@pytest.mark.parametrize("text", ["", "s", "5", "1.2.3s", "1x", "--1s"])
def test_not_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_trace_ids() -> None:
    assert parse_hex_trace_id("1") == "0" * 31 + "1"
    assert parse_hex_trace_id("ABCDEF") == "0" * 26 + "abcdef"
    raw = bytes(range(16))
    assert parse_jaeger_trace_id(base64.b64encode(raw).decode()) == raw.hex()
    assert parse_jaeger_trace_id(base64.urlsafe_b64encode(bytes([251] * 16)).decode().rstrip("=")) == "fb" * 16
    for bad in ("", "g", "a" * 33, "!" * 20):
        with pytest.raises(ValueError):
            parse_jaeger_trace_id(bad)
    with pytest.raises(ValueError):
        parse_hex_trace_id(base64.b64encode(raw).decode())

"""Parameter parsers: times to the nanosecond, durations, ids, lists; and times written back."""

from __future__ import annotations

import pytest

from collector.extensions.api.params import (
    choices_list_parser,
    format_duration,
    format_timestamp,
    hex_id_parser,
    pair_parser,
    parse_duration,
    parse_timestamp,
)

T = 1_748_858_400 * 1_000_000_000  # 2025-06-02T10:00:00Z


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("2025-06-02T10:00:00Z", T),
        ("2025-06-02T10:00:00.123456789Z", T + 123_456_789),
        ("2025-06-02T12:30:00.5+02:30", T + 500_000_000),
        ("2025-06-02 10:00:00z", T),
        ("1748858400", T),
        ("1748858400.000000001", T + 1),
    ],
)
def test_times_parse_to_the_nanosecond(text: str, nanos: int) -> None:
    assert parse_timestamp(text) == nanos


@pytest.mark.parametrize("text", ["2025-06-02", "2025-13-02T10:00:00Z", "2025-06-02T10:00:00", "-5", "1e9", "now"])
def test_what_is_not_a_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(T, "2025-06-02T10:00:00Z"), (T + 5_000_000, "2025-06-02T10:00:00.005Z"),
     (T + 5_000, "2025-06-02T10:00:00.000005Z"), (T + 5, "2025-06-02T10:00:00.000000005Z")],
)  # fmt: skip
def test_times_are_written_with_the_digits_they_need(nanos: int, text: str) -> None:
    assert format_timestamp(nanos) == text
    assert parse_timestamp(text) == nanos


def test_durations_and_their_spelling() -> None:
    assert parse_duration("1.5s") == 1_500_000_000
    assert parse_duration("250ms") == 250_000_000
    assert [format_duration(s) for s in (2_678_400.0, 1800.0, 1.5, 90.0)] == ["744h", "30m", "1.5s", "90s"]


def test_ids_lists_and_pairs() -> None:
    assert hex_id_parser(32, "trace id")("AB" * 16) == "ab" * 16
    with pytest.raises(ValueError, match="expected a trace id of 32 hex digits"):
        hex_id_parser(32, "trace id")("ab" * 15 + " x")
    assert choices_list_parser(("model", "tenant"))("tenant, model") == ("tenant", "model")
    assert pair_parser(100)("a.b=c=d") == ("a.b", "c=d")
    assert pair_parser(100)("empty=") == ("empty", "")

"""decode(): YAML mappings into frozen config dataclasses, every mistake reported with its dotted path."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from collector.config.decode import decode
from collector.config.problems import ConfigError, ConfigProblem
from collector.config.types import Duration, HostPort, Secret


@dataclass(frozen=True)
class Limits:
    size: int = 1
    ceiling: int = 10

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.size < 1:
            yield "size", "must be at least 1"
        if self.ceiling < self.size:
            yield "ceiling", f"must be at least size ({self.size})"


@dataclass(frozen=True)
class Widget:
    name: str = "w"
    count: int = 0
    ratio: float = 1.0
    enabled: bool = False
    mode: Literal["fast", "slow"] = "fast"
    tags: tuple[str, ...] = ()
    weights: dict[str, int] = field(default_factory=dict)
    limits: Limits = field(default_factory=Limits)
    extra: Limits | None = None
    note: str | None = None
    wait: Duration = Duration(1.0)
    address: HostPort = HostPort("127.0.0.1", 4318)
    token: Secret = field(default_factory=lambda: Secret(""))


@dataclass(frozen=True)
class Needs:
    target: str
    port: int


def _problems(cls: type, raw: Any, path: str = "w") -> list[str]:
    with pytest.raises(ConfigError) as error:
        decode(cls, raw, path)
    return [str(p) for p in error.value.problems]


def test_no_settings_means_all_defaults() -> None:
    assert decode(Widget, None, "w") == Widget()
    assert decode(Widget, {}, "w") == Widget()


def test_values_of_every_kind_are_decoded() -> None:
    raw = {
        "name": "n",
        "count": 3,
        "ratio": 2,
        "enabled": True,
        "mode": "slow",
        "tags": ["a", "b"],
        "weights": {"x": 1},
        "limits": {"size": 2},
        "extra": {"ceiling": 5},
        "note": "hi",
        "wait": "1m30s",
        "address": "0.0.0.0:4317",
        "token": "s3cret",
    }
    widget = decode(Widget, raw, "w")
    assert widget == Widget(
        name="n",
        count=3,
        ratio=2.0,
        enabled=True,
        mode="slow",
        tags=("a", "b"),
        weights={"x": 1},
        limits=Limits(size=2),
        extra=Limits(ceiling=5),
        note="hi",
        wait=Duration(90.0),
        address=HostPort("0.0.0.0", 4317),
        token=Secret("s3cret"),
    )
    assert isinstance(widget.ratio, float) and isinstance(widget.wait, Duration)
    assert widget.token.reveal() == "s3cret"


def test_the_result_is_frozen() -> None:
    widget = decode(Widget, {"count": 1}, "w")
    with pytest.raises(dataclasses.FrozenInstanceError):
        widget.count = 2  # type: ignore[misc]


def test_numbers_are_accepted_as_text() -> None:
    assert decode(Widget, {"name": 5, "tags": [1, 2.5]}, "w") == Widget(name="5", tags=("1", "2.5"))


def test_optional_settings_block_present_but_empty_is_on_with_defaults() -> None:
    assert decode(Widget, {"extra": None}, "w").extra == Limits()
    assert decode(Widget, {}, "w").extra is None


def test_optional_scalar_may_be_null() -> None:
    assert decode(Widget, {"note": None}, "w").note is None


def test_null_list_and_mapping_are_empty() -> None:
    assert decode(Widget, {"tags": None, "weights": None, "limits": None}, "w") == Widget()


def test_unknown_key_lists_the_known_ones() -> None:
    assert _problems(Limits, {"sise": 2}, "processors.batch") == [
        "processors.batch.sise: unknown key; expected one of ceiling, size"
    ]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"count": "5"}, 'w.count: expected an integer, got "5"'),
        ({"count": True}, "w.count: expected an integer, got true"),
        ({"count": 1.5}, "w.count: expected an integer, got 1.5"),
        ({"count": None}, "w.count: expected an integer, got nothing"),
        ({"ratio": "x"}, 'w.ratio: expected a number, got "x"'),
        ({"ratio": False}, "w.ratio: expected a number, got false"),
        ({"enabled": "yes please"}, 'w.enabled: expected true or false, got "yes please"'),
        ({"enabled": 1}, "w.enabled: expected true or false, got 1"),
        ({"name": True}, "w.name: expected a string, got true"),
        ({"name": {"a": 1}}, "w.name: expected a string, got a mapping"),
        ({"mode": "medium"}, 'w.mode: expected one of fast, slow, got "medium"'),
        ({"mode": True}, "w.mode: expected one of fast, slow, got true"),
        ({"tags": "a"}, 'w.tags: expected a list, got "a"'),
        ({"tags": ["a", [1]]}, "w.tags[1]: expected a string, got a list"),
        ({"weights": [1]}, "w.weights: expected a mapping, got a list"),
        ({"weights": {"x": "heavy"}}, 'w.weights.x: expected an integer, got "heavy"'),
        ({"limits": 5}, "w.limits: expected a mapping, got 5"),
        ({"limits": {"size": "q"}}, 'w.limits.size: expected an integer, got "q"'),
        ({"extra": {"size": []}}, "w.extra.size: expected an integer, got a list"),
        ({"wait": "banana"}, 'w.wait: expected a duration like 72h, got "banana"'),
        ({"wait": None}, "w.wait: expected a duration like 72h, got nothing"),
        ({"address": "4318"}, 'w.address: expected host:port like 127.0.0.1:4318, got "4318"'),
        ({"token": ["x"]}, "w.token: expected a string"),
    ],
)
def test_wrong_value_names_its_path_and_the_value(raw: dict[str, Any], problem: str) -> None:
    assert _problems(Widget, raw) == [problem]


@pytest.mark.parametrize(("raw", "shown"), [([], "a list"), ("text", '"text"'), (3, "3")])
def test_component_settings_must_be_a_mapping(raw: Any, shown: str) -> None:
    assert _problems(Widget, raw, "exporters.debug") == [f"exporters.debug: expected a mapping, got {shown}"]


def test_missing_required_fields_are_reported() -> None:
    # In the order the fields are declared.
    expected = ["receivers.x.target: is required", "receivers.x.port: is required"]
    assert _problems(Needs, {}, "receivers.x") == expected
    assert _problems(Needs, None, "receivers.x") == expected
    assert _problems(Needs, {"target": "t"}, "receivers.x") == ["receivers.x.port: is required"]


def test_validate_hook_problems_are_under_the_component_path() -> None:
    assert _problems(Widget, {"limits": {"size": 0, "ceiling": -1}}, "exporters.e") == [
        "exporters.e.limits.size: must be at least 1",
        "exporters.e.limits.ceiling: must be at least size (0)",
    ]


def test_validate_hook_runs_only_on_well_typed_settings() -> None:
    # size is wrong, so ceiling's cross-field check would compare against garbage: only the type error shows.
    assert _problems(Limits, {"size": "zero", "ceiling": -1}, "p") == ['p.size: expected an integer, got "zero"']


def test_every_problem_is_collected_in_one_error() -> None:
    raw = {"bogus": 1, "count": "x", "limits": {"size": "q", "more": 2}, "wait": "soon"}
    with pytest.raises(ConfigError) as error:
        decode(Widget, raw, "exporters.w")
    assert error.value.problems == [
        ConfigProblem(
            "exporters.w.bogus",
            "unknown key; expected one of address, count, enabled, extra, limits, mode, name, note, ratio, tags, "
            "token, wait, weights",
        ),
        ConfigProblem("exporters.w.count", 'expected an integer, got "x"'),
        ConfigProblem("exporters.w.limits.size", 'expected an integer, got "q"'),
        ConfigProblem("exporters.w.limits.more", "unknown key; expected one of ceiling, size"),
        ConfigProblem("exporters.w.wait", 'expected a duration like 72h, got "soon"'),
    ]
    assert str(error.value).splitlines() == [str(p) for p in error.value.problems]


def test_problem_without_a_path_is_just_the_message() -> None:
    assert str(ConfigProblem("", "config file x does not exist")) == "config file x does not exist"
    assert str(ConfigProblem("a.b", "is required")) == "a.b: is required"


def test_secret_value_never_appears_in_the_decoded_repr() -> None:
    widget = decode(Widget, {"token": "hunter2"}, "w")
    assert "hunter2" not in repr(widget)

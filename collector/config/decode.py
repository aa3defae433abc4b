"""Turn a YAML mapping into a component's typed, frozen config dataclass.

Every component declares its settings as a frozen dataclass with defaults. This
module walks the dataclass's type hints and the user's YAML side by side and
collects every mistake (unknown key, wrong type, bad value) as a problem naming
its YAML path, so that one run reports them all.

A config class may define ``validate(self) -> Iterable[tuple[str, str]]`` for
checks that span fields; it yields (key relative to the component, message).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable
from typing import Any, Literal, TypeVar, Union

from collector.config.loader import EnvValue
from collector.config.problems import ConfigError, ConfigProblem, join_path
from collector.config.types import show_value

T = TypeVar("T")

_TYPE_NAMES: dict[type, str] = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def decode(cls: type[T], raw: Any, path: str) -> T:
    """Build ``cls`` from ``raw`` (None means all defaults), or raise ConfigError."""
    problems: list[ConfigProblem] = []
    value = _decode_dataclass(cls, raw, path, problems)
    if problems:
        raise ConfigError(problems)
    return typing.cast(T, value)


def _decode_dataclass(cls: type, raw: Any, path: str, problems: list[ConfigProblem]) -> Any:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        problems.append(ConfigProblem(path, f"expected a mapping, got {show_value(raw)}"))
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    known = sorted(fields)
    values: dict[str, Any] = {}
    before = len(problems)
    for key, item in raw.items():
        key_path = join_path(path, str(key))
        if key not in fields:
            problems.append(ConfigProblem(key_path, f"unknown key; expected one of {', '.join(known)}"))
            continue
        values[key] = _decode_value(hints[key], item, key_path, problems)
    for name, field in fields.items():
        if name in values:
            continue
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            problems.append(ConfigProblem(join_path(path, name), "is required"))
    if len(problems) > before:
        return None
    instance = cls(**values)
    validate = getattr(instance, "validate", None)
    if callable(validate):
        try:
            for key, message in typing.cast(Iterable[tuple[str, str]], validate()):
                problems.append(ConfigProblem(join_path(path, key), message))
        except ValueError as exc:
            # A check that fails on a value it did not expect still reports a problem, not a traceback.
            problems.append(ConfigProblem(path, f"invalid settings: {exc}"))
    return instance


def _decode_value(tp: Any, raw: Any, path: str, problems: list[ConfigProblem]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if isinstance(raw, EnvValue) and origin not in (Union, types.UnionType):
        raw = str(raw) if _takes_text(tp) else raw.typed
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)][0]
        if raw is None and type(None) in args:
            # As in the OpenTelemetry Collector, a section present with no settings
            # (``http:``) is switched on with its defaults.
            if _is_settings_block(inner):
                return _decode_dataclass(inner, {}, path, problems)
            return None
        return _decode_value(inner, raw, path, problems)
    if origin is Literal:
        if raw in args and not isinstance(raw, bool):
            return raw
        choices = ", ".join(str(a) for a in args)
        problems.append(ConfigProblem(path, f"expected one of {choices}, got {show_value(raw)}"))
        return None
    if origin in (list, tuple):
        if raw is None:
            return ()
        if not isinstance(raw, list):
            problems.append(ConfigProblem(path, f"expected a list, got {show_value(raw)}"))
            return None
        items = [_decode_value(args[0], item, f"{path}[{i}]", problems) for i, item in enumerate(raw)]
        return tuple(items)
    if origin is dict:
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            problems.append(ConfigProblem(path, f"expected a mapping, got {show_value(raw)}"))
            return None
        return {str(k): _decode_value(args[1], v, join_path(path, str(k)), problems) for k, v in raw.items()}
    from_config = getattr(tp, "from_config", None)
    if from_config is not None:
        try:
            return from_config(raw)
        except ValueError as exc:
            problems.append(ConfigProblem(path, str(exc)))
            return None
    if _is_settings_block(tp):
        return _decode_dataclass(tp, raw, path, problems)
    return _decode_scalar(tp, raw, path, problems)


def _takes_text(tp: Any) -> bool:
    """Whether a field of type ``tp`` reads an expanded ``${env:...}`` as its text rather than YAML-typed."""
    if typing.get_origin(tp) is Literal:
        return all(isinstance(arg, str) for arg in typing.get_args(tp))
    return tp is str or hasattr(tp, "from_config")


def _is_settings_block(tp: Any) -> bool:
    """A nested config dataclass (as opposed to a value type such as HostPort)."""
    return isinstance(tp, type) and dataclasses.is_dataclass(tp) and not hasattr(tp, "from_config")


def _decode_scalar(tp: type, raw: Any, path: str, problems: list[ConfigProblem]) -> Any:
    if tp is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if tp is str and isinstance(raw, int | float) and not isinstance(raw, bool):
        return str(raw)
    if isinstance(raw, tp) and not (tp is int and isinstance(raw, bool)):
        return raw
    expected = _TYPE_NAMES.get(tp, tp.__name__)
    problems.append(ConfigProblem(path, f"expected {expected}, got {show_value(raw)}"))
    return None

"""Read otel-config.yaml and expand ``${env:NAME}`` references, as the OpenTelemetry Collector does.

Expansion happens on the parsed YAML, value by value. A value that is exactly one
reference becomes an EnvValue: its text, plus the type that text reads as in YAML,
so ``${env:PORT}`` fills an integer field while ``${env:PASSWORD}`` = ``0123``
stays the string it is. A reference inside a longer string is substituted as
text. ``$$`` is a literal dollar sign. An unset variable with no ``:-default``
expands to nothing.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from collector.config.problems import ConfigError, ConfigProblem, join_path

_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_ENV_REFERENCE = re.compile(r"env:([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)
# YAML aliases let a few lines stand for billions of values; no real configuration comes near this.
MAX_VALUES = 1_000_000
TOO_DEEP = "nested too deeply"


class _TooManyValues(Exception):
    """The document, with its aliases expanded, holds more than MAX_VALUES values."""


class EnvValue(str):
    """A config value that was exactly one ``${env:...}`` reference.

    It is the expanded text; ``typed`` is what that text reads as in YAML. The
    decoder picks one by the field's type, so a string field keeps the text.
    """

    typed: Any

    def __new__(cls, text: str) -> EnvValue:
        value = super().__new__(cls, text)
        value.typed = _typed_scalar(text)
        return value


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key written twice in one mapping, as the OpenTelemetry Collector does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key; SafeLoader reports it below
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f'key "{key}" is defined twice', key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path) -> dict[str, Any]:
    """Parse the file at ``path`` into a mapping, or raise ConfigError with one clear line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem("", f"config file {path} does not exist")]) from None
    except UnicodeDecodeError as exc:
        message = f"{path}: not UTF-8 text (byte {exc.start} is 0x{exc.object[exc.start]:02x})"
        raise ConfigError([ConfigProblem("", message)]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem("", f"cannot read config file {path}: {exc.strerror}")]) from None
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([ConfigProblem("", f"{path}: {problem}{where}")]) from None
    except RecursionError:
        raise ConfigError([ConfigProblem("", f"{path}: {TOO_DEEP}")]) from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError([ConfigProblem("", f"{path}: expected a mapping at the top level")])
    return document


def expand_env(document: Any, environ: Mapping[str, str] | None = None, path: str = "") -> Any:
    """Return ``document`` with every ``${env:...}`` reference replaced; raise ConfigError on a bad one."""
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    try:
        expanded = _expand(document, env, path, problems, set(), [MAX_VALUES])
    except RecursionError:
        raise ConfigError([ConfigProblem(path, TOO_DEEP)]) from None
    except _TooManyValues:
        message = f"more than {MAX_VALUES} values once YAML aliases are expanded"
        raise ConfigError([ConfigProblem(path, message)]) from None
    if problems:
        raise ConfigError(problems)
    return expanded


def _expand(
    node: Any, env: Mapping[str, str], path: str, problems: list[ConfigProblem], open_: set[int], budget: list[int]
) -> Any:
    """``node`` expanded; ``open_`` holds the containers being expanded (an alias to one is a cycle)."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooManyValues
    if isinstance(node, dict | list):
        if id(node) in open_:
            problems.append(ConfigProblem(path, "contains itself through a YAML alias"))
            return None
        open_.add(id(node))
        try:
            if isinstance(node, dict):
                return {
                    key: _expand(value, env, join_path(path, str(key)), problems, open_, budget)
                    for key, value in node.items()
                }
            return [_expand(item, env, f"{path}[{i}]", problems, open_, budget) for i, item in enumerate(node)]
        finally:
            open_.discard(id(node))
    if not isinstance(node, str) or "$" not in node:
        return node
    whole = _REFERENCE.fullmatch(node)
    if whole and whole.group(0) != "$$":
        return EnvValue(_resolve(whole.group(1), env, path, problems))
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else _resolve(m.group(1), env, path, problems), node)


def _resolve(reference: str, env: Mapping[str, str], path: str, problems: list[ConfigProblem]) -> str:
    match = _ENV_REFERENCE.fullmatch(reference)
    if match is None:
        problems.append(
            ConfigProblem(path, f"cannot expand ${{{reference}}}; write ${{env:NAME}} or ${{env:NAME:-default}}")
        )
        return ""
    name, default = match.group(1), match.group(2)
    value = env.get(name)
    if value is None or (value == "" and default is not None):
        return default or ""
    return value


def _typed_scalar(text: str) -> Any:
    """Read an expanded value as YAML would, so ports become integers and flags booleans."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, str | int | float | bool) else text

"""Fuzz the config loader: random YAML and mutations of the shipped otel-config.yaml.

``load_config`` either returns a config or raises ConfigError whose problems
are one line each (no newline inside a problem, never a traceback); any other
exception is a bug. ``check_listeners`` (which binds sockets) is not called.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from collector.config.problems import ConfigError
from collector.config.service import load_config
from collector.registry import default_registry
from tests.conftest import REPO_ROOT
from tests.fuzz.profiles import fuzz_settings

SHIPPED = (REPO_ROOT / "otel-config.yaml").read_text(encoding="utf-8")
SHIPPED_DOCUMENT: dict[str, Any] = yaml.safe_load(SHIPPED)
REGISTRY = default_registry()
ENVIRON: dict[str, str] = {"PORT": "4318", "HOST": "127.0.0.1", "EMPTY": "", "TEXT": "a: [b"}


def loads_or_refuses(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> None:
    path = tmp_path / "otel-config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_config(path, REGISTRY, ENVIRON if environ is None else environ)
    except ConfigError as error:
        assert error.problems, "a ConfigError must name at least one problem"
        for problem in error.problems:
            line = str(problem)
            assert line and "\n" not in line and "\r" not in line, f"a problem must be one line: {line!r}"
            assert "Traceback" not in line


yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.sampled_from(
        [
            "${env:PORT}",
            "127.0.0.1:${env:PORT}",
            "${env:MISSING:-127.0.0.1:0}",
            "${env:TEXT}",
            "${env:EMPTY:-}",
            "${nope}",
            "${",
            "$$",
            "${env:}",
            "${env:1BAD}",
            "72h",
            "1m30s",
            "-5s",
            "0",
            "http://127.0.0.1:1",
            "chdb://./x",
            "[::1]:0",
            ":99999",
            "µs",
        ]
    ),
)
yaml_values = st.recursive(
    yaml_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=12), inner, max_size=3)),
    max_leaves=12,
)


@fuzz_settings(150)
@given(st.text(max_size=300))
@example("a: !!python/object:os.system ls\n")
@example("a: &x [*x]\n")
@example("? [a, b]\n: 1\n")
@example("receivers: {otlp: {protocols: {http: {endpoint: ${env:PORT}}}}}\n")
@example("\ufeffservice: {}\n")
def test_random_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    loads_or_refuses(tmp_path_factory.mktemp("config"), text)


@fuzz_settings(150)
@given(st.text(alphabet=string.printable + "{}[]:-&*!|>'\"%@`#,?", max_size=300))
def test_random_yaml_like_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    loads_or_refuses(tmp_path_factory.mktemp("config"), text)


@fuzz_settings(150)
@given(
    st.dictionaries(
        st.sampled_from(["receivers", "processors", "exporters", "extensions", "service", "x"]), yaml_values, max_size=5
    )
)
def test_random_documents(tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any]) -> None:
    loads_or_refuses(tmp_path_factory.mktemp("config"), yaml.safe_dump(document))


@st.composite
def mutated_shipped_config(draw: st.DrawFn) -> dict[str, Any]:
    """The shipped config with a few values, keys or sections replaced, dropped or renamed."""
    document: dict[str, Any] = yaml.safe_load(SHIPPED)
    for _ in range(draw(st.integers(1, 4))):
        containers = list(_containers(document))
        parent = draw(st.sampled_from(containers))
        if isinstance(parent, dict) and parent:
            key = draw(st.sampled_from(sorted(parent, key=str)))
            action = draw(st.sampled_from(["replace", "drop", "rename", "add"]))
            if action == "replace":
                parent[key] = draw(yaml_values)
            elif action == "drop":
                del parent[key]
            elif action == "rename":
                parent[draw(st.text(max_size=12))] = parent.pop(key)
            else:
                parent[draw(st.text(max_size=12))] = draw(yaml_values)
        elif isinstance(parent, list) and parent:
            parent[draw(st.integers(0, len(parent) - 1))] = draw(yaml_values)
    return document


def _containers(node: Any) -> Any:
    if isinstance(node, dict | list):
        yield node
        for child in node.values() if isinstance(node, dict) else node:
            yield from _containers(child)


@fuzz_settings(150)
@given(mutated_shipped_config())
def test_mutations_of_the_shipped_config(tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any]) -> None:
    loads_or_refuses(tmp_path_factory.mktemp("config"), yaml.safe_dump(document, allow_unicode=True))


@fuzz_settings(100)
@given(st.data())
def test_byte_mutations_of_the_shipped_config(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject) -> None:
    text = SHIPPED
    for _ in range(data.draw(st.integers(1, 3))):
        position = data.draw(st.integers(0, len(text)))
        text = text[:position] + data.draw(st.text(max_size=6)) + text[position + data.draw(st.integers(0, 6)) :]
    loads_or_refuses(tmp_path_factory.mktemp("config"), text)


@fuzz_settings(25)
@given(
    environ=st.dictionaries(
        st.sampled_from(
            [
                "GENAI_COLLECTOR_OTLP_HTTP_ENDPOINT",
                "OPENAI_API_KEY",
                "GENAI_COLLECTOR_CLICKHOUSE_ENDPOINT",
                "GENAI_COLLECTOR_PRICE_OVERRIDES",
                "GENAI_COLLECTOR_ADMIN_ENDPOINT",
            ]
        ),
        st.text(max_size=30),
        max_size=5,
    )
)
def test_the_shipped_config_with_any_environment(
    tmp_path_factory: pytest.TempPathFactory, environ: dict[str, str]
) -> None:
    loads_or_refuses(tmp_path_factory.mktemp("config"), SHIPPED, environ)


@pytest.mark.parametrize("depth", [50, 1_000, 10_000])
def test_deeply_nested_yaml(tmp_path: Path, depth: int) -> None:
    loads_or_refuses(tmp_path, "receivers: " + "[" * depth + "]" * depth + "\n")


def test_an_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (tmp_path / "bomb.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="values once YAML aliases are expanded"):
        load_config(tmp_path / "bomb.yaml", REGISTRY, {})


def test_an_alias_cycle_is_one_problem(tmp_path: Path) -> None:
    (tmp_path / "cycle.yaml").write_text("receivers: &r {otlp: *r}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_config(tmp_path / "cycle.yaml", REGISTRY, {})
    assert "receivers.otlp: contains itself through a YAML alias" in [str(p) for p in error.value.problems]

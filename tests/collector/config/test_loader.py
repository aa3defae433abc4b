"""Reading otel-config.yaml into a mapping and expanding ``${env:...}`` references in it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from collector.config.loader import EnvValue, expand_env, load_yaml
from collector.config.problems import ConfigError

BAD_REFERENCE = "cannot expand ${{{}}}; write ${{env:NAME}} or ${{env:NAME:-default}}"


def _load_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as error:
        load_yaml(path)
    return [str(p) for p in error.value.problems]


def _expand_problems(document: Any, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as error:
        expand_env(document, environ)
    return [str(p) for p in error.value.problems]


def test_load_yaml_reads_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("receivers:\n  otlp:\n    protocols:\n      http:\nservice: {}\n", encoding="utf-8")
    assert load_yaml(path) == {"receivers": {"otlp": {"protocols": {"http": None}}}, "service": {}}


def test_load_yaml_of_an_empty_file_is_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing here\n", encoding="utf-8")
    assert load_yaml(path) == {}


def test_load_yaml_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert _load_problems(path) == [f"config file {path} does not exist"]


def test_load_yaml_directory_is_one_line(tmp_path: Path) -> None:
    assert _load_problems(tmp_path) == [f"cannot read config file {tmp_path}: Is a directory"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("receivers: [\n", "expected the node content, but found '<stream end>' at line 2, column 1"),
        ("receivers:\n  otlp:\n\tbad: 1\n", "found character '\\t' that cannot start any token at line 3, column 1"),
        ("a: *missing\n", "found undefined alias 'missing' at line 1, column 4"),
    ],
)
def test_load_yaml_invalid_yaml_names_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    assert _load_problems(path) == [f"{path}: {message}"]


def test_load_yaml_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- receivers\n", encoding="utf-8")
    assert _load_problems(path) == [f"{path}: expected a mapping at the top level"]


def test_load_yaml_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("exporters:\n  clickhouse:\n    database: caf\xe9\n".encode("latin-1"))
    problems = _load_problems(path)
    assert len(problems) == 1
    assert str(path) in problems[0]


def test_load_yaml_rejects_a_key_defined_twice(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("exporters:\n  debug:\nexporters:\n  clickhouse:\n", encoding="utf-8")
    problems = _load_problems(path)
    assert len(problems) == 1
    assert str(path) in problems[0] and "exporters" in problems[0]


def test_expand_env_substitutes_a_set_variable() -> None:
    assert expand_env({"endpoint": "${env:EP}"}, {"EP": "127.0.0.1:9999"}) == {"endpoint": "127.0.0.1:9999"}


def test_expand_env_default_applies_when_unset_or_empty() -> None:
    document = {"a": "${env:UNSET:-fallback}", "b": "${env:EMPTY:-fallback}", "c": "${env:SET:-fallback}"}
    assert expand_env(document, {"EMPTY": "", "SET": "given"}) == {"a": "fallback", "b": "fallback", "c": "given"}


def test_expand_env_unset_without_default_is_empty() -> None:
    assert expand_env({"a": "${env:UNSET}", "b": "x${env:UNSET}y"}, {}) == {"a": "", "b": "xy"}


def test_expand_env_empty_default_is_empty() -> None:
    assert expand_env({"a": "${env:UNSET:-}"}, {}) == {"a": ""}


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("4318", 4318),
        ("true", True),
        ("false", False),
        ("1.5", 1.5),
        ("72h", "72h"),
        ("127.0.0.1:4318", "127.0.0.1:4318"),
        ("[1, 2]", "[1, 2]"),
        ("a: b", "a: b"),
        ("null", "null"),
    ],
)
def test_expand_env_whole_value_keeps_its_text_and_its_yaml_scalar_type(text: str, value: Any) -> None:
    expanded = expand_env({"v": "${env:V}"}, {"V": text})["v"]
    assert isinstance(expanded, EnvValue)
    assert str(expanded) == text
    assert expanded.typed == value
    assert type(expanded.typed) is type(value)


def test_expand_env_default_of_a_whole_value_is_typed_too() -> None:
    port = expand_env({"port": "${env:UNSET:-8080}"}, {})["port"]
    assert (str(port), port.typed) == ("8080", 8080)


def test_expand_env_reference_inside_text_stays_text() -> None:
    expanded = expand_env({"endpoint": "127.0.0.1:${env:PORT}", "two": "${env:PORT}${env:PORT}"}, {"PORT": "9"})
    assert expanded == {"endpoint": "127.0.0.1:9", "two": "99"}


def test_expand_env_double_dollar_is_a_literal_dollar() -> None:
    document = {"a": "$$", "b": "pa$$word", "c": "$${env:X}", "d": "$$${env:X}"}
    assert expand_env(document, {"X": "v"}) == {"a": "$", "b": "pa$word", "c": "${env:X}", "d": "$v"}


def test_expand_env_lone_dollar_is_left_alone() -> None:
    assert expand_env({"a": "$", "b": "cost $5", "c": "${env:X"}, {"X": "v"}) == {
        "a": "$",
        "b": "cost $5",
        "c": "${env:X",
    }


def test_expand_env_walks_lists_and_nested_mappings() -> None:
    document = {"service": {"extensions": ["${env:EXT}", "admin/${env:NAME}"], "n": 3, "flag": None}}
    assert expand_env(document, {"EXT": "admin", "NAME": "two"}) == {
        "service": {"extensions": ["admin", "admin/two"], "n": 3, "flag": None}
    }


def test_expand_env_leaves_the_input_unchanged() -> None:
    document = {"a": ["${env:X}"], "b": {"c": "${env:X}"}}
    before = copy.deepcopy(document)
    expand_env(document, {"X": "1"})
    assert document == before


def test_expand_env_reads_the_process_environment_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENAI_COLLECTOR_TEST_LOADER", "from-os")
    assert expand_env({"a": "${env:GENAI_COLLECTOR_TEST_LOADER}"}) == {"a": "from-os"}


@pytest.mark.parametrize("reference", ["FOO", "file:x", "env:", "env:1BAD", " env:X ", "env:X-Y"])
def test_expand_env_bad_reference_is_a_problem(reference: str) -> None:
    assert _expand_problems({"k": "${" + reference + "}"}, {"X": "v"}) == ["k: " + BAD_REFERENCE.format(reference)]


def test_expand_env_collects_every_bad_reference_with_its_path() -> None:
    document = {
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": "${FOO}"}}}},
        "service": {"extensions": ["ok", "x-${file:y}"]},
    }
    assert _expand_problems(document, {}) == [
        "receivers.otlp.protocols.http.endpoint: " + BAD_REFERENCE.format("FOO"),
        "service.extensions[1]: " + BAD_REFERENCE.format("file:y"),
    ]


def test_expand_env_path_prefix_is_prepended() -> None:
    with pytest.raises(ConfigError) as error:
        expand_env({"ttl": "${BAD}"}, {}, path="exporters.clickhouse")
    assert [str(p) for p in error.value.problems] == ["exporters.clickhouse.ttl: " + BAD_REFERENCE.format("BAD")]

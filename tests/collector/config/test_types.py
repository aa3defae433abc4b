"""Config value types: Duration, HostPort and Secret, and how a user's value is shown in messages."""

from __future__ import annotations

from typing import Any

import pytest

from collector.config.types import Duration, HostPort, Secret, show_value

DURATION_MESSAGE = "expected a duration like 72h, got {}"
HOSTPORT_MESSAGE = "expected host:port like 127.0.0.1:4318, got {}"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("72h", 72 * 3600.0),
        ("1m30s", 90.0),
        ("200ms", 0.2),
        ("1.5s", 1.5),
        ("2h45m", 2 * 3600.0 + 45 * 60.0),
        ("500us", 0.0005),
        ("250ns", 250e-9),
        ("0s", 0.0),
        ("0", 0.0),
        (" 5s ", 5.0),
        (0, 0.0),
        (0.0, 0.0),
    ],
)
def test_duration_reads_go_style_text(text: Any, seconds: float) -> None:
    duration = Duration.from_config(text)
    assert isinstance(duration, Duration)
    assert float(duration) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("banana", '"banana"'),
        ("5", '"5"'),
        ("1d", '"1d"'),
        ("-1s", '"-1s"'),
        ("5 s", '"5 s"'),
        ("", '""'),
        (5, "5"),
        (1.5, "1.5"),
        (True, "true"),
        (None, "nothing"),
        ([1], "a list"),
    ],
)
def test_duration_rejects_anything_else_showing_the_value(value: Any, shown: str) -> None:
    with pytest.raises(ValueError) as error:
        Duration.from_config(value)
    assert str(error.value) == DURATION_MESSAGE.format(shown)


def test_duration_is_seconds_as_a_float_with_a_clear_repr() -> None:
    duration = Duration.from_config("1m")
    assert duration == 60.0
    assert duration + 1 == 61.0
    assert repr(duration) == "Duration(60.0)"


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:4318", "127.0.0.1", 4318),
        ("localhost:0", "localhost", 0),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
        ("[::1]:4317", "::1", 4317),
    ],
)
def test_hostport_parses_host_and_port(text: str, host: str, port: int) -> None:
    assert HostPort.from_config(text) == HostPort(host, port)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("nope", '"nope"'),
        (":4318", '":4318"'),
        ("host:", '"host:"'),
        ("host:70000", '"host:70000"'),
        ("host:http", '"host:http"'),
        ("host:+80", '"host:+80"'),
        (4318, "4318"),
        (None, "nothing"),
        ({"host": "x"}, "a mapping"),
    ],
)
def test_hostport_rejects_anything_else_showing_the_value(value: Any, shown: str) -> None:
    with pytest.raises(ValueError) as error:
        HostPort.from_config(value)
    assert str(error.value) == HOSTPORT_MESSAGE.format(shown)


def test_hostport_superscript_digit_gets_the_host_port_message() -> None:
    with pytest.raises(ValueError) as error:
        HostPort.from_config("localhost:²")
    assert str(error.value) == HOSTPORT_MESSAGE.format('"localhost:²"')


def test_hostport_rejects_non_ascii_digits() -> None:
    with pytest.raises(ValueError):
        HostPort.from_config("localhost:٣")


def test_hostport_prints_back_as_written() -> None:
    assert str(HostPort("127.0.0.1", 4318)) == "127.0.0.1:4318"
    assert str(HostPort("::1", 80)) == "[::1]:80"
    assert str(HostPort.from_config("[::1]:80")) == "[::1]:80"


def test_secret_never_shows_its_value() -> None:
    secret = Secret.from_config("hunter2")
    log_line = "%s" % secret  # noqa: UP031 -- logging formats with %s
    shown = [str(secret), repr(secret), f"{secret}", log_line, format(secret), str([secret])]
    assert all("hunter2" not in text for text in shown)
    assert str(secret) == "***"
    assert repr(secret) == "Secret('***')"
    assert secret.reveal() == "hunter2"


def test_secret_from_an_empty_value_is_empty() -> None:
    secret = Secret.from_config(None)
    assert secret.reveal() == ""
    assert str(secret) == ""
    assert repr(secret) == "Secret('')"


def test_secret_accepts_a_number_as_text() -> None:
    assert Secret.from_config(1234).reveal() == "1234"


@pytest.mark.parametrize("value", [[1], {"a": 1}, 1.5])
def test_secret_rejects_non_text_without_echoing_it(value: Any) -> None:
    with pytest.raises(ValueError) as error:
        Secret.from_config(value)
    assert str(error.value) == "expected a string"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("x", '"x"'),
        ("", '""'),
        (None, "nothing"),
        (True, "true"),
        (False, "false"),
        (5, "5"),
        (1.5, "1.5"),
        ({"a": 1}, "a mapping"),
        ([1], "a list"),
    ],
)
def test_show_value_renders_like_yaml(value: Any, shown: str) -> None:
    assert show_value(value) == shown

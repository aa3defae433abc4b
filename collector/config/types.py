"""Value types that configuration fields use beyond YAML's own scalars.

Each type has a ``from_config`` class method that turns the YAML value into
the type or raises ``ValueError`` with the message the user will read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


class Duration(float):
    """A span of time in seconds, written in config the Go way: ``72h``, ``1m30s``, ``200ms``."""

    @classmethod
    def from_config(cls, value: Any) -> Duration:
        if isinstance(value, bool):
            raise ValueError(f"expected a duration like 72h, got {show_value(value)}")
        if isinstance(value, int | float) and value == 0:
            return cls(0.0)
        if isinstance(value, str):
            text = value.strip()
            if text == "0":
                return cls(0.0)
            parts = _DURATION_PART.findall(text)
            if parts and "".join(n + u for n, u in parts) == text:
                return cls(sum(float(n) * _DURATION_UNITS[u] for n, u in parts))
        raise ValueError(f"expected a duration like 72h, got {show_value(value)}")

    def __repr__(self) -> str:
        return f"Duration({float(self)!r})"


@dataclass(frozen=True)
class HostPort:
    """A listening or connecting address ``host:port``; port 0 means any free port."""

    host: str
    port: int

    @classmethod
    def from_config(cls, value: Any) -> HostPort:
        if not isinstance(value, str) or ":" not in value:
            raise ValueError(f"expected host:port like 127.0.0.1:4318, got {show_value(value)}")
        host, _, port_text = value.rpartition(":")
        host = host.strip("[]")
        if not host or not (port_text.isascii() and port_text.isdigit()) or not 0 <= int(port_text) <= 65535:
            raise ValueError(f"expected host:port like 127.0.0.1:4318, got {show_value(value)}")
        return cls(host, int(port_text))

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback."""

    @classmethod
    def from_config(cls, value: Any) -> Secret:
        if value is None:
            return cls("")
        if not isinstance(value, str | int):
            raise ValueError("expected a string")
        return cls(str(value))

    def __repr__(self) -> str:
        return "Secret('***')" if self else "Secret('')"

    def __str__(self) -> str:
        # str() of a str subclass would otherwise print the value; code that
        # needs the value calls reveal().
        return "***" if self else ""

    def reveal(self) -> str:
        """The secret itself, for the one place that must send it."""
        return str.__str__(self)


def show_value(value: Any) -> str:
    """Render a user's value for an error message the way they wrote it in YAML."""
    if isinstance(value, str):
        return f'"{value}"'
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return str(value)

"""A user's configuration mistakes, each one line naming its YAML path."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

_ESCAPED_CONTROLS = {code: ascii(chr(code))[1:-1] for code in (*range(0x20), 0x7F, 0x85, 0x2028, 0x2029)}


@dataclass(frozen=True)
class ConfigProblem:
    """One mistake: where it is (a dotted YAML path) and what is wrong."""

    path: str
    message: str

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}" if self.path else self.message
        # Keys and values quoted from the user's YAML may hold line breaks; the problem stays one line.
        return text.translate(_ESCAPED_CONTROLS)


class ConfigError(Exception):
    """Raised with every problem found, so the user can fix them all in one go."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


def join_path(*parts: str) -> str:
    """Join YAML path segments with dots, skipping empty ones."""
    return ".".join(part for part in parts if part)

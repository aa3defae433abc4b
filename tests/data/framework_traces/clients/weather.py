"""The weather tool every recorded agent offers: a fixed table, and an error with a suggestion for a misspelt city.

Shared by the Python clients (the JavaScript client carries the same table); it does not import the project.
"""

from __future__ import annotations

from dataclasses import dataclass

CONDITIONS = {
    "Paris": "Sunny, 24 C",
    "Rome": "Clear, 27 C",
    "Oslo": "Rain, 11 C",
    "Lisbon": "Windy, 19 C",
    "Madrid": "Hot, 31 C",
    "Berlin": "Cloudy, 17 C",
    "Vienna": "Showers, 15 C",
    "Tokyo": "Humid, 29 C",
}
MISSPELT = {"Pariss": "Paris", "Romee": "Rome"}


@dataclass(frozen=True)
class Report:
    text: str
    error: bool


def forecast(city: str) -> Report:
    if city in CONDITIONS:
        return Report(f"{CONDITIONS[city]} in {city}", False)
    suggestion = MISSPELT.get(city)
    hint = f" Did you mean '{suggestion}'?" if suggestion else ""
    return Report(f"Error: unknown city '{city}'.{hint}", True)

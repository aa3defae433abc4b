"""Settings of the ``genai_cost`` processor, and its price-override file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from processors.genai_cost.prices import PriceOverride, Rates

RATE_KEYS = ("input", "output", "cache_read", "cache_write", "reasoning")


class OverrideFileError(ValueError):
    """The price-override file cannot be used; the message says where and why."""


@dataclass(frozen=True)
class GenAiCostConfig:
    """``price_overrides``: a YAML file of prices that win over the price database.

    ::

        prices:
          - model: "llama-3.1-*"     # name or glob, matched against the response (else request) model
            provider: vllm           # optional, matched against gen_ai.provider.name
            input: 0.20              # USD per million tokens
            output: 0.60
            cache_read: 0.05         # optional (default: input); cache_write likewise
            reasoning: 0.60          # optional (default: output)
    """

    price_overrides: str = ""

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.price_overrides:
            try:
                load_overrides(Path(self.price_overrides))
            except OverrideFileError as exc:
                yield "price_overrides", str(exc)


def load_overrides(path: Path) -> tuple[PriceOverride, ...]:
    """The overrides in ``path``, in file order (the first match wins)."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise OverrideFileError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise OverrideFileError(f"cannot read {path}: {exc}") from None
    entries = document.get("prices") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise OverrideFileError(f"{path}: expected a mapping with a list under prices")
    return tuple(_override(path, i, entry) for i, entry in enumerate(entries))


def _override(path: Path, index: int, entry: Any) -> PriceOverride:
    where = f"{path}: prices[{index}]"
    if not isinstance(entry, dict):
        raise OverrideFileError(f"{where}: expected a mapping")
    unknown = sorted(set(entry) - {"model", "provider", *RATE_KEYS})
    if unknown:
        raise OverrideFileError(f"{where}.{unknown[0]}: unknown key; expected model, provider, {', '.join(RATE_KEYS)}")
    model, provider = entry.get("model"), entry.get("provider", "*")
    if not isinstance(model, str) or not model:
        raise OverrideFileError(f"{where}.model: is required (a model name or glob)")
    if not isinstance(provider, str):
        raise OverrideFileError(f"{where}.provider: expected a provider name or glob")
    rates: dict[str, float | None] = {}
    for key in RATE_KEYS:
        value = entry.get(key)
        if value is None:
            if key in ("input", "output"):
                raise OverrideFileError(f"{where}.{key}: is required (USD per million tokens)")
            rates[key] = None
        elif isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise OverrideFileError(f"{where}.{key}: expected a price in USD per million tokens, got {value!r}")
        else:
            rates[key] = float(value)
    return PriceOverride(
        model=model,
        provider=provider,
        rates=Rates(
            input=rates["input"] or 0.0,
            output=rates["output"] or 0.0,
            cache_read=rates["cache_read"],
            cache_write=rates["cache_write"],
            reasoning=rates["reasoning"],
        ),
    )

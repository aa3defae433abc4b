"""Which release of the GenAI conventions the proxy's spans follow: the names and shapes that differ.

The names themselves are in ``collector.semconv``. By default the proxy emits the
newest conventions (open-telemetry/semantic-conventions-genai); ``semconv: v1.41``
on its config gives v1.41.0's, for dashboards built on those.
"""

from __future__ import annotations

from dataclasses import dataclass

from collector import semconv


@dataclass(frozen=True)
class Dialect:
    """The names and shapes that differ between the newest conventions and v1.41.0."""

    cache_write_input_tokens: str
    reasoning_level: str | None  # only the newest conventions have it
    previous_response_id: str | None
    top_k_is_int: bool
    finish_reason_in_output_messages: bool


V1_41 = Dialect(
    cache_write_input_tokens=semconv.USAGE_CACHE_CREATION_INPUT_TOKENS,
    reasoning_level=None,
    previous_response_id=None,
    top_k_is_int=False,
    finish_reason_in_output_messages=True,
)
LATEST = Dialect(
    cache_write_input_tokens=semconv.USAGE_CACHE_WRITE_INPUT_TOKENS,
    reasoning_level=semconv.REQUEST_REASONING_LEVEL,
    previous_response_id=semconv.REQUEST_PREVIOUS_RESPONSE_ID,
    top_k_is_int=True,
    # Deprecated there in favour of gen_ai.response.finish_reasons.
    finish_reason_in_output_messages=False,
)
DIALECTS: dict[semconv.Version, Dialect] = {semconv.LATEST: LATEST, semconv.PREVIOUS: V1_41}


def dialect_for(version: semconv.Version) -> Dialect:
    """The dialect of a ``semconv`` setting."""
    return DIALECTS[version]

"""Settings of the ``genai_dedup`` processor: how long, and how many, proxy calls wait for their app's span."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from collector.config.types import Duration

# An app's span ends just after the proxy's (it waits for the reply the proxy relays) and its SDK exports it
# within seconds (the batch span processor's default delay is 5 s); minutes cover retries and slow exporters.
DEFAULT_WINDOW = Duration(300.0)
DEFAULT_MAX_ENTRIES = 100_000
# Client spans without GenAI attributes that may sit between an app's span and the proxy's (an HTTP
# instrumentation's): how many the climb from the proxy's parent crosses.
DEFAULT_MAX_HOPS = 3


@dataclass(frozen=True)
class GenAiDedupConfig:
    """``window``: how long what one record of a call left behind waits for the other record.

    ``max_entries`` bounds each of what is held (proxy calls waiting for their
    app's span, app calls already passed, parent links of client spans without
    GenAI attributes); the oldest go first, and are counted. ``max_hops`` is how
    many such client spans (an HTTP instrumentation's, say) may sit between the
    app's span and the proxy's.
    """

    window: Duration = DEFAULT_WINDOW
    max_entries: int = DEFAULT_MAX_ENTRIES
    max_hops: int = DEFAULT_MAX_HOPS

    def validate(self) -> Iterable[tuple[str, str]]:
        if self.window <= 0:
            yield "window", "must be more than 0"
        if self.max_entries < 1:
            yield "max_entries", "must be at least 1"
        if self.max_hops < 0:
            yield "max_hops", "must not be negative"

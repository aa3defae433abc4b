"""What every token-counting endpoint shares: it is not an inference, so only its request is recorded.

A count has no usage, no reply content and no stream of its own: the span
names the operation and the model, and what comes back is relayed untouched.
"""

from __future__ import annotations

from typing import Any

from proxy.apis.openai_embeddings import PassEvents
from proxy.record import CallRecord


class TokenCount:
    """The part of a count-tokens adapter after its request: nothing to change, read or estimate."""

    def upstream_body(self, body: dict[str, Any]) -> dict[str, Any] | None:
        return None

    def read_response(self, document: Any, record: CallRecord) -> None:
        return None

    def stream_tee(self, body: dict[str, Any], record: CallRecord) -> PassEvents:
        return PassEvents()

    def finish_reason_map(self) -> dict[str, str]:
        return {}

"""Which upstream serves a request: by the model (or Azure deployment) it names, among those speaking its API."""

from __future__ import annotations

from collections.abc import Sequence

from proxy.config import UpstreamConfig, UpstreamProtocol
from proxy.errors import ProxyError

# OpenAI's code for a model no upstream serves; the other formats name the error by its status.
MODEL_NOT_FOUND = "model_not_found"


class Router:
    """Upstreams in config order; the first whose ``models`` match wins."""

    def __init__(self, upstreams: Sequence[UpstreamConfig]) -> None:
        self._upstreams = list(upstreams)

    @property
    def upstreams(self) -> list[UpstreamConfig]:
        return self._upstreams

    def for_model(self, protocol: UpstreamProtocol, model: str | None) -> UpstreamConfig:
        """The upstream for ``model`` among those speaking ``protocol``; ProxyError 404 when none serves it."""
        candidates = [u for u in self._upstreams if u.protocol == protocol]
        if model is None:
            if candidates:
                return candidates[0]
        else:
            for upstream in candidates:
                if upstream.serves(model):
                    return upstream
        names = ", ".join(f"{u.name} ({u.kind}: {', '.join(u.models) or 'any model'})" for u in self._upstreams)
        subject = f'model "{model}"' if model is not None else "this request"
        raise ProxyError(404, f"no upstream serves {subject}; configured upstreams: {names}", MODEL_NOT_FOUND)

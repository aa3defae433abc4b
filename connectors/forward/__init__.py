"""The ``forward`` connector: hands each batch, as it is, to the pipelines of the same signal that receive from it.

As the OpenTelemetry Collector's forwardconnector: it joins traces to traces,
logs to logs and metrics to metrics, so one pipeline's output can feed several
pipelines with processors of their own, or several pipelines can share one tail.
It holds nothing: ``consume`` returns once the pipelines it feeds accepted the
batch, so a refusal downstream reaches the client as any exporter's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.component import ComponentSettings, Connector, ConnectorFactory, Consumer, Host
from collector.signals import SIGNALS


@dataclass(frozen=True)
class ForwardConfig:
    """The forward connector has no settings."""


class Forward:
    """Passes every batch on to ``next_consumer``."""

    def __init__(self, next_consumer: Consumer[Any]) -> None:
        self._next = next_consumer

    @property
    def forwards_to(self) -> Consumer[Any]:
        """The pipelines it feeds (collector.component.Forwarding)."""
        return self._next

    async def start(self, host: Host) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def consume(self, data: Any) -> None:
        await self._next.consume(data)


def create_forward(settings: ComponentSettings, config: ForwardConfig, next_consumer: Consumer[Any]) -> Connector:
    return Forward(next_consumer)


factory = ConnectorFactory(
    type="forward",
    config_type=ForwardConfig,
    creators={(signal, signal): create_forward for signal in SIGNALS},
)

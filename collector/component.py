"""The component model: what a receiver, processor, exporter and extension are, and how they are made.

The data that flows is OTLP protobuf itself, one type per signal (``collector.signals``):
``TracesData``, ``LogsData`` and ``MetricsData``, each wire-identical to the body of
its Export request. A consumer has one method, ``consume``: it accepts a batch
or raises a ``collector.errors.ConsumeError``. Consumers downstream of a fan-out
share the batch, so exporters must treat it as read-only; processors may modify it.

A component is one module: a frozen config dataclass with defaults and an
optional ``validate`` step, plus a factory that receives its settings and the
consumer it feeds. As in the OpenTelemetry Collector, a factory makes a
component per signal (``create`` for traces, ``create_logs``, ``create_metrics``;
None where it does not support the signal), and a component that serves every
signal as one instance (the otlp receiver: one listener for all three) gets it
from ``ComponentSettings.shared``. Wiring is explicit: nothing registers itself on import.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar, runtime_checkable

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.config.types import HostPort
from collector.signals import SIGNALS, LogsData, MetricsData, OtlpData, Signal
from collector.telemetry import Telemetry

__all__ = [
    "TracesData",
    "LogsData",
    "MetricsData",
    "Consumer",
    "TracesConsumer",
    "LogsConsumer",
    "MetricsConsumer",
    "SharedComponents",
    "Forwarding",
    "forwarded_to",
    "Component",
    "ComponentID",
    "ComponentKind",
    "ComponentSettings",
    "Host",
    "Processor",
    "Exporter",
    "Abandonable",
    "ReceiverFactory",
    "ProcessorFactory",
    "ExporterFactory",
    "ExtensionFactory",
    "ConnectorFactory",
    "Connector",
    "Listener",
    "WorkerNotes",
    "MainPart",
    "WorkerPart",
]

ComponentKind = Literal["receiver", "processor", "exporter", "extension", "connector"]
C = TypeVar("C")
T = TypeVar("T")
DataT = TypeVar("DataT", bound=OtlpData, contravariant=True)


class Consumer(Protocol[DataT]):
    """Anything that takes a batch of one signal: a processor, an exporter, a fan-out."""

    async def consume(self, data: DataT, /) -> None:
        """Accept the batch or raise ConsumeError; returning means the data is safe downstream."""
        ...


TracesConsumer = Consumer[TracesData]
LogsConsumer = Consumer[LogsData]
MetricsConsumer = Consumer[MetricsData]


@runtime_checkable
class Forwarding(Protocol):
    """A consumer that hands every batch, unchanged, to one other consumer (counting or timing it on the way).

    Declaring it lets processors that share what they learnt about a batch (``processors.span_view``) see
    through it to the consumer behind.
    """

    @property
    def forwards_to(self) -> Consumer[Any]: ...


# Forwarders in a row, at most: more is a wiring mistake (a cycle), not a chain.
MAX_FORWARDERS = 64


def forwarded_to(consumer: Consumer[Any]) -> Consumer[Any]:
    """The consumer that gets what is handed to ``consumer``: past every ``Forwarding`` in front of it."""
    for _ in range(MAX_FORWARDERS):
        if not isinstance(consumer, Forwarding):
            return consumer
        consumer = consumer.forwards_to
    return consumer


class Component(Protocol):
    """Lifecycle every component has. ``shutdown`` is safe twice and before ``start``."""

    async def start(self, host: Host) -> None: ...

    async def shutdown(self) -> None: ...


@runtime_checkable
class Processor(Component, Protocol):
    """A component that transforms batches and passes them to its next consumer."""

    async def consume(self, data: Any, /) -> None: ...


@runtime_checkable
class Exporter(Component, Protocol):
    """A component that takes batches into its sending queue and ships them out."""

    async def consume(self, data: Any, /) -> None: ...


class SharedComponents:
    """One instance of a component for all its signals, within one running service (the Collector's
    sharedcomponent): the otlp receiver serves traces, logs and metrics on one listener.

    A factory's per-signal creators ask for the instance by the component's id; the first makes it.
    """

    def __init__(self) -> None:
        self._made: dict[tuple[ComponentKind, ComponentID], object] = {}

    def get_or_make(self, kind: ComponentKind, cid: ComponentID, make: Callable[[], T]) -> T:
        key = (kind, cid)
        if key not in self._made:
            self._made[key] = make()
        return self._made[key]  # type: ignore[return-value]


@runtime_checkable
class Abandonable(Protocol):
    """An exporter that can give up on queued data when the operator forces a shutdown."""

    def abandon(self) -> None: ...


@dataclass(frozen=True, order=True)
class ComponentID:
    """``type`` or ``type/name``, as in the OpenTelemetry Collector's config."""

    type: str
    name: str = ""

    @classmethod
    def parse(cls, text: str) -> ComponentID:
        type_, _, name = text.partition("/")
        if not type_ or (_ and not name):
            raise ValueError(f'invalid component id "{text}"; expected type or type/name')
        return cls(type_, name)

    def __str__(self) -> str:
        return f"{self.type}/{self.name}" if self.name else self.type


@dataclass(frozen=True)
class ComponentSettings:
    """What every factory is handed besides its config."""

    id: ComponentID
    kind: ComponentKind
    logger: logging.Logger
    telemetry: Telemetry
    # The memory_limiter's soft limit when one is configured, else 0: what a component that holds memory
    # of its own outside Python (the embedded ClickHouse engine) caps itself at.
    memory_limit: int = 0
    # How many worker processes the service runs (service.workers resolved); 0: everything in one process.
    # A receiver that serves from a process of its own (the GenAI proxy) does so only when there are workers.
    worker_processes: int = 0
    # Components that serve several signals as one instance, per running service (see SharedComponents).
    shared: SharedComponents = field(default_factory=SharedComponents, compare=False, repr=False)


class Host(Protocol):
    """What the running service offers its components (extensions mostly)."""

    @property
    def exporters(self) -> Mapping[ComponentID, Exporter]: ...


@dataclass(frozen=True)
class Listener:
    """A socket a component will listen on, named by its YAML path for error messages."""

    path: str
    endpoint: HostPort


def listeners_of(config: Any, path: str) -> Iterable[Listener]:
    """The sockets a component config will bind, if it declares any (via ``listeners()``)."""
    listeners = getattr(config, "listeners", None)
    if callable(listeners):
        for relative, endpoint in listeners():
            yield Listener(f"{path}.{relative}", endpoint)


class _Signals:
    """The signals a factory supports: those it has a creator for (``create`` is the traces one)."""

    create: object
    create_logs: object
    create_metrics: object

    @property
    def signals(self) -> tuple[Signal, ...]:
        return tuple(signal for signal in SIGNALS if self.supports(signal))

    def supports(self, signal: Signal) -> bool:
        return self._creators()[signal] is not None

    def _creators(self) -> dict[Signal, object]:
        return {"traces": self.create, "logs": self.create_logs, "metrics": self.create_metrics}

    def creator(self, signal: Signal) -> Any:
        """The factory's creator for ``signal`` (its ``create``, ``create_logs`` or ``create_metrics``)."""
        create = self._creators()[signal]
        if create is None:
            raise ValueError(f"{getattr(self, 'type', '?')} does not support {signal}")
        return create


@dataclass(frozen=True)
class ReceiverFactory(_Signals, Generic[C]):
    """Makes a receiver that feeds ``next_consumer``, per signal."""

    type: str
    config_type: builtins.type[C]  # the field `type` shadows the builtin here
    create: Callable[[ComponentSettings, C, TracesConsumer], Component]
    create_logs: Callable[[ComponentSettings, C, LogsConsumer], Component] | None = None
    create_metrics: Callable[[ComponentSettings, C, MetricsConsumer], Component] | None = None


# Where a processor runs: in the worker processes (sharded by trace id), or in the main process.
ProcessorPlacement = Literal["worker", "main"]


@runtime_checkable
class WorkerNotes(Protocol):
    """What a Host offers a processor running in a worker process: notes for its part in the main process.

    A processor whose state must span every trace (not only the traces of
    one worker) notes what that part needs as it passes a batch; the notes
    travel back with the batch, and its ``MainPart`` reads them in the main
    process before the batch goes on to the exporters. A processor whose host
    offers no notes runs in one process and needs no main part.
    """

    def note(self, processor: ComponentID, item: object) -> None: ...


class MainPart(Protocol):
    """A worker processor's part in the main process: it sees each batch after the workers, with its notes.

    It returns the keys (trace id + span id) of every span it changed, for the
    exporters' worker parts (below) that already read those spans in a worker,
    and because the batch's encoding from the workers is stored as it is only
    when no span changed since (collector.runtime.annotations): a part that
    changes a batch must say so.
    """

    def apply(self, traces: TracesData, notes: list[object]) -> set[bytes]: ...


class WorkerPart(Protocol):
    """An exporter's part in a worker process: it reads each batch where the processors left it, and says
    what the exporter needs of it (a note), so the exporter in the main process does not read every span again.

    The exporter gets the notes of a batch with ``collector.runtime.annotations.notes_for``; a batch that did
    not pass through workers has none, and the exporter reads it itself.
    """

    def observe(self, traces: TracesData) -> object: ...


@dataclass(frozen=True)
class ProcessorFactory(_Signals, Generic[C]):
    """Makes a processor that feeds ``next_consumer``, per signal (``create`` for traces).

    ``runs_in="worker"`` says the processor may run in a worker process: it
    passes on what it is given within its own ``consume`` call (it holds
    nothing back for later and merges nothing across calls), its config pickles,
    and the state it keeps is per trace. Anything else runs in the main process
    (the default, so a third-party processor keeps the semantics it was written for).
    """

    type: str
    config_type: builtins.type[C]  # the field `type` shadows the builtin here
    create: Callable[[ComponentSettings, C, TracesConsumer], Processor]
    runs_in: ProcessorPlacement = "main"
    # With runs_in="worker": its part in the main process, when its state must span every worker.
    create_main_part: Callable[[ComponentSettings, C], MainPart] | None = None
    # The logs and metrics processors; these run in the main process (only traces are sharded to workers).
    create_logs: Callable[[ComponentSettings, C, LogsConsumer], Processor] | None = None
    create_metrics: Callable[[ComponentSettings, C, MetricsConsumer], Processor] | None = None


@dataclass(frozen=True)
class ExporterFactory(_Signals, Generic[C]):
    """Makes an exporter, per signal (``create`` for traces); it is the end of a pipeline.

    As in the OpenTelemetry Collector, each signal gets an exporter of its own (its own sending queue).
    """

    type: str
    config_type: builtins.type[C]  # the field `type` shadows the builtin here
    create: Callable[[ComponentSettings, C], Exporter]
    # Its part in the worker processes, for an exporter that reads every span of a batch (see WorkerPart).
    create_worker_part: Callable[[ComponentSettings, C], WorkerPart] | None = None
    # An exporter that only adds up or shows what it is given (no sending queue, never refuses a batch): the
    # pipeline hands it a batch once every other exporter of the pipeline accepted it, and not when one refused,
    # so spans a client must send again are counted once (collector.service.FanOut).
    accepted_only: bool = False
    create_logs: Callable[[ComponentSettings, C], Exporter] | None = None
    create_metrics: Callable[[ComponentSettings, C], Exporter] | None = None


@dataclass(frozen=True)
class ExtensionFactory(Generic[C]):
    """Makes an extension: a component outside the data path (admin endpoint, ...)."""

    type: str
    config_type: builtins.type[C]  # the field `type` shadows the builtin here
    create: Callable[[ComponentSettings, C], Component]


@runtime_checkable
class Connector(Component, Protocol):
    """The exporter of one pipeline that is the receiver of another: it consumes signal IN, emits signal OUT."""

    async def consume(self, data: Any, /) -> None: ...


@dataclass(frozen=True)
class ConnectorFactory(Generic[C]):
    """Makes a connector per (signal in, signal out) pair the pipelines use it for."""

    type: str
    config_type: builtins.type[C]  # the field `type` shadows the builtin here
    # (signal it takes in, signal it emits) -> creator; None/absent = pair not supported.
    # The creator gets the consumer of every pipeline that lists the connector as a receiver
    # for OUT (a fan-out when several) and returns a component that consumes IN.
    creators: Mapping[tuple[Signal, Signal], Callable[[ComponentSettings, C, Consumer[Any]], Connector]]
    # Like ExporterFactory.create_worker_part: a part in the worker processes for a traces-in
    # connector that reads every span (genai_metrics), optional.
    create_worker_part: Callable[[ComponentSettings, C], WorkerPart] | None = None
    accepted_only: bool = False  # same meaning as ExporterFactory.accepted_only

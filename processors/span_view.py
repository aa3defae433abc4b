"""One view of each span's attributes, read once and shared by the GenAI processors of a chain.

Every GenAI processor reads the same few things from a span: a handful of
attributes by key, their string and number values, and the JSON that the
content attributes hold. Read from the protobuf by each processor in turn, that
is a walk over every span's attributes per processor, each value copied out of
the protobuf again. A ``SpanView`` reads a span's attributes once, in one walk:
every key with its string value, and every number, into plain dictionaries that
the processors after the first read directly. A ``BatchView`` keeps what
was read for every span of a batch, and each processor walks the batch through
views made from it (``views``).

Edits go through the view and are written into the protobuf at once (an
attribute set, renamed or removed; an edited document serialised and written
back by ``replace_document``), and the view keeps what it read in step with
them: a processor after the one that masked a secret reads the masked text,
from the view as from the protobuf. Edits are few (some attributes added, and
content masked on the few spans holding a finding), so writing them through
costs little, and it leaves nothing to flush: whoever gets the batch next, one
of these processors or anything else, sees protobuf that is already complete,
and an error half-way through a chain cannot leave content unmasked behind a
mask held only in memory.

Each processor walks the whole batch in turn (``ViewProcessor``): ``edit`` for
each span, then ``finish`` for the batch. Two things decide what is kept from one
processor to the next, both measured on agent traffic (benchmarks/processors.py):

- What was read of the attributes is kept, in dictionaries of strings and
  numbers, which the garbage collector does not track. The view objects are
  made afresh by each processor and dropped span by span: an object per span
  held for the whole batch would be one more for the collector to walk.
- Parsed JSON documents are not kept beyond the processor that parsed them
  (``document`` parses once per view). Kept for the next processor, a batch's
  worth of parsed messages outlives several collections of the youngest
  generation, and the full collections that follow cost far more than
  parsing again; the one processor after genai_security that reads messages,
  genai_loop_detection, parses only the messages a request adds to the trace's
  previous one (``processors.message_history``), and so, for its own scan, does
  genai_security. Walking the batch processor by processor, rather than each
  span through every processor, keeps each processor's code and state hot in
  the CPU's caches, which measured faster still.

The view travels with the batch from one processor to the next. A processor
hands its batch view on, in a context variable, addressed to the consumer it
feeds, looked for through the consumers that only forward a batch unchanged
(``collector.component.Forwarding``: the service's counting wrappers). The next
processor takes the view only when it is the addressee and the batch is the
very one the view was read from. Anything else in between (a third-party
processor, the batch processor) is handed no view and sees plain protobuf, and
the processor after it reads a fresh view from what it receives. So the view
works whatever processors a pipeline lists, in whatever order: at worst each
processor reads its own, which is what every processor did before there was a
view. A processor that does not feed one of these hands no view on, so nothing
is held while the exporters work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, KeysView
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import Host, TracesConsumer, TracesData, forwarded_to
from collector.jsonvalues import dump_json, parse_json
from collector.pdata import SpanAttributes, rename_key

STRING = "string_value"
Scalar = int | float | bool | bytes
# What a view read of a span's attributes: every key's string value, the values that are numbers, booleans or
# bytes, and the keys' positions when the span lists a key twice (else None: a key's position is its place
# among the keys).
Index = tuple[dict[str, str], dict[str, Scalar], dict[str, int] | None]
_SCALARS = frozenset({"int_value", "double_value", "bool_value", "bytes_value"})


class SpanView(SpanAttributes):
    """A span's attributes by key as Python values, read in one walk, and its JSON documents once parsed.

    ``texts`` and ``scalars`` are there to be read directly (a plain dict lookup is the cheapest read there
    is); edits go through the methods, which keep them in step with the protobuf.
    """

    __slots__ = ("resource", "texts", "scalars", "_listed_twice", "_derived", "_documents")

    def __init__(self, span: Span, resource: Resource | None = None, index: Index | None = None) -> None:
        self.span = span
        self.resource = resource  # of the spans the span came with, when known
        # Read on one walk, or taken from an earlier view's ``index``; edited in place only, so that a view
        # made later from the same index sees the edits. ``texts`` holds every attribute's string value ("" when
        # it has none: absent, or a value of another kind), in span order.
        self.texts: dict[str, str]
        self.scalars: dict[str, Scalar]
        self._listed_twice: dict[str, int] | None  # SpanAttributes' positions, kept only for such a span
        if index is None:
            self.texts, self.scalars, self._listed_twice = {}, {}, None
            self._index()
        else:
            self.texts, self.scalars, self._listed_twice = index
        self._derived: dict[str, int] | None = None  # the positions worked out from ``texts``, once asked for
        # Parsed JSON by key, and whether orjson parsed it (written back after an edit, it then reads back as
        # the same document); None until a document is asked for.
        self._documents: dict[str, tuple[Any, bool]] | None = None

    @property
    def index(self) -> Index:
        """What was read of the span's attributes, for another view of the same span (``SpanView(index=...)``)."""
        return self.texts, self.scalars, self._listed_twice

    @property
    def _positions(self) -> dict[str, int]:
        """SpanAttributes' positions: where a span lists each key once, its place among the keys, worked out once."""
        positions = self._listed_twice if self._listed_twice is not None else self._derived
        if positions is None:
            positions = self._derived = {key: number for number, key in enumerate(self.texts)}
        return positions

    @_positions.setter
    def _positions(self, positions: dict[str, int]) -> None:
        self._derived = positions

    def _index(self) -> None:
        texts, scalars = self.texts, self.scalars
        attributes = self.span.attributes
        for pair in attributes:
            key = pair.key
            value = pair.value
            if key in texts:  # a key the span lists twice: the last value counts
                scalars.pop(key, None)
            text = texts[key] = value.string_value
            if not text:
                kind = value.WhichOneof("value")
                if kind in _SCALARS:
                    scalars[key] = getattr(value, kind)
        if len(texts) != len(attributes):
            self._listed_twice = {pair.key: number for number, pair in enumerate(attributes)}

    def kind(self, key: str) -> str | None:
        """The kind of the attribute's value (the AnyValue oneof's name: ``string_value``...); None when unset."""
        if self.texts.get(key):
            return STRING
        pair = self.pair(key)
        return pair.value.WhichOneof("value") if pair is not None else None

    def unique_keys(self) -> bool:
        """Whether the span lists every key once (OTLP requires it; when it does not, the index holds the last)."""
        return self._listed_twice is None

    def __contains__(self, key: str) -> bool:
        return key in self.texts

    def __iter__(self) -> Iterator[str]:
        return iter(self.texts)

    def keys(self) -> KeysView[str]:
        return self.texts.keys()

    def value(self, key: str) -> AnyValue | None:
        """The attribute's value as protobuf; None when the span has no such attribute."""
        pair = self.pair(key)
        return pair.value if pair is not None else None

    def text(self, key: str) -> str:
        """The attribute's string value; "" when it is absent or not a string."""
        return self.texts.get(key, "")

    def document(self, key: str) -> Any:
        """The JSON a string attribute holds, parsed once; None when it is absent or not valid JSON."""
        documents = self._documents
        if documents is None:
            documents = self._documents = {}
        elif key in documents:
            return documents[key][0]
        text = self.texts.get(key, "")
        try:
            parsed = orjson.loads(text), True
        except orjson.JSONDecodeError:
            parsed = parse_json(text), False  # what only json accepts (NaN, lone surrogates), else None
        documents[key] = parsed
        return parsed[0]

    def is_parsed(self, key: str) -> bool:
        """Whether ``document(key)`` has been read already, so that asking for it again costs nothing."""
        return self._documents is not None and key in self._documents

    def replace_document(self, key: str, document: Any) -> None:
        """Write ``document``, edited in place, back as the attribute's JSON text.

        Raises what ``collector.jsonvalues.dump_json`` raises when it cannot be written (nested too deep):
        the attribute is then left as it was, for the caller to decide (say, drop it).
        """
        text = dump_json(document)
        exact = self._documents is not None and self._documents.get(key, (None, False))[1]
        self.set(key, text)
        if exact and self._documents is not None:
            # Read back, the text gives this very document: the readers after this one need not parse it.
            self._documents[key] = (document, True)

    def prefix_hash(self, key: str, length: int) -> int:
        """``hash()`` of the first ``length`` characters of the attribute's string value."""
        return hash(self.texts.get(key, "")[:length])

    def changed(self, key: str) -> None:
        """The attribute's value was edited in place in the protobuf (a string inside an array, say)."""
        if self._documents:
            self._documents.pop(key, None)
        pair = self.pair(key)
        if pair is not None:
            self.texts[key] = pair.value.string_value

    def set(self, key: str, value: Any) -> str | None:
        if self._documents:
            self._documents.pop(key, None)
        kind = SpanAttributes.set(self, key, value)
        if kind == STRING:
            self.texts[key] = value if isinstance(value, str) else str(value)
            self.scalars.pop(key, None)
        else:
            self.texts[key] = ""
            if kind in _SCALARS:
                self.scalars[key] = value
            else:
                self.scalars.pop(key, None)
        return kind

    def _pair_to_write(self, key: str) -> KeyValue:
        if key in self.texts:
            return super()._pair_to_write(key)
        # A new key goes last, as it does in ``texts``: no position to look up.
        if self._derived is not None:
            self._derived[key] = len(self.texts)
        if self._listed_twice is not None:
            self._listed_twice[key] = len(self.span.attributes)
        pair = self.span.attributes.add()
        pair.key = key
        return pair

    def rename(self, old: str, new: str) -> None:
        super().rename(old, new)
        rename_key(self.texts, old, new)
        if old in self.scalars:
            self.scalars[new] = self.scalars.pop(old)
        if self._documents is not None and old in self._documents:
            self._documents[new] = self._documents.pop(old)

    def remove(self, keys: Iterable[str]) -> None:
        super().remove(keys)
        self.texts.clear()
        self.scalars.clear()
        self._listed_twice = self._derived = None
        self._index()
        if self._documents is not None:
            self._documents = {key: held for key, held in self._documents.items() if key in self.texts}


class BatchView:
    """What was read of each span of a batch, kept from one processor to the next."""

    __slots__ = ("traces", "_texts", "_scalars", "_listed_twice")

    def __init__(self, traces: TracesData) -> None:
        self.traces = traces
        # Each span's index (``SpanView.index``), in the batch's order, as lists of plain dictionaries.
        self._texts: list[dict[str, str]] = []
        self._scalars: list[dict[str, Scalar]] = []
        self._listed_twice: dict[int, dict[str, int]] = {}  # by span number: only spans that list a key twice

    def views(self) -> Iterator[SpanView]:
        """A view of each span, in the batch's order (spans added to the batch since the last walk included).

        Each is made as the walk reaches its span: hold one only as long as it is needed.
        """
        texts, scalars, listed_twice = self._texts, self._scalars, self._listed_twice
        known = len(texts)
        number = 0
        for resource_spans in self.traces.resource_spans:
            resource = resource_spans.resource
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if number < known:
                        yield SpanView(span, resource, (texts[number], scalars[number], listed_twice.get(number)))
                    else:  # read for the first time
                        view = SpanView(span, resource)
                        texts.append(view.texts)
                        scalars.append(view.scalars)
                        if view._listed_twice is not None:
                            listed_twice[number] = view._listed_twice
                        yield view
                    number += 1


@dataclass(slots=True)
class _Handoff:
    traces: TracesData
    batch: BatchView | None  # taken (None) by the receiver: the batch view is let go once the last one is done
    receiver: ViewProcessor


# The batch view a processor hands on, and to whom: set only while the processor's next consumer runs.
_HANDED: ContextVar[_Handoff | None] = ContextVar("processors.span_view.handed", default=None)


class ViewProcessor:
    """A processor that reads and edits spans through views of the batch shared along the chain.

    Subclasses implement ``edit`` (one span) and, if they act on the batch as a whole, ``finish``.
    """

    def __init__(self, next_consumer: TracesConsumer) -> None:
        self._next = next_consumer
        # Whom the view is handed to: the consumer this one feeds, past the wrappers that only forward.
        receiver = forwarded_to(next_consumer)
        self._receiver = receiver if isinstance(receiver, ViewProcessor) else None

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        handed = _HANDED.get()
        if handed is not None and handed.receiver is self and handed.traces is traces and handed.batch is not None:
            batch, handed.batch = handed.batch, None
        else:
            batch = BatchView(traces)
        edit = self.edit
        for view in batch.views():
            edit(view)
        self.finish(batch)
        receiver = self._receiver
        token = _HANDED.set(_Handoff(traces, batch, receiver) if receiver is not None else None)
        del batch, handed  # held by the handoff alone, and only while processors of the view follow
        try:
            await self._next.consume(traces)
        finally:
            _HANDED.reset(token)

    def edit(self, view: SpanView) -> None:
        """This processor's work on one span."""
        raise NotImplementedError

    def finish(self, batch: BatchView) -> None:
        """Called once every span of the batch is edited, before it is passed on (say, to publish counts)."""

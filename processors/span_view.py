"""One view of each span, shared by the GenAI processors of a chain, and the passes they edit spans in.

Every GenAI processor reads the same few things from a span: a handful of
attributes by key, and the JSON that the content attributes hold (input and
output messages, system instructions). Read from the protobuf by each processor
in turn, that is one walk over every span's attributes per processor, each value
copied out of the protobuf again, and the same message JSON parsed again by
each processor that reads messages. A ``SpanView`` does that work once: it
indexes the span's attributes with their string values in one walk, and parses
a JSON attribute the first time a processor asks for it (``document``), for
every processor after it too. A ``BatchView`` holds the views of one batch.

Edits go through the view and are written into the protobuf at once (an
attribute set, renamed or removed; an edited document serialised and written
back by ``replace_document``), and the view keeps what it holds in step with
them: a processor after the one that masked a secret reads the masked text,
from the view as from the protobuf. Edits are few (some attributes added, and
content masked on the few spans holding a finding), so writing them through
costs little, and it leaves nothing to flush: whoever gets the batch next, one
of these processors or anything else, sees protobuf that is already complete,
and an error half-way through a chain cannot leave content unmasked behind a
mask held only in memory.

Processors as stages of passes (``ViewProcessor``). A processor's work on a
batch is ``edit`` for each span, then ``finish`` for the batch (counts
published, state expired; matching across the batch for genai_dedup, judging
traces whose spans stopped arriving for genai_loop_detection). Consecutive
processors edit each span in turn in one pass over the batch: span 1 through
all of them, then span 2, and so on; each ``finish`` then runs in chain order.
Nothing a processor's ``edit`` depends on changes with that order, since each
edit reads only its own span and what the processors before it wrote there.
A processor whose ``finish`` edits spans (``edits_at_finish``) ends its pass,
and the processors after it start another, so that they see those edits. Once
a span is through a pass its parsed documents are let go (they would otherwise
outlive the pass in memory and burden the garbage collector, which costs more
than parsing them again in a later pass, if one reads them).

The view and the pass travel with the batch from one processor to the next.
A processor hands its batch view on, in a context variable, addressed to the
consumer it feeds, looked for through the consumers that only forward a batch
unchanged (``collector.component.Forwarding``: the service's counting
wrappers). The next processor takes the view only when it is the addressee and
the batch is the very one the view was built over; it skips its own edits when
the pass it belongs to has made them. Anything else in between (a third-party
processor, the batch processor) is addressed instead, sees plain protobuf, and
the processor after it builds a fresh view from what it receives. So the view
works whatever processors a pipeline lists, in whatever order: at worst each
processor builds its own and edits in a pass of its own, which is what every
processor did before there was a view. A processor that does not feed one of
these hands no view on, so nothing is held while the exporters work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.component import Host, TracesConsumer, TracesData, forwarded_to
from collector.jsonvalues import dump_json, parse_json
from collector.pdata import SpanAttributes, rename_key

STRING = "string_value"
# What a view read of a span's attributes: their positions, string values and other scalar values, by key.
Index = tuple[dict[str, int], dict[str, str], dict[str, int | float | bool | bytes]]
_SCALARS = frozenset({"int_value", "double_value", "bool_value", "bytes_value"})


class SpanView(SpanAttributes):
    """A span's attributes by key as Python values, read in one walk, and its JSON documents once parsed.

    ``texts`` and ``scalars`` are there to be read directly (a plain dict lookup is the cheapest read there
    is); edits go through the methods, which keep them in step with the protobuf.
    """

    __slots__ = ("resource", "texts", "scalars", "_documents", "_hashes")

    def __init__(self, span: Span, resource: Resource | None = None, index: Index | None = None) -> None:
        self.span = span
        self.resource = resource  # of the spans the span came with, when known
        # SpanAttributes' positions, and the values, read on one walk (or taken from an earlier view's ``index``):
        # every attribute's string value ("" when it has none: absent, or a value of another kind) in span
        # order, and the values that are numbers, booleans or bytes, as Python values. Edited in place only,
        # so that a view made later from the same index sees the edits.
        self._positions: dict[str, int]
        self.texts: dict[str, str]
        self.scalars: dict[str, int | float | bool | bytes]
        if index is None:
            self._positions, self.texts, self.scalars = {}, {}, {}
            self._index()
        else:
            self._positions, self.texts, self.scalars = index
        # Parsed JSON by key, and whether orjson parsed it (written back after an edit, it then reads back as
        # the same document); None until a document is asked for.
        self._documents: dict[str, tuple[Any, bool]] | None = None
        self._hashes: dict[tuple[str, int], int] | None = None  # prefix_hash's, by key and length

    @property
    def index(self) -> Index:
        """What was read of the span's attributes, for another view of the same span (``SpanView(index=...)``)."""
        return self._positions, self.texts, self.scalars

    def _index(self) -> None:
        positions, texts, scalars = self._positions, self.texts, self.scalars
        for index, pair in enumerate(self.span.attributes):
            key = pair.key
            value = pair.value
            positions[key] = index
            text = texts[key] = value.string_value  # a key the span lists twice: the last value counts
            if not text:
                kind = value.WhichOneof("value")
                if kind in _SCALARS:
                    scalars[key] = getattr(value, kind)
                else:
                    scalars.pop(key, None)

    def kind(self, key: str) -> str | None:
        """The kind of the attribute's value (the AnyValue oneof's name: ``string_value``...); None when unset."""
        if self.texts.get(key):
            return STRING
        pair = self.pair(key)
        return pair.value.WhichOneof("value") if pair is not None else None

    def unique_keys(self) -> bool:
        """Whether the span lists every key once (OTLP requires it; when it does not, the index holds the last)."""
        return len(self._positions) == len(self.span.attributes)

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
        """``hash()`` of the first ``length`` characters of the attribute's string value; asked again, remembered."""
        hashes = self._hashes
        if hashes is None:
            hashes = self._hashes = {}
        elif (key, length) in hashes:
            return hashes[key, length]
        value = hashes[key, length] = hash(self.texts.get(key, "")[:length])
        return value

    def changed(self, key: str) -> None:
        """The attribute's value was edited in place in the protobuf (a string inside an array, say)."""
        self._forget(key)
        pair = self.pair(key)
        if pair is not None:
            self.texts[key] = pair.value.string_value

    def set(self, key: str, value: Any) -> str | None:
        if self._documents is not None or self._hashes is not None:
            self._forget(key)
        kind = super().set(key, value)
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

    def rename(self, old: str, new: str) -> None:
        super().rename(old, new)
        rename_key(self.texts, old, new)
        if old in self.scalars:
            self.scalars[new] = self.scalars.pop(old)
        if self._documents is not None and old in self._documents:
            self._documents[new] = self._documents.pop(old)
        self._hashes = None

    def remove(self, keys: Iterable[str]) -> None:
        super().remove(keys)
        self._positions.clear()
        self.texts.clear()
        self.scalars.clear()
        self._hashes = None
        self._index()
        if self._documents is not None:
            self._documents = {key: held for key, held in self._documents.items() if key in self._positions}

    def _forget(self, key: str) -> None:
        if self._documents is not None:
            self._documents.pop(key, None)
        if self._hashes:
            self._hashes = {held: value for held, value in self._hashes.items() if held[0] != key}


class BatchView:
    """What was read of each span of a batch, kept from one pass to the next.

    The views themselves are made afresh in each pass, and let go as the pass moves on (what they read is
    kept, in plain dictionaries): a view held for a whole batch would be an object for the garbage collector
    to walk, for each span.
    """

    __slots__ = ("traces", "_indexes")

    def __init__(self, traces: TracesData) -> None:
        self.traces = traces
        self._indexes: list[Index] = []

    def views(self) -> Iterator[SpanView]:
        """A view of each span, in the batch's order (spans added to the batch since the last pass included)."""
        indexes = self._indexes
        known = len(indexes)
        number = 0
        for resource_spans in self.traces.resource_spans:
            resource = resource_spans.resource
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if number < known:
                        yield SpanView(span, resource, indexes[number])
                    else:
                        view = SpanView(span, resource)
                        indexes.append(view.index)
                        yield view
                    number += 1


@dataclass(slots=True)
class _Handoff:
    traces: TracesData
    batch: BatchView | None  # taken (None) by the receiver: the batch view is let go once the last one is done
    receiver: ViewProcessor
    edited_by: tuple[ViewProcessor, ...]  # the processors whose edits the last pass made


# The batch view a processor hands on, and to whom: set only while the processor's next consumer runs.
_HANDED: ContextVar[_Handoff | None] = ContextVar("processors.span_view.handed", default=None)


class ViewProcessor:
    """A processor that edits spans through the batch's shared view, in a pass shared with its neighbours.

    Subclasses implement ``edit`` (one span) and, if they act on the batch as a whole, ``finish``.
    """

    # True when ``finish`` edits spans (or adds some): the processors after this one edit in a pass of their own.
    edits_at_finish: ClassVar[bool] = False

    def __init__(self, next_consumer: TracesConsumer) -> None:
        self._next = next_consumer
        # Whom the view is handed to: the consumer this one feeds, past the wrappers that only forward.
        receiver = forwarded_to(next_consumer)
        self._receiver = receiver if isinstance(receiver, ViewProcessor) else None
        self._pass: tuple[ViewProcessor, ...] | None = None

    async def start(self, host: Host) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def consume(self, traces: TracesData) -> None:
        handed = _HANDED.get()
        if handed is not None and handed.receiver is self and handed.traces is traces and handed.batch is not None:
            batch, edited_by = handed.batch, handed.edited_by
            handed.batch = None
        else:
            batch, edited_by = BatchView(traces), ()
        if self not in edited_by:
            edited_by = self._stages()
            run_pass(batch, edited_by)
        receiver = self._receiver
        token = _HANDED.set(_Handoff(traces, batch, receiver, edited_by) if receiver is not None else None)
        del batch, handed  # held by the handoff alone, and only while processors of the view follow
        try:
            await self._next.consume(traces)
        finally:
            _HANDED.reset(token)

    def _stages(self) -> tuple[ViewProcessor, ...]:
        """This processor and the ones after it that edit in its pass (worked out once: the wiring is fixed)."""
        if self._pass is None:
            stages = [self]
            stage = self
            while not stage.edits_at_finish and stage._receiver is not None and stage._receiver not in stages:
                stage = stage._receiver
                stages.append(stage)
            self._pass = tuple(stages)
        return self._pass

    def edit(self, view: SpanView) -> None:
        """This processor's work on one span."""
        raise NotImplementedError

    def finish(self, batch: BatchView) -> None:
        """Called once every span of the batch is edited, before it is passed on (say, to publish counts)."""


def run_pass(batch: BatchView, stages: tuple[ViewProcessor, ...]) -> None:
    """Each span through every stage's ``edit`` in turn, then each stage's ``finish``."""
    edits = [stage.edit for stage in stages]
    for view in batch.views():
        for edit in edits:
            edit(view)
    for stage in stages:
        stage.finish(batch)

"""Recorded agent traces for the loop-detection processor, and what it should find in each.

Every ``*.json`` file here is one OTLP/HTTP JSON ``ExportTraceServiceRequest`` (hex trace and span ids,
integer enums) holding one trace, or for a conversation the several traces that share its
``gen_ai.conversation.id``, spans in the order they ended (as an SDK exports them). ``manifest.json``
says for each file whether the agent was healthy or looping and which findings a detector must raise,
on which span. See README.md for how the files were made and the conventions the expectations follow.

Usage::

    from tests.data import agent_traces

    for recording in agent_traces.manifest():
        request = agent_traces.load(recording.name)
        for part in agent_traces.split_shuffled(request, parts=3, seed=7):
            ...  # feed the processor out of order, across requests
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

DIRECTORY = Path(__file__).resolve().parent
MANIFEST = DIRECTORY / "manifest.json"

Scope = Literal["trace", "conversation"]
Verdict = Literal["healthy", "looping", "over_budget"]

# OTLP/JSON writes these bytes fields as hex; the protobuf JSON mapping expects base64.
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})


@dataclass(frozen=True)
class ExpectedFinding:
    """One finding a detector must raise: on which span, for which scope, under which settings."""

    detector: str
    scope: Scope
    span_name: str
    span_id: str  # hex, as in the file
    trace_id: str  # hex
    # Processor settings that differ from the defaults (e.g. {"trace_budget": {"max_steps": 50}}); empty: defaults.
    config: Mapping[str, Any]
    note: str

    @property
    def with_defaults(self) -> bool:
        """Whether the finding is expected with the processor's default settings."""
        return not self.config


@dataclass(frozen=True)
class Recording:
    """One file of the corpus and what is expected of it (one entry of ``manifest.json``)."""

    name: str  # the file name without .json
    description: str
    verdict: Verdict
    source: str  # "synthetic" (make_traces.py) or the framework and instrumentation that emitted the spans
    trace_ids: tuple[str, ...]
    conversation_ids: tuple[str, ...]
    findings: tuple[ExpectedFinding, ...]
    totals: Mapping[str, int]  # spans, llm_calls, tool_spans, steps, input_tokens, output_tokens
    span_names: Mapping[str, int]  # how many spans of each name the file holds
    packages: Mapping[str, str]  # for framework recordings: the distributions and versions that recorded it
    notes: tuple[str, ...]

    @property
    def path(self) -> Path:
        return DIRECTORY / f"{self.name}.json"

    def findings_with_defaults(self) -> tuple[ExpectedFinding, ...]:
        """The findings expected when the processor runs with its default settings."""
        return tuple(finding for finding in self.findings if finding.with_defaults)


def load(name: str) -> ExportTraceServiceRequest:
    """The recording ``name`` (file name with or without ``.json``) as a protobuf request."""
    path = DIRECTORY / (name if name.endswith(".json") else f"{name}.json")
    return loads(path.read_text(encoding="utf-8"))


def loads(text: str) -> ExportTraceServiceRequest:
    """Parse OTLP/JSON (hex ids, integer or named enums) into an ``ExportTraceServiceRequest``."""
    document = json.loads(text)
    _convert_ids(document, _hex_to_base64)
    return json_format.ParseDict(document, ExportTraceServiceRequest())


def dumps(request: ExportTraceServiceRequest) -> str:
    """``request`` as OTLP/JSON: camelCase names, hex ids, integer enums, 64-bit integers as strings."""
    document = json_format.MessageToDict(request, use_integers_for_enums=True)
    _convert_ids(document, _base64_to_hex)
    return _render(document, 0) + "\n"


def spans(request: ExportTraceServiceRequest) -> list[Span]:
    """Every span of ``request``, in file order."""
    return [span for resource in request.resource_spans for scope in resource.scope_spans for span in scope.spans]


def span_by_id(request: ExportTraceServiceRequest, span_id: str) -> Span | None:
    """The span whose id is ``span_id`` (hex), if the request holds it."""
    wanted = bytes.fromhex(span_id)
    return next((span for span in spans(request) if span.span_id == wanted), None)


def split_shuffled(
    request: ExportTraceServiceRequest, parts: int = 3, seed: int = 0
) -> list[ExportTraceServiceRequest]:
    """The spans of ``request`` shuffled (seeded) and dealt into ``parts`` requests, to simulate late arrival.

    Each part keeps the resource and instrumentation scope of its spans; a part may be empty when
    there are fewer spans than parts. Joined back together, the parts hold every span exactly once.
    """
    if parts < 1:
        raise ValueError("parts must be at least 1")
    placed = [
        (resource_index, scope_index, span)
        for resource_index, resource in enumerate(request.resource_spans)
        for scope_index, scope in enumerate(resource.scope_spans)
        for span in scope.spans
    ]
    random.Random(seed).shuffle(placed)
    size, extra = divmod(len(placed), parts)
    requests: list[ExportTraceServiceRequest] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        requests.append(_request_of(request, placed[start:end]))
        start = end
    return requests


def manifest() -> list[Recording]:
    """Every recording with its expectations, in manifest order."""
    return list(_manifest())


def recording(name: str) -> Recording:
    """The manifest entry of ``name``."""
    for entry in _manifest():
        if entry.name == name:
            return entry
    raise KeyError(name)


@cache
def _manifest() -> tuple[Recording, ...]:
    document = json.loads(MANIFEST.read_text(encoding="utf-8"))
    return tuple(_recording(entry) for entry in document["recordings"])


def _recording(entry: Mapping[str, Any]) -> Recording:
    findings = tuple(
        ExpectedFinding(
            detector=str(item["detector"]),
            scope=cast(Scope, item["scope"]),
            span_name=str(item["span_name"]),
            span_id=str(item["span_id"]),
            trace_id=str(item["trace_id"]),
            config=dict(item.get("config", {})),
            note=str(item.get("note", "")),
        )
        for item in entry["findings"]
    )
    return Recording(
        name=str(entry["name"]),
        description=str(entry["description"]),
        verdict=cast(Verdict, entry["verdict"]),
        source=str(entry["source"]),
        trace_ids=tuple(str(t) for t in entry["trace_ids"]),
        conversation_ids=tuple(str(c) for c in entry.get("conversation_ids", [])),
        findings=findings,
        totals={str(k): int(v) for k, v in entry["totals"].items()},
        span_names={str(k): int(v) for k, v in entry["span_names"].items()},
        packages={str(k): str(v) for k, v in entry.get("packages", {}).items()},
        notes=tuple(str(n) for n in entry.get("notes", [])),
    )


def _request_of(template: ExportTraceServiceRequest, placed: list[tuple[int, int, Span]]) -> ExportTraceServiceRequest:
    """A request holding ``placed`` spans, grouped under copies of their resource and scope."""
    request = ExportTraceServiceRequest()
    groups: dict[tuple[int, int], Any] = {}
    resources: dict[int, Any] = {}
    for resource_index, scope_index, span in placed:
        group = groups.get((resource_index, scope_index))
        if group is None:
            resource = resources.get(resource_index)
            if resource is None:
                original = template.resource_spans[resource_index]
                resource = request.resource_spans.add()
                resource.resource.CopyFrom(original.resource)
                resource.schema_url = original.schema_url
                resources[resource_index] = resource
            original_scope = template.resource_spans[resource_index].scope_spans[scope_index]
            group = resource.scope_spans.add()
            group.scope.CopyFrom(original_scope.scope)
            group.schema_url = original_scope.schema_url
            groups[(resource_index, scope_index)] = group
        group.spans.add().CopyFrom(span)
    return request


def _render(node: Any, depth: int) -> str:
    """JSON with one line per attribute and per short object: readable, and a third the size of indented JSON."""
    flat = json.dumps(node, ensure_ascii=False)
    if not isinstance(node, dict | list) or len(flat) <= _FLAT_WIDTH or (isinstance(node, dict) and "key" in node):
        return flat
    inner = "\n" + " " * (depth + 1)
    if isinstance(node, list):
        items = [_render(item, depth + 1) for item in node]
        return "[" + inner + ("," + inner).join(items) + "\n" + " " * depth + "]"
    fields = [f"{json.dumps(key)}: {_render(value, depth + 1)}" for key, value in node.items()]
    return "{" + inner + ("," + inner).join(fields) + "\n" + " " * depth + "}"


_FLAT_WIDTH = 100


def _convert_ids(node: Any, convert: Callable[[str], str]) -> None:
    for item in _dicts(node):
        for key in _ID_FIELDS & item.keys():
            if isinstance(item[key], str):
                item[key] = convert(item[key])


def _dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _dicts(value)
    elif isinstance(node, list):
        for value in node:
            yield from _dicts(value)


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()

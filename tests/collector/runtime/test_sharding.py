"""Splitting a batch by trace id: every span once, to the worker of its trace, with its resource and scope."""

from __future__ import annotations

import os

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.runtime.sharding import shard_of, split


def _batch(traces: int, spans_per_trace: int, resources: int = 2) -> TracesData:
    batch = TracesData()
    ids = [os.urandom(16) for _ in range(traces)]
    for r in range(resources):
        resource_spans = batch.resource_spans.add(schema_url=f"resource-{r}")
        resource_spans.resource.attributes.add(key="service.name").value.string_value = f"service-{r}"
        for scope in range(2):
            scope_spans = resource_spans.scope_spans.add(schema_url=f"scope-{scope}")
            scope_spans.scope.name = f"scope-{r}-{scope}"
            for trace_id in ids:
                for n in range(spans_per_trace):
                    scope_spans.spans.add(trace_id=trace_id, span_id=os.urandom(8), name=f"span-{n}")
    return batch


def _placed(batch: TracesData) -> list[tuple[str, str, bytes, bytes]]:
    """Each span with the service and scope it sits under."""
    return sorted(
        (rs.resource.attributes[0].value.string_value, ss.scope.name, span.trace_id, span.span_id)
        for rs in batch.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    )


def test_every_span_lands_once_in_the_worker_of_its_trace_under_its_resource_and_scope() -> None:
    batch = _batch(traces=40, spans_per_trace=3)
    parts = split(batch, 3)

    assert len(parts) == 3
    together = [span for part in parts if part is not None for span in _placed(part)]
    assert sorted(together) == _placed(batch)
    for worker, part in enumerate(parts):
        assert part is not None  # 40 random traces over 3 workers
        assert {trace_id for _, _, trace_id, _ in _placed(part)} <= {
            trace_id for _, _, trace_id, _ in _placed(batch) if shard_of(trace_id, 3) == worker
        }
        for resource_spans in part.resource_spans:
            assert resource_spans.schema_url.startswith("resource-")
            assert all(scope_spans.schema_url.startswith("scope-") for scope_spans in resource_spans.scope_spans)


def test_a_batch_of_one_workers_traces_is_passed_on_uncopied() -> None:
    batch = _batch(traces=1, spans_per_trace=5)
    parts = split(batch, 4)
    (worker,) = [i for i, part in enumerate(parts) if part is not None]
    assert parts[worker] is batch
    assert worker == shard_of(batch.resource_spans[0].scope_spans[0].spans[0].trace_id, 4)


def test_one_worker_takes_everything() -> None:
    batch = _batch(traces=5, spans_per_trace=2)
    assert split(batch, 1) == [batch]


def test_a_span_without_a_trace_id_goes_to_the_first_worker() -> None:
    assert shard_of(b"", 4) == 0

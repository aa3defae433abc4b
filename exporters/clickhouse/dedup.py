"""Insert deduplication: the token that makes a retried batch land once, and the settings that carry it.

A retry after a timeout may repeat an insert that did commit. Each batch is
inserted with ``insert_deduplication_token`` set to a digest of its content,
so the same batch sent again (a retry, or a replay after a restart) carries
the same token and ClickHouse drops the repeat, within the tables'
deduplication window (``Layout.settings_clause``). ClickHouse appends the block
index to the token when it splits a large insert into several blocks, and the
split of the same data is the same, so a retried large batch is dropped block
by block.

The digest is of the batch's messages in order, not of an id given by the
queue: two queues (or one before and after a restart) holding the same data
produce the same token without having to agree on anything else. Each message
counts as its deterministic encoding (collector.pdata.encode); a batch from a
sending queue already holds those bytes (the workers' answer, or what the queue
encoded once for its log, or read back from it after a restart), so
``encoded_batch_token`` hashes them and encodes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.pdata import encode

# 128 bits: a collision between two different batches within the window is out of reach.
TOKEN_DIGEST_BYTES = 16
# Names the derivation, so a future change to it cannot match tokens made the old way.
TOKEN_PREFIX = "genai-collector-v1-"
LENGTH_BYTES = 8


def batch_token(messages: Iterable[TracesData]) -> str:
    """A stable token for a batch: equal for equal messages in the same order, different otherwise."""
    # Deterministic encoding: the same message gives the same bytes in any process.
    return encoded_batch_token(encode(message) for message in messages)


def encoded_batch_token(encodings: Iterable[bytes]) -> str:
    """``batch_token`` of the messages whose encodings (collector.pdata.encode) these are, in order."""
    digest = hashlib.blake2b(digest_size=TOKEN_DIGEST_BYTES)
    for data in encodings:
        # The length first, so [ab, c] and [a, bc] cannot hash alike.
        digest.update(len(data).to_bytes(LENGTH_BYTES, "big"))
        digest.update(data)
    return TOKEN_PREFIX + digest.hexdigest()


def insert_settings(token: str) -> dict[str, str]:
    """Per-insert settings that make a repeated insert a no-op in otel_traces and in every table its views fill.

    ``deduplicate_blocks_in_dependent_materialized_views`` is set explicitly
    because its default differs between server versions, and with it off
    ClickHouse 26 (chDB 4) skips the repeat in otel_traces but still runs the
    views, doubling genai_calls and genai_findings. With it on, each view's target
    table checks the repeat itself, which also fills in a view whose insert
    failed the first time.
    """
    return {
        "insert_deduplication_token": token,
        "deduplicate_blocks_in_dependent_materialized_views": "1",
    }

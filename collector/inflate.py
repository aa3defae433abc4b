"""The one bounded inflater: a body decoded per its Content-Encoding, never to more than a given size.

A few kilobytes of gzip can inflate to gigabytes, so the output is capped while
inflating, not checked afterwards. Used for OTLP request bodies and for the copy
of an upstream's reply the proxy reads for its span.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable


class BadRequest(ValueError):
    """The body cannot be read as sent; the message says why."""


class BodyTooLarge(BadRequest):
    """The (decompressed) body is larger than the reader accepts."""


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded per Content-Encoding, refusing more than ``limit`` bytes of output."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        data = body
    elif encoding in ("gzip", "x-gzip"):
        data = _inflate(body, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), limit, "gzip")
    elif encoding == "deflate":
        data = _inflate(body, zlib.decompressobj, limit, "deflate")
    else:
        raise BadRequest(f'unsupported Content-Encoding "{encoding}"; use gzip, deflate or none')
    if len(data) > limit:
        raise BodyTooLarge(f"request body exceeds {limit} bytes")
    return data


def _inflate(body: bytes, new_inflater: Callable[[], zlib._Decompress], limit: int, name: str) -> bytes:
    """Every member of ``body`` inflated (RFC 1952 allows several gzip members back to back)."""
    parts: list[bytes] = []
    size = 0
    remaining = body
    while True:
        inflater = new_inflater()
        try:
            part = inflater.decompress(remaining, limit + 1 - size)
        except zlib.error as exc:
            raise BadRequest(f"invalid {name} body: {exc}") from None
        size += len(part)
        if size > limit:
            raise BodyTooLarge(f"decompressed request body exceeds {limit} bytes")
        parts.append(part)
        if not inflater.eof:
            # Either the input ran out mid-stream or the output limit cut it short.
            if inflater.unconsumed_tail:
                raise BodyTooLarge(f"decompressed request body exceeds {limit} bytes")
            raise BadRequest(f"invalid {name} body: truncated")
        remaining = inflater.unused_data
        if not remaining:
            return b"".join(parts)

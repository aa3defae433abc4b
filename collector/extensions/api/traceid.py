"""Trace ids as Jaeger and Tempo take them in a URL, to the 32 lower-case hex digits the store keeps.

Both take hex of 1 to 32 digits, a shorter one standing for a 128-bit id with
leading zeros (Jaeger's and Tempo's 64-bit ids print that way); Jaeger also
takes the 16 bytes in base64, standard or URL-safe, with or without padding
(jaegertracing/jaeger apiv3.TraceIDFromString).
"""

from __future__ import annotations

import base64
import binascii

TRACE_ID_HEX_CHARS = 32
TRACE_ID_BYTES = 16
# Base64 of 16 bytes: 24 characters padded, 22 without.
MAX_BASE64_CHARS = 24
_HEX = frozenset("0123456789abcdefABCDEF")


def parse_hex_trace_id(text: str) -> str:
    """``text`` (1 to 32 hex digits) as 32 lower-case hex digits; ValueError otherwise."""
    if not 0 < len(text) <= TRACE_ID_HEX_CHARS or not _HEX.issuperset(text):
        raise ValueError(f'a trace id is 1 to 32 hex digits, got "{text}"')
    return text.lower().rjust(TRACE_ID_HEX_CHARS, "0")


def parse_jaeger_trace_id(text: str) -> str:
    """A trace id in hex, or its 16 bytes in base64, as 32 lower-case hex digits; ValueError otherwise."""
    try:
        return parse_hex_trace_id(text)
    except ValueError:
        if len(text) > MAX_BASE64_CHARS:
            raise
    padded = text + "=" * (-len(text) % 4)
    for altchars in (b"+/", b"-_"):
        try:
            raw = base64.b64decode(padded.encode("ascii"), altchars=altchars, validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            continue
        if len(raw) == TRACE_ID_BYTES:
            return raw.hex()
    raise ValueError(f'a trace id is 1 to 32 hex digits or 16 bytes in base64, got "{text}"')

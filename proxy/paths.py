"""Which request paths the proxy forwards: none that could mean a place outside the upstream's base path.

The proxy sends the client's path on as the client encoded it, so whatever the
upstream (or any server in between) decodes must name the same place the proxy
routed on. A path is refused, before routing and authentication, when it holds:

- a dot segment (``.``, ``..``, or only dots), however it is encoded;
- an empty segment (``//``), a backslash, or an encoded separator (``%2f``, ``%5c``);
- a percent-encoded unreserved character (``%2e``, ``%41``): RFC 3986 section 2.3
  says producers never encode them, so only a path meant to be read two ways does;
- double encoding (``%25``), a control character, or a ``;`` (path parameters);
- a byte outside RFC 3986's path characters, or a percent-encoding that is not valid
  UTF-8 (overlong forms such as ``%c0%ae`` included);
- a segment that reads as a dot segment or holds a separator after NFKC
  normalisation (a full-width ``．．`` or ``／``), for servers that normalise Unicode.

Refusal is the answer, not normalisation: no client of an LLM API sends such paths,
so rewriting one would only guess what the sender meant.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

_UNRESERVED = frozenset((string.ascii_letters + string.digits + "-._~").encode())
# RFC 3986 pchar without pct-encoded (checked on its own) and without ";" (path parameters).
_RAW_ALLOWED = _UNRESERVED | frozenset(b"!$&'()*+,=:@")
_HEX_DIGITS = frozenset(string.hexdigits.encode())
_SEPARATORS = frozenset(b"/\\")
# Segments of unreserved characters, each starting with one that is not a dot (so none is a dot segment):
# nothing the checks below refuse can be in such a path, and every API path is one.
_PLAIN_PATH = re.compile(rb"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+/?")
_REFUSED_AFTER_NFKC = ("/", "\\", "%", ";")


def path_problem(raw_path: bytes) -> str | None:
    """Why ``raw_path`` (as it came on the request line, query excluded) may not be forwarded, or None."""
    if _PLAIN_PATH.fullmatch(raw_path):
        return None  # every API path: segments of letters, digits, - and _, none only dots, nothing encoded
    return full_check(raw_path)


def full_check(raw_path: bytes) -> str | None:
    """``path_problem`` without its shortcut for plain paths, byte by byte."""
    if not raw_path.startswith(b"/"):
        return "the path must start with /"
    segments = raw_path[1:].split(b"/")
    for index, segment in enumerate(segments):
        if not segment and index < len(segments) - 1:  # a trailing slash is an empty last segment, and harmless
            return "the path has an empty segment (//)"
        problem = _segment_problem(segment)
        if problem is not None:
            return problem
    return None


def _segment_problem(segment: bytes) -> str | None:
    decoded = bytearray()
    position = 0
    while position < len(segment):
        byte = segment[position]
        if byte == ord("%"):
            digits = segment[position + 1 : position + 3]
            if len(digits) < 2 or not all(d in _HEX_DIGITS for d in digits):
                return "the path has a malformed percent-encoding"
            value = int(digits, 16)
            if value in _UNRESERVED:
                return "the path percent-encodes a character that is never encoded (such as %2e)"
            if value in _SEPARATORS:
                return "the path has an encoded separator (%2f or %5c)"
            if value == ord("%"):
                return "the path is percent-encoded twice (%25)"
            if value < 0x20 or value == 0x7F:
                return "the path has an encoded control character"
            decoded.append(value)
            position += 3
            continue
        if byte == ord("\\"):
            return "the path has a backslash"
        if byte == ord(";"):
            return "the path has a path parameter (;)"
        if byte not in _RAW_ALLOWED:
            return "the path has a character that must be percent-encoded"
        decoded.append(byte)
        position += 1
    try:
        text = decoded.decode("utf-8")  # strict: overlong forms and surrogates are errors
    except UnicodeDecodeError:
        return "the path's percent-encoding is not valid UTF-8"
    for form in (text, unicodedata.normalize("NFKC", text)):
        if form and form.strip(".") == "":
            return "the path has a dot segment (. or ..)"
        if any(mark in form for mark in _REFUSED_AFTER_NFKC):
            return "the path has a character that reads as a separator"
    return None


Refusal = Callable[[Request, str], Awaitable[Response]]


class RefuseUnsafePaths:
    """ASGI middleware: an HTTP request whose path ``path_problem`` names is answered by ``refuse``, never routed."""

    def __init__(self, app: ASGIApp, refuse: Refusal) -> None:
        self._app = app
        self._refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            raw_path = scope.get("raw_path") or scope["path"].encode("utf-8")
            problem = path_problem(raw_path)
            if problem is not None:
                request = Request(scope, receive)
                response = await self._refuse(request, problem)
                await response(scope, receive, send)
                return
        await self._app(scope, receive, send)

"""Opt-in early stop: a stream whose output turns out to carry a critical finding ends there.

The proxy does not know what a finding is: it is given a check (text in, the
id of what was found, or None) by whoever wires it (the collector builds one
from the genai_security detectors). While a stream runs, each new piece of
output text is checked together with the end of what came before, so a value
split across chunks is still seen whole. The event that completed the finding
is not forwarded; the client gets a final error in its provider's format.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from proxy.record import CallRecord

StreamCheck = Callable[[str], str | None]
# Enough earlier text to see a value split across chunks whole (private keys run to a few KB).
OVERLAP_CHARS = 4096
STOP_MESSAGE = "the response was stopped by the proxy: its output matched the {detector} detector"


class StreamGuard:
    def __init__(self, check: StreamCheck, record: CallRecord) -> None:
        self._check = check
        self._record = record
        self._scanned: dict[int, int] = {}  # per choice: text fragments already checked
        self._tail: dict[int, str] = {}

    def finding(self) -> str | None:
        """What the output received so far contains, checking only what is new since the last call."""
        for index, choice in self._record.choices.items():
            seen = self._scanned.get(index, 0)
            fresh = choice.text[seen:]
            if not fresh:
                continue
            self._scanned[index] = len(choice.text)
            window = self._tail.get(index, "") + "".join(fresh)
            found = self._check(window)
            if found is not None:
                return found
            self._tail[index] = window[-OVERLAP_CHARS:]
        return None


def stop_event(api: str, detector: str) -> bytes:
    """The last event the client receives, in the format its SDK reads as an error in a stream."""
    message = STOP_MESSAGE.format(detector=detector)
    body: dict[str, Any]
    if api == "messages":
        body = {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    if api == "responses":
        body = {"type": "error", "code": "early_stop", "message": message, "param": None}
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    if api.startswith("gemini_"):
        body = {"error": {"code": 400, "message": message, "status": "FAILED_PRECONDITION"}}
        return b"data: " + json.dumps(body).encode() + b"\r\n\r\n"
    error = {"error": {"message": message, "type": "content_filter", "param": None, "code": "early_stop"}}
    return b"data: " + json.dumps(error).encode() + b"\n\ndata: [DONE]\n\n"

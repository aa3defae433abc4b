"""An OTLP/HTTP trace endpoint on loopback for exporter tests: records each request, answers as scripted.

It stands in for a remote receiver where the test needs to choose the answer
(a status, a Retry-After, a Status body, a partial success) or see the request's
headers and raw body. Unscripted requests get 200 with an empty response.
"""

from __future__ import annotations

import gzip
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.trace.v1.trace_pb2 import TracesData

from collector.receivers.otlp.codec import decode_traces

WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Reply:
    """One scripted answer."""

    status: int = 200
    body: bytes = b""
    content_type: str = "application/x-protobuf"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes  # as sent, compressed or not

    def payload(self) -> bytes:
        return gzip.decompress(self.body) if self.headers.get("content-encoding") == "gzip" else self.body

    def traces(self) -> TracesData:
        return decode_traces(self.payload(), self.headers["content-type"])


def status_body(message: str, json: bool = False) -> bytes:
    """A google.rpc.Status as a failed OTLP/HTTP request's body."""
    from google.rpc import status_pb2

    status = status_pb2.Status(code=14, message=message)
    return json_format.MessageToJson(status).encode() if json else status.SerializeToString()


class HttpTraceServer:
    """Answers requests with ``replies`` in order, then 200."""

    def __init__(self, replies: list[Reply] | None = None, context: ssl.SSLContext | None = None) -> None:
        self.replies = list(replies or [])
        self.requests: list[Request] = []
        self._changed = threading.Condition()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                with server._changed:
                    headers = {name.lower(): value for name, value in self.headers.items()}
                    server.requests.append(Request(self.path, headers, body))
                    reply = server.replies.pop(0) if server.replies else Reply()
                    server._changed.notify_all()
                self.send_response(reply.status)
                self.send_header("content-type", reply.content_type)
                self.send_header("content-length", str(len(reply.body)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(reply.body)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        if context is not None:
            self._http.socket = context.wrap_socket(self._http.socket, server_side=True)
        self.port = int(self._http.server_address[1])
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        self._thread.start()

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def wait_for_requests(self, count: int) -> list[Request]:
        with self._changed:
            assert self._changed.wait_for(lambda: len(self.requests) >= count, WAIT_SECONDS), self.requests
            return list(self.requests)

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(WAIT_SECONDS)

"""The HTTP server every HTTP listener runs on (OTLP/HTTP, the GenAI proxy, admin, the prometheus exporter).

``HttpServer`` serves an ASGI app within the listener's ``HttpServerSettings``;
``read_body`` is the one bounded reader of request bodies.
"""

from collector.httpserver.body import RequestBodyTooLarge, read_body, request_share
from collector.httpserver.server import HttpServer, ListenError, bind_socket

__all__ = ["HttpServer", "ListenError", "RequestBodyTooLarge", "bind_socket", "read_body", "request_share"]

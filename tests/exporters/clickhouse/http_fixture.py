"""A stand-in ClickHouse server: the part of the HTTP interface clickhouse-connect uses, answered by chDB.

No ClickHouse server runs on these machines, so the exporter's server path is
tested against this. It runs in the test process on a free loopback port and
keeps ClickHouse's behaviour where the client depends on it:

- ``GET /ping`` answers ``Ok.``;
- a statement comes in the ``query`` URL parameter, the request body, or both
  (the parameter first); ``param_<name>`` URL parameters fill ``{name:Type}``
  placeholders; ``database`` picks the current database; other URL parameters
  are settings, applied to SELECT-like statements with a SETTINGS clause, and
  ``readonly`` refuses anything that writes, as the server does (KILL QUERY
  passes, as it does on a server);
- an INSERT's data (Arrow, Native... whatever its FORMAT says) is the body,
  decompressed according to Content-Encoding (lz4, zstd, gzip), inserted with
  the request's settings (``insert_deduplication_token`` and friends);
- results in the format the statement names, with the X-ClickHouse-Format,
  X-ClickHouse-Timezone, X-ClickHouse-Query-Id and X-ClickHouse-Summary headers;
- credentials by basic auth, X-ClickHouse-User/Key headers or user/password
  parameters, for ``username`` and any of ``readers`` (further users, as a
  server with a separate query user has); wrong ones get 401 with ClickHouse's error text and
  X-ClickHouse-Exception-Code 516; engine errors get 500 (404 for an unknown
  table or database) with the engine's message and code.

Faults for the reliability tests: ``port`` picks the port, so a server can
appear where a collector already looks for one (or come back after ``stop``);
``stall_inserts`` makes the next N inserts commit and then keep the client
waiting past its timeout, as a server does when the answer is lost (or until
``release_stalled``);
``profile`` holds settings every insert runs with unless it sets them itself,
as a server's settings profile does.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import tempfile
import threading
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame  # type: ignore[import-untyped]
from backports import zstd

AUTHENTICATION_FAILED = 516
READONLY = 164
UNKNOWN_TABLE = 60
UNKNOWN_DATABASE = 81
# URL parameters that are part of the protocol, not settings.
PROTOCOL_PARAMETERS = frozenset(
    {
        "query",
        "database",
        "query_id",
        "session_id",
        "default_format",
        "user",
        "password",
        "compress",
        "decompress",
        "client_protocol_version",
    }
)
# Settings that only steer the HTTP transport; the engine has nothing to apply.
TRANSPORT_SETTINGS = frozenset(
    {"enable_http_compression", "send_progress_in_http_headers", "http_headers_progress_interval_ms",
     "wait_end_of_query", "session_timeout", "session_check", "cancel_http_readonly_queries_on_client_close"}
)  # fmt: skip
READ_ONLY_WORDS = ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")
# A server runs KILL QUERY whatever readonly says (a read-only user may stop its own queries).
ALLOWED_WHEN_READONLY = (*READ_ONLY_WORDS, "KILL")
_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*$", re.IGNORECASE)
# A statement's first word, after the comments and brackets a server skips as it lexes.
_FIRST_WORD = re.compile(r"\s*(?:(?:/\*.*?\*/|--[^\n]*\n|\()\s*)*(\w+)", re.DOTALL)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<format>\w+)\s*$", re.IGNORECASE | re.DOTALL)
_CODE = re.compile(r"Code: (\d+)")
DEFAULT_FORMAT = "TabSeparated"
# Longest a stalled insert holds its answer: well past any client timeout in the tests, bounded all the same.
STALL_BOUND_SECONDS = 30.0


class FakeClickHouse:
    """The fixture server; use as a context manager. ``requests`` records (method, path, params, headers)."""

    def __init__(
        self,
        data_dir: Path,
        username: str = "default",
        password: str = "",
        port: int = 0,
        stall_inserts: int = 0,
        profile: dict[str, str] | None = None,
        readers: dict[str, str] | None = None,
    ) -> None:
        self.username, self.password = username, password
        self.users = {username: password, **(readers or {})}
        self.requests: list[tuple[str, str, dict[str, str], dict[str, str]]] = []
        self.stall_inserts = stall_inserts
        self.profile = dict(profile or {})
        self.committed_inserts = 0
        self._inserted = threading.Condition()
        self._release = threading.Event()
        self._connection = chdb.connect(str(data_dir))  # type: ignore[no-untyped-call]
        self._lock = threading.Lock()
        fixture = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                fixture.handle(self)

            def do_POST(self) -> None:  # noqa: N802
                fixture.handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeClickHouse:
        self._thread.start()
        return self

    def wait_for_inserts(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` inserts have committed; False if ``timeout`` passed first."""
        with self._inserted:
            return self._inserted.wait_for(lambda: self.committed_inserts >= count, timeout)

    def release_stalled(self) -> None:
        """Answer the stalled inserts now, and the ones to come at once."""
        self._release.set()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
        self._connection.close()

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k: v for k, v in request.headers.items()}
        self.requests.append((request.command, parts.path, params, headers))
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        if parts.path == "/ping":
            self._answer(request, HTTPStatus.OK, b"Ok.\n", {})
            return
        if not self._authenticated(request, params):
            message = (
                f"Code: {AUTHENTICATION_FAILED}. DB::Exception: {self._user(request, params)}: Authentication failed: "
                "password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n"
            )
            self._error(request, HTTPStatus.UNAUTHORIZED, AUTHENTICATION_FAILED, message)
            return
        try:
            status, output, extra = self._execute(request, params, body)
        except Exception as exc:  # the engine's error, as a server would send it
            message = str(exc).strip() + "\n"
            match = _CODE.search(message)
            code = int(match.group(1)) if match else 1
            status = (
                HTTPStatus.NOT_FOUND if code in (UNKNOWN_TABLE, UNKNOWN_DATABASE) else HTTPStatus.INTERNAL_SERVER_ERROR
            )
            self._error(request, status, code, message)
            return
        self._answer(request, status, output, extra)

    def _user(self, request: BaseHTTPRequestHandler, params: dict[str, str]) -> str:
        return self._credentials(request, params)[0]

    def _credentials(self, request: BaseHTTPRequestHandler, params: dict[str, str]) -> tuple[str, str]:
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            return user, password
        if "X-ClickHouse-User" in request.headers:
            return request.headers["X-ClickHouse-User"], request.headers.get("X-ClickHouse-Key", "")
        return params.get("user", "default"), params.get("password", "")

    def _authenticated(self, request: BaseHTTPRequestHandler, params: dict[str, str]) -> bool:
        user, password = self._credentials(request, params)
        return user in self.users and self.users[user] == password

    def _execute(
        self, request: BaseHTTPRequestHandler, params: dict[str, str], body: bytes
    ) -> tuple[HTTPStatus, bytes, dict[str, str]]:
        settings = {k: v for k, v in params.items() if k not in PROTOCOL_PARAMETERS and not k.startswith("param_")}
        settings = {k: v for k, v in settings.items() if k not in TRANSPORT_SETTINGS}
        query_params = {k.removeprefix("param_"): v for k, v in params.items() if k.startswith("param_")}
        query = params.get("query", "")
        insert = _INSERT.match(query) if query else None
        data = _decompress(body, request.headers.get("Content-Encoding", ""))
        if insert is None:
            query = (query + "\n" + data.decode()).strip() if data else query
            data = b""
        word = _FIRST_WORD.match(query)
        first_word = word.group(1).upper() if word else ""
        if settings.get("readonly", "0") != "0" and first_word not in ALLOWED_WHEN_READONLY:
            raise RuntimeError(f"Code: {READONLY}. DB::Exception: Cannot execute query in readonly mode. (READONLY)")
        if insert is not None:
            return self._execute_insert(params.get("database"), insert, data, settings)
        with self._lock:
            self._use(params.get("database"))
            match = _FORMAT.search(query)
            fmt = match.group(1) if match else params.get("default_format", DEFAULT_FORMAT)
            if first_word in READ_ONLY_WORDS and settings:
                clause = "SETTINGS " + ", ".join(f"{k} = '{v}'" for k, v in settings.items() if k != "readonly")
                if clause != "SETTINGS ":
                    query = (
                        query[: match.start()] + clause + "\n" + query[match.start() :]
                        if match
                        else f"{query}\n{clause}"
                    )
            result = self._connection.query(query, fmt, params=query_params)
            output = result.bytes() if result is not None else b""
        extra = {"X-ClickHouse-Summary": _summary(0)}
        if first_word in READ_ONLY_WORDS:
            extra["X-ClickHouse-Format"] = fmt
        return HTTPStatus.OK, output, extra

    def _use(self, database: str | None) -> None:
        self._connection.query(f"USE `{database}`" if database else "USE default")

    def _execute_insert(
        self, database: str | None, insert: re.Match[str], data: bytes, settings: dict[str, str]
    ) -> tuple[HTTPStatus, bytes, dict[str, str]]:
        with self._lock:
            self._use(database)
            written = self._insert(insert, data, settings)
            stall = self.stall_inserts > 0
            self.stall_inserts -= stall
        with self._inserted:
            self.committed_inserts += 1
            self._inserted.notify_all()
        if stall:  # committed, but the answer does not come before the client gives up
            self._release.wait(STALL_BOUND_SECONDS)
        return HTTPStatus.OK, b"", {"X-ClickHouse-Summary": _summary(written)}

    def _insert(self, insert: re.Match[str], data: bytes, settings: dict[str, str]) -> int:
        applied = {**self.profile, **{k: v for k, v in settings.items() if k != "readonly"}}
        clause = " SETTINGS " + ", ".join(f"{k} = '{_quote(v)}'" for k, v in applied.items()) if applied else ""
        with tempfile.NamedTemporaryFile(suffix=".data") as file:
            file.write(data)
            file.flush()
            target, fmt = insert.group("target"), insert.group("format")
            self._connection.query(f"INSERT INTO {target} FROM INFILE '{file.name}'{clause} FORMAT {fmt}")
        return len(data)

    def _answer(self, request: BaseHTTPRequestHandler, status: HTTPStatus, body: bytes, extra: dict[str, str]) -> None:
        request.send_response(status)
        request.send_header("Content-Length", str(len(body)))
        request.send_header("X-ClickHouse-Query-Id", str(uuid.uuid4()))
        request.send_header("X-ClickHouse-Timezone", "UTC")
        request.send_header("X-ClickHouse-Server-Display-Name", "fake-clickhouse")
        for name, value in extra.items():
            request.send_header(name, value)
        request.end_headers()
        request.wfile.write(body)

    def _error(self, request: BaseHTTPRequestHandler, status: HTTPStatus, code: int, message: str) -> None:
        body = message.encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/plain; charset=UTF-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("X-ClickHouse-Exception-Code", str(code))
        request.end_headers()
        request.wfile.write(body)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _decompress(body: bytes, encoding: str) -> bytes:
    if encoding == "lz4":
        return bytes(lz4.frame.decompress(body))
    if encoding == "zstd":
        return bytes(zstd.decompress(body))
    if encoding == "gzip":
        return gzip.decompress(body)
    return body


def _summary(written_bytes: int) -> str:
    return json.dumps({"read_rows": "0", "read_bytes": "0", "written_rows": "0", "written_bytes": str(written_bytes)})

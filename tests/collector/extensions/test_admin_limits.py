"""The admin endpoint's body limit holds against a 1.5 GiB POST: cut at the limit, never buffered.

The collector runs as a process of its own so that its resident memory is what is measured.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from collector.extensions.admin import MAX_QUERY_BYTES
from tests.collector.procfs import memory_mib
from tests.collector.test_cli_run import CollectorProcess
from tests.conftest import admin_headers

ONE_AND_A_HALF_GIB = 1536 * 1024 * 1024
SEND_CHUNK = 256 * 1024
SOCKET_TIMEOUT_SECONDS = 30.0
# The endpoint holds at most its 1 MiB limit of the body; 32 MiB covers that, the
# request's handling and the allocator. Reading the whole body first, as it once did,
# took the process 2.9 GiB up.
GROWTH_BOUND_MIB = 32
CONFIG = """
receivers:
  otlp:
    protocols:
      http:
        endpoint: ${env:GENAI_COLLECTOR_OTLP_HTTP_ENDPOINT}
exporters:
  debug:
extensions:
  admin:
    endpoint: ${env:GENAI_COLLECTOR_ADMIN_ENDPOINT}
service:
  extensions: [admin]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [debug]
"""


@pytest.fixture
def collector(tmp_path: Path) -> Iterator[CollectorProcess]:
    config = tmp_path / "otel-config.yaml"
    config.write_text(CONFIG)
    process = CollectorProcess(tmp_path, config)
    try:
        yield process
    finally:
        process.stop()


def _post_until_answered(port: int, head: bytes, chunked: bool) -> tuple[bytes, int]:
    """POST ``head`` and then up to 1.5 GiB of body while reading; the answer, and the body bytes sent."""
    answer = bytearray()
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_SECONDS) as sock:

        def read() -> None:
            try:
                while chunk := sock.recv(65536):
                    answer.extend(chunk)
            except OSError:
                pass

        reader = threading.Thread(target=read)
        reader.start()
        piece = b"0" * SEND_CHUNK
        framed = b"%x\r\n" % len(piece) + piece + b"\r\n" if chunked else piece
        try:
            sock.sendall(head)
            while sent < ONE_AND_A_HALF_GIB and reader.is_alive():
                sock.sendall(framed)
                sent += len(piece)
        except OSError:
            pass  # the collector closed the connection while the body was still coming
        reader.join(SOCKET_TIMEOUT_SECONDS)
    return bytes(answer), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
@pytest.mark.parametrize("keyed", [True, False], ids=["admin-key", "no-key"])
def test_a_1_5_gib_query_post_is_cut_at_the_limit_without_being_buffered(
    collector: CollectorProcess, chunked: bool, keyed: bool
) -> None:
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % ONE_AND_A_HALF_GIB
    key = b"Authorization: %s\r\n" % admin_headers(collector.token_file)["Authorization"].encode() if keyed else b""
    head = (
        b"POST /query HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" + key + framing + b"\r\n\r\n"
    )
    before = memory_mib(collector.process.pid)["VmRSS"]

    answer, sent = _post_until_answered(collector.admin_port, head, chunked)

    peak = memory_mib(collector.process.pid)["VmHWM"]
    if keyed:
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"query body exceeds %d bytes" % MAX_QUERY_BYTES in answer
    else:  # refused before the body is read at all
        assert answer.startswith(b"HTTP/1.1 401 "), answer[:200]
    assert sent < ONE_AND_A_HALF_GIB // 4  # cut while it was being sent
    assert peak - before < GROWTH_BOUND_MIB, f"peak {peak:.0f} MiB from {before:.0f} MiB"

"""The GenAI proxy in a process of its own, when the collector runs worker processes.

In one process the proxy shares its event loop, and the interpreter lock, with
everything the collector does for ingest: decoding and splitting batches,
writing the queues, building the store's columns. Calls then wait on that work
for milliseconds at a time. With worker processes (``service.workers``), the
``genai_proxy`` receiver runs the proxy in a child process instead, so a call's
latency owes nothing to ingest.

The main process binds the proxy's socket (a port in use stays one config
line) and starts the child from the fork server with the socket, the
receiver's settings and one end of a socket pair. The child serves the proxy
exactly as the in-process receiver does and hands its spans over the pair as
OTLP bytes; the main process feeds them into the pipeline and answers whether
they were taken, in the pipeline's own terms, so the proxy's span queue keeps
and sends again what a retryable refusal (a full queue, the workers pushing
back) sent back. The child's counters ride along and are absorbed, as a
worker's are. A child that dies is started again on the same socket (calls
wait in its backlog meanwhile); at shutdown it stops taking calls, lets calls
in flight finish and hands its last spans over while the pipeline still runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Sequence
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess

from opentelemetry.proto.trace.v1.trace_pb2 import TracesData
from opentelemetry.sdk.trace import ReadableSpan

from collector.component import TracesConsumer
from collector.errors import ConsumeError
from collector.httpserver import HttpServer, bind_socket
from collector.runtime import frames, members
from collector.runtime.frames import Kind
from collector.telemetry import Telemetry
from proxy.config import ProxyConfig
from proxy.encoding import spans_to_traces

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0  # calls in flight finish, then the last spans are handed over
TELEMETRY_INTERVAL_SECONDS = 1.0
FIRST_RESTART_DELAY_SECONDS = 0.5
MAX_RESTART_DELAY_SECONDS = 30.0
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [proxy process]: %(message)s"
PIPELINE = 0  # the proxy feeds its receiver's consumer: one pipeline entry, whatever pipelines it serves

logger = logging.getLogger("genai_collector.proxy_process")


class ProxyProcess:
    """The proxy child of one ``genai_proxy`` receiver, from the main process's side."""

    def __init__(
        self, config: ProxyConfig, consumer: TracesConsumer, telemetry: Telemetry, listener: str, log_level: int
    ) -> None:
        self._config = config
        self._consumer = consumer
        self._telemetry = telemetry
        self._listener = listener
        self._log_level = log_level
        self._context: ForkServerContext = multiprocessing.get_context("forkserver")
        self._sock: socket.socket | None = None
        self._process: BaseProcess | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._handling: set[asyncio.Task[None]] = set()
        self._restart: asyncio.Task[None] | None = None
        self._restart_delay = FIRST_RESTART_DELAY_SECONDS
        self._source = ""
        self._started_at = 0.0
        self._ready = False
        self._closing = False
        self.port = config.endpoint.port

    async def start(self) -> None:
        sock = bind_socket(self._config.endpoint)
        self._sock = sock
        self.port = sock.getsockname()[1]
        try:
            await self._launch()
        except BaseException:
            await self.stop()
            raise

    def health_problems(self) -> list[str]:
        return [] if self._ready or self._closing else ["the proxy process is restarting"]

    async def stop(self) -> None:
        """Stop the child: calls in flight finish and their spans reach the pipeline; safe twice."""
        self._closing = True
        if self._restart is not None:
            self._restart.cancel()
        if self._writer is not None and self._reader_task is not None:
            with contextlib.suppress(ConnectionError):
                self._writer.writelines(frames.frame(Kind.STOP, 0))
            try:
                await asyncio.wait_for(asyncio.shield(self._reader_task), STOP_TIMEOUT_SECONDS)
            except TimeoutError:
                logger.error("the proxy process did not stop within %ss; killing it", STOP_TIMEOUT_SECONDS)
                self._reader_task.cancel()
        if self._handling:
            await asyncio.gather(*self._handling, return_exceptions=True)
        self._reap()
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    async def _launch(self) -> None:
        assert self._sock is not None
        main_end, child_end = socket.socketpair()
        process = self._context.Process(
            target=run,
            args=(child_end, self._sock, self._config, self._listener, self._log_level),
            name=f"genai-collector-proxy-{self._listener}",
        )
        process.start()
        child_end.close()
        self._process = process
        assert process.pid is not None
        members.join(process.pid)
        self._source = f"proxy-{self._listener}-{process.pid}"
        reader, writer = await asyncio.open_connection(sock=main_end)
        self._writer = writer
        try:
            ready = await asyncio.wait_for(frames.read_frame(reader), START_TIMEOUT_SECONDS)
        except (TimeoutError, frames.BrokenChannel):
            self._reap()
            raise ProxyProcessError(f"the proxy process did not start (exit code {process.exitcode})") from None
        if ready.kind is not Kind.READY:
            self._reap()
            raise ProxyProcessError(f"the proxy process answered {ready.kind.name} instead of READY")
        self._ready = True
        self._started_at = asyncio.get_running_loop().time()
        self._reader_task = asyncio.create_task(self._read(reader), name=f"{self._listener}-proxy-reader")

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                message = await frames.read_frame(reader)
                if message.kind is Kind.PROCESS:
                    task = asyncio.create_task(self._take(message))
                    self._handling.add(task)
                    task.add_done_callback(self._handling.discard)
                elif message.kind is Kind.TELEMETRY:
                    self._telemetry.absorb(self._source, frames.read_result(message.payload).telemetry)
                elif message.kind is Kind.STOPPED:
                    self._telemetry.absorb(self._source, frames.read_result(message.payload).telemetry)
                    break
                else:
                    raise frames.BrokenChannel(f"unexpected {message.kind.name} frame")
        except frames.BrokenChannel as exc:
            if not self._closing:
                logger.error("the proxy process stopped unexpectedly (%s); starting it again", exc)
        finally:
            self._ready = False
            if not self._closing:
                self._reap()
                self._restart = asyncio.create_task(self._start_again(), name=f"{self._listener}-proxy-restart")

    async def _take(self, message: frames.Frame) -> None:
        """Feed one batch of the child's spans into the pipeline and tell the child how it went."""
        _, encoded = frames.read_process_payload(message.payload)
        try:
            await self._consumer.consume(TracesData.FromString(encoded))
            answer = frames.ok_result(b"", {}, {}, True)
        except Exception as exc:  # the pipeline's refusal, or a bug: the child's span queue decides what to do
            answer = frames.failed_result(exc, {})
        if self._writer is not None:
            with contextlib.suppress(ConnectionError):
                self._writer.writelines(frames.frame(Kind.RESULT, message.request, *answer))

    async def _start_again(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._started_at > MAX_RESTART_DELAY_SECONDS * 2:
            self._restart_delay = FIRST_RESTART_DELAY_SECONDS
        await asyncio.sleep(self._restart_delay)
        self._restart_delay = min(self._restart_delay * 2, MAX_RESTART_DELAY_SECONDS)
        try:
            await self._launch()
        except ProxyProcessError as exc:
            logger.error("%s; trying again", exc)
            self._restart = asyncio.create_task(self._start_again())
            return
        logger.warning("the proxy process started again")

    def _reap(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        process, self._process = self._process, None
        if process is not None:
            members.reap(process)
        if self._source:
            self._telemetry.retire(self._source)


class ProxyProcessError(Exception):
    """The proxy's child process could not be started."""


# --- the child ------------------------------------------------------------------------------------------------


class ChannelSink:
    """The proxy's span sink in the child: each batch to the main process as OTLP bytes, its answer awaited.

    A refusal comes back as the pipeline raised it, so the proxy's span queue retries what it may.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[frames.Result]] = {}

    async def send(self, spans: Sequence[ReadableSpan]) -> None:
        request = next(self._ids)
        future: asyncio.Future[frames.Result] = asyncio.get_running_loop().create_future()
        self.pending[request] = future
        batch = spans_to_traces(spans).SerializeToString()
        self._writer.writelines(frames.frame(Kind.PROCESS, request, *frames.process_payload(PIPELINE, batch)))
        result = await future
        if result.error is not None:
            raise result.error

    async def close(self) -> None:
        return None

    def answered(self, request: int, result: frames.Result) -> None:
        future = self.pending.pop(request, None)
        if future is not None and not future.done():
            future.set_result(result)

    def broken(self) -> None:
        for future in self.pending.values():
            if not future.done():
                future.set_exception(ConsumeError("the collector's main process is gone"))
        self.pending.clear()


def run(channel: socket.socket, sock: socket.socket, config: ProxyConfig, listener: str, log_level: int) -> None:
    """The proxy process's body (its target): serve ``sock`` until the main process says stop, or goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when the proxy stops
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level)
    logging.getLogger("uvicorn.error").setLevel(max(log_level, logging.WARNING))
    sys.setswitchinterval(0.0005)
    try:
        asyncio.run(_serve(channel, sock, config, listener))
    finally:
        channel.close()
        sock.close()


async def _serve(channel: socket.socket, sock: socket.socket, config: ProxyConfig, listener: str) -> None:
    # Here, not at the top: the main process imports this module without needing the proxy's app.
    from collector.receivers.genai_proxy import call_price, stream_check
    from proxy.app import ProxyService

    reader, writer = await asyncio.open_connection(sock=channel)
    telemetry = Telemetry()
    sink = ChannelSink(writer)
    proxy_logger = logging.getLogger(f"genai_collector.receiver.{listener}")
    service = ProxyService(config, sink, telemetry, proxy_logger, stream_check=stream_check(config), price=call_price())
    await service.start()
    server = HttpServer(service.app, config, listener=listener, telemetry=telemetry, date_header=False)
    await server.start(sock)
    mode = "managed keys" if service.auth.is_managed() else "pass-through keys"
    proxy_logger.info("GenAI proxy serving in its own process (%s)", mode)
    stop = asyncio.Event()
    dispatcher = asyncio.create_task(_dispatch(reader, sink, stop))
    reporter = asyncio.create_task(_report(writer, telemetry))
    writer.writelines(frames.frame(Kind.READY, os.getpid()))
    try:
        await stop.wait()
        await server.stop()  # no new calls; those in flight finish
        await service.stop()  # their spans reach the main process while it still answers
    finally:
        reporter.cancel()
        dispatcher.cancel()
    writer.writelines(frames.frame(Kind.STOPPED, 0, *frames.telemetry_update(telemetry.changes())))
    await writer.drain()
    writer.close()


async def _dispatch(reader: asyncio.StreamReader, sink: ChannelSink, stop: asyncio.Event) -> None:
    """Route the main process's frames: answers to the sink, STOP to the serving loop; its loss stops the proxy."""
    try:
        while True:
            message = await frames.read_frame(reader)
            if message.kind is Kind.STOP:
                stop.set()
            elif message.kind is Kind.RESULT:
                sink.answered(message.request, frames.read_result(message.payload))
    except frames.BrokenChannel:
        sink.broken()
        stop.set()


async def _report(writer: asyncio.StreamWriter, telemetry: Telemetry) -> None:
    """The proxy's counters to the main process, as they move."""
    while True:
        await asyncio.sleep(TELEMETRY_INTERVAL_SECONDS)
        changes = telemetry.changes()
        if changes:
            writer.writelines(frames.frame(Kind.TELEMETRY, 0, *frames.telemetry_update(changes)))

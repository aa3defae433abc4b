"""What the benchmark scripts share: ports, child processes, the collector under test and the configs it runs,
and the memory of a process tree. (OTLP load is in otlp_load.py, the statistics printed in report.py.)

The collector is only ever reached over its public ports (OTLP/HTTP, the proxy, the admin extension's health,
metrics and SQL) and configured only through its config file, so the scripts measure whatever runtime sits
behind them. Imported by the scripts beside it; not run on its own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_CONFIG = REPO_ROOT / "otel-config.yaml"

START_DEADLINE_SECONDS = 60
STOP_DEADLINE_SECONDS = 60
POLL_SECONDS = 0.05
STORE_POLL_SECONDS = 0.01
STORE_DEADLINE_SECONDS = 300
CLIENT_TIMEOUT_SECONDS = 60
RSS_SAMPLE_SECONDS = 0.1
LOOPBACK = "127.0.0.1"
# Variables the shipped config reads: cleared for children, so the benchmark's config is the one in force.
COLLECTOR_ENV_PREFIX = "GENAI_COLLECTOR_"
SENT_SPANS_METRIC = "otelcol_exporter_sent_spans_total"
# Declared when the exporter is built, so its presence says the counter above is simply still at zero.
QUEUE_SIZE_METRIC = "otelcol_exporter_queue_size"
STORE_EXPORTER = "clickhouse"
TRACES_TABLE = "otel_traces"


# --- ports and processes ----------------------------------------------------------------------------------


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (each held until all are picked, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((LOOPBACK, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def free_port() -> int:
    return free_ports(1)[0]


def pin(core: int) -> None:
    """Keep this process on one core, where the machine has it."""
    if hasattr(os, "sched_setaffinity") and core < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {core})


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without the collector's own variables, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(COLLECTOR_ENV_PREFIX)}
    env.update(extra or {})
    return env


def wait_until(ready: Callable[[], bool], process: subprocess.Popen[bytes], what: str, seconds: float) -> None:
    """Poll ``ready`` until it holds; fail at once when ``process`` exits, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with status {process.returncode}")
        if ready():
            return
        time.sleep(POLL_SECONDS)
    raise RuntimeError(f"{what} did not start within {seconds:.0f}s")


def port_open(port: int) -> Callable[[], bool]:
    def check() -> bool:
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.2):
                return True
        except OSError:
            return False

    return check


def http_ok(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(url, timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    return check


class ChildProcess:
    """A server in a child process on ``port``: optionally pinned to ``core``, its output in ``log``."""

    def __init__(
        self,
        argv: Sequence[str],
        port: int,
        *,
        name: str,
        core: int | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path = REPO_ROOT,
        log: Path | None = None,
        ready: Callable[[], bool] | None = None,
        start_seconds: float = START_DEADLINE_SECONDS,
    ) -> None:
        self.port, self.name, self.log = port, name, log
        output = log.open("ab") if log is not None else None
        try:
            self.process = subprocess.Popen(
                list(argv),
                cwd=cwd,
                env=dict(env) if env is not None else child_env(),
                stdout=output or subprocess.DEVNULL,
                stderr=output or subprocess.DEVNULL,
                preexec_fn=(lambda: pin(core)) if core is not None else None,
            )
        finally:
            if output is not None:
                output.close()
        try:
            wait_until(ready or port_open(port), self.process, self.describe(), start_seconds)
        except BaseException:
            self.stop()
            raise

    def describe(self) -> str:
        return f"{self.name} (log: {self.log})" if self.log else self.name

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_DEADLINE_SECONDS)


# --- the collector under test ---------------------------------------------------------------------------------


def metric_total(text: str, name: str, labels: Mapping[str, str] | None = None) -> float | None:
    """The sum of the samples of ``name`` (Prometheus text format) whose labels include ``labels``; None if absent."""
    found: float | None = None
    for match in re.finditer(rf"^{re.escape(name)}(?:\{{([^}}]*)\}})? (\S+)$", text, re.M):
        pairs = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if all(pairs.get(key) == value for key, value in (labels or {}).items()):
            found = (found or 0.0) + float(match.group(2))
    return found


class Collector:
    """``genai-collector run --config`` in its own process, read through its admin extension (health, metrics, SQL)."""

    process: subprocess.Popen[bytes]
    admin_port: int
    token_file: Path

    def __init__(
        self,
        config: Path,
        *,
        cwd: Path,
        admin_port: int,
        token_file: Path,
        core: int | None = None,
        log: Path | None = None,
    ) -> None:
        self.admin_port, self.token_file, self.log = admin_port, token_file, log
        output = log.open("ab") if log is not None else None
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "collector", "run", "--config", str(config)],
                cwd=cwd,
                env=child_env({"PYTHONPATH": str(REPO_ROOT)}),
                stdout=output or subprocess.DEVNULL,
                stderr=output or subprocess.DEVNULL,
                preexec_fn=(lambda: pin(core)) if core is not None else None,
            )
        finally:
            if output is not None:
                output.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        where = f"the collector (log: {self.log})" if getattr(self, "log", None) else "the collector"
        wait_until(http_ok(f"http://{LOOPBACK}:{self.admin_port}/health"), self.process, where, START_DEADLINE_SECONDS)

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}

    def admin_get(self, path: str) -> httpx.Response:
        """GET ``path`` on the admin endpoint with the local token the collector wrote."""
        return httpx.get(f"http://{LOOPBACK}:{self.admin_port}{path}", headers=self.admin_headers())

    def query(self, sql: str) -> list[list[Any]]:
        """Rows of a read-only statement, run by the collector on its store (the admin extension's /query)."""
        response = httpx.post(
            f"http://{LOOPBACK}:{self.admin_port}/query",
            json={"sql": sql},
            headers=self.admin_headers(),
            timeout=CLIENT_TIMEOUT_SECONDS,
        )
        if response.status_code != 200:
            raise RuntimeError(f"the admin query answered {response.status_code}: {response.text}")
        rows: list[list[Any]] = response.json()["rows"]
        return rows

    def stored(self) -> int:
        """Spans the store exporter reports written; the table's row count where that metric is not served."""
        metrics = self.admin_get("/metrics").text
        sent = metric_total(metrics, SENT_SPANS_METRIC, {"exporter": STORE_EXPORTER})
        if sent is not None:
            return int(sent)
        if metric_total(metrics, QUEUE_SIZE_METRIC, {"exporter": STORE_EXPORTER}) is not None:
            return 0  # the exporter runs and has sent nothing yet; no need to ask the store (queries may queue)
        return int(self.query(f"SELECT count() FROM {TRACES_TABLE}")[0][0])

    def wait_stored(self, total: int, seconds: float = STORE_DEADLINE_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while (stored := self.stored()) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stored} of {total} spans stored after {seconds:.0f}s")
            time.sleep(STORE_POLL_SECONDS)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_DEADLINE_SECONDS)


@dataclass
class DerivedConfig:
    """A config written for one benchmark run, and the loopback port of each listener, by its YAML path."""

    path: Path
    ports: dict[str, int]
    token_file: Path

    def port(self, where: str) -> int:
        if where not in self.ports:
            raise KeyError(f"the config has no listener at {where}; it has {', '.join(sorted(self.ports))}")
        return self.ports[where]


def _listeners(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    """Every listener in a config: a mapping whose ``endpoint`` has no scheme (host:port), by its YAML path."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        endpoint = node.get("endpoint")
        if isinstance(endpoint, str) and "://" not in endpoint:
            found.append((path, node))
        for key, value in node.items():
            found.extend(_listeners(value, f"{path}.{key}" if path else str(key)))
    return found


def derive_config(
    work: Path,
    *,
    base: Path = SHIPPED_CONFIG,
    processors: Sequence[str] | None = None,
    proxy_upstreams: Sequence[Mapping[str, Any]] | None = None,
    log_level: str = "warn",
    workers: int | None = None,
) -> DerivedConfig:
    """``base`` (the shipped config by default) as the benchmark runs it from ``work`` (its working directory).

    Every listener moves to a free loopback port and data stays under ``work`` (the shipped paths are relative);
    the admin extension is on with its token in ``work``, and the log level is ``log_level``. ``processors``
    replaces the traces pipeline's processors, ``proxy_upstreams`` the proxy's upstreams and ``workers`` the
    worker processes (``service.workers``); everything else is as ``base`` has it.
    """
    config = yaml.safe_load(base.read_text()) or {}
    extensions = config["extensions"] = config.get("extensions") or {}
    admin = extensions["admin"] = extensions.get("admin") or {}
    token_file = work / "admin-token"
    admin.update({"endpoint": "", "token_file": str(token_file)})  # the endpoint gets a free port below
    service = config.setdefault("service", {})
    if "admin" not in service.setdefault("extensions", []):
        service["extensions"].append("admin")
    service.setdefault("telemetry", {}).setdefault("logs", {})["level"] = log_level
    if processors is not None:
        service["pipelines"]["traces"]["processors"] = list(processors)
    if workers is not None:
        service["workers"] = workers
    if proxy_upstreams is not None:
        config["receivers"]["genai_proxy"]["upstreams"] = [dict(upstream) for upstream in proxy_upstreams]
    listeners = _listeners(config)
    ports = dict(zip((where for where, _ in listeners), free_ports(len(listeners)), strict=True))
    for where, settings in listeners:
        settings["endpoint"] = f"{LOOPBACK}:{ports[where]}"
    path = work / f"bench-{base.stem}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return DerivedConfig(path, ports, token_file)


def start_collector(config: DerivedConfig, work: Path, core: int | None = None) -> Collector:
    """The collector running ``config`` from ``work``, its log in ``work``/collector.log."""
    return Collector(
        config.path,
        cwd=work,
        admin_port=config.port("extensions.admin"),
        token_file=config.token_file,
        core=core,
        log=work / "collector.log",
    )


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- memory -------------------------------------------------------------------------------------------------


def _status_kib(pid: int, field_name: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(rf"^{field_name}:\s+(\d+) kB$", text, re.M)
    return int(match.group(1)) if match else 0


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, pending = [], [root]
    while pending:
        pid = pending.pop()
        tree.append(pid)
        pending.extend(children.get(pid, []))
    return tree


def cpu_seconds(pid: int) -> float:
    """User and system CPU time one process has used so far (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def tree_cpu_seconds(root: int) -> tuple[float, float]:
    """CPU time used so far by ``root`` and, summed, by its live descendants (worker processes and the like)."""
    return cpu_seconds(root), sum(cpu_seconds(pid) for pid in process_tree(root) if pid != root)


def tree_rss_bytes(root: int) -> int:
    """Resident memory of ``root`` and its descendants, summed (pages shared between them count once each)."""
    return 1024 * sum(_status_kib(pid, "VmRSS") for pid in process_tree(root))


def peak_rss_bytes(pid: int) -> int:
    """The kernel's high-water mark of one process's resident memory (VmHWM)."""
    return 1024 * _status_kib(pid, "VmHWM")


class RssSampler:
    """Samples the resident memory of a process tree every RSS_SAMPLE_SECONDS; ``peak`` is the largest sum seen."""

    def __init__(self, root: int) -> None:
        self.root, self.peak, self.samples = root, 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.root))
            self.samples += 1
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

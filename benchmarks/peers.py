"""Other projects run beside genai-collector in the benchmarks (``--peers``): LiteLLM's proxy and Arize Phoenix.

Each peer lives in a virtualenv of its own under the user's cache directory
(``~/.cache/genai-collector/bench-peers/<name>``, outside git and outside the
project's venv, whose pins theirs conflict with), created on first use with the
pinned version below. Each runs as a child process on loopback, with its
telemetry, update checks and any other outbound calls switched off by its own
settings, and is driven over its public ports exactly as genai-collector is.

The benchmark scripts import this module; it is not run on its own.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import harness
import llm_calls
import yaml

# The newest release whose ``proxy`` extra installs from the index here: later ones need ``litellm-proxy``,
# a distribution the index does not serve.
LITELLM_VERSION = "1.89.7"
PHOENIX_VERSION = "20.26.1"
INSTALL_TIMEOUT_SECONDS = 1800
PEER_START_SECONDS = 180  # a first start migrates a fresh database
INSTALLED_MARKER = "bench-peer-requirements.txt"


class PeerUnavailable(RuntimeError):
    """A peer could not be installed; the message is one line."""


def peers_root() -> Path:
    """Where the peers' virtualenvs live: ``$XDG_CACHE_HOME`` (or ~/.cache) / genai-collector / bench-peers."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "genai-collector" / "bench-peers"


@dataclass(frozen=True)
class PeerVenv:
    """A virtualenv holding one peer at pinned versions, created when first needed."""

    name: str
    requirements: tuple[str, ...]
    distribution: str  # whose installed version is printed

    @property
    def path(self) -> Path:
        return peers_root() / self.name

    def bin(self, program: str) -> Path:
        return self.path / "bin" / program

    def ensure(self) -> str:
        """Install the pinned requirements unless already there; the installed ``name==version``."""
        marker = self.path / INSTALLED_MARKER
        wanted = "\n".join(self.requirements) + "\n"
        if not (marker.exists() and marker.read_text() == wanted):
            self._install(marker, wanted)
        return f"{self.distribution}=={self.installed_version()}"

    def _install(self, marker: Path, wanted: str) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        log = self.path.parent / f"{self.name}-install.log"
        print(f"installing {' '.join(self.requirements)} into {self.path} (first use; log: {log})", flush=True)
        steps = [
            [sys.executable, "-m", "venv", str(self.path)],
            [str(self.bin("python")), "-m", "pip", "install", "--disable-pip-version-check", *self.requirements],
        ]
        with log.open("w") as output:
            for step in steps:
                try:
                    status = subprocess.run(
                        step, stdout=output, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_SECONDS
                    ).returncode
                except subprocess.TimeoutExpired:
                    status = -1
                if status != 0:
                    raise PeerUnavailable(
                        f"{self.name}: installing {' '.join(self.requirements)} failed (status {status}); see {log}"
                    )
        marker.write_text(wanted)

    def installed_version(self) -> str:
        script = f"import importlib.metadata as m; print(m.version({self.distribution!r}))"
        return subprocess.run(
            [str(self.bin("python")), "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()


def install(*venvs: PeerVenv) -> list[str]:
    """Each peer installed (on first use): its ``name==version``; exits with one line when one cannot be."""
    try:
        return [venv.ensure() for venv in venvs]
    except PeerUnavailable as exc:
        raise SystemExit(f"--peers: {exc}") from None


LITELLM = PeerVenv("litellm", (f"litellm[proxy]=={LITELLM_VERSION}",), "litellm")
PHOENIX = PeerVenv("phoenix", (f"arize-phoenix=={PHOENIX_VERSION}",), "arize-phoenix")


def _env(extra: dict[str, str], drop_prefixes: tuple[str, ...]) -> dict[str, str]:
    env = {key: value for key, value in harness.child_env().items() if not key.startswith(drop_prefixes)}
    env.update(extra)
    return env


# LiteLLM's own switches for what it would fetch or send on its own: the model cost map, Anthropic beta headers,
# blog posts and policy templates from GitHub, its usage telemetry, the feedback banner.
LITELLM_OFFLINE_ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "LITELLM_LOCAL_BLOG_POSTS": "True",
    "LITELLM_LOCAL_POLICY_TEMPLATES": "True",
    "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
    "LITELLM_LOG": "ERROR",
}
# Whatever would give it a database, a cache or a licence to check.
LITELLM_DROPPED_ENV = ("DATABASE_URL", "DIRECT_URL", "REDIS_", "LITELLM_LICENSE", "LITELLM_MASTER_KEY", "STORE_MODEL")


def start_litellm(work: Path, fast: str, stream: str, core: int | None) -> harness.ChildProcess:
    """LiteLLM's proxy (one worker, no database, no callbacks) routing the benchmark's two models to the
    same upstreams as genai_proxy: chat calls to ``fast``, streams to ``stream`` with the mock's slow scenario."""
    config = work / "litellm.yaml"
    model = str(llm_calls.BODY["model"])
    config.write_text(
        yaml.safe_dump(
            {
                "model_list": [
                    {
                        "model_name": model,
                        "litellm_params": {
                            "model": f"openai/{model}",
                            "api_base": f"{fast}/v1",
                            "api_key": llm_calls.API_KEY,
                        },
                    },
                    {
                        "model_name": llm_calls.STREAM_MODEL,
                        "litellm_params": {
                            "model": f"openai/{llm_calls.STREAM_MODEL}",
                            "api_base": f"{stream}/v1",
                            "api_key": llm_calls.API_KEY,
                            "extra_headers": llm_calls.SLOW_SCENARIO,
                        },
                    },
                ],
                "litellm_settings": {"telemetry": False},
            }
        )
    )
    port = harness.free_port()
    argv = [
        str(LITELLM.bin("litellm")),
        *("--config", str(config), "--host", harness.LOOPBACK, "--port", str(port)),
        *("--num_workers", "1", "--telemetry", "False"),
    ]
    url = f"http://{harness.LOOPBACK}:{port}"
    return harness.ChildProcess(
        argv,
        port,
        name="LiteLLM",
        core=core,
        cwd=work,
        env=_env(LITELLM_OFFLINE_ENV, LITELLM_DROPPED_ENV),
        log=work / "litellm.log",
        ready=harness.http_ok(f"{url}/health/liveliness"),
        start_seconds=PEER_START_SECONDS,
    )


PHOENIX_DATABASE = "phoenix.db"  # its default store: SQLite in its working directory
# ``phoenix serve``, except that its OTLP/gRPC listener, which it binds to every interface ([::]) whatever
# PHOENIX_HOST says and no setting changes, is bound to loopback like everything else here.
PHOENIX_LAUNCHER = f"""
import sys
import grpc.aio._server as grpc_server
add_insecure_port = grpc_server.Server.add_insecure_port
grpc_server.Server.add_insecure_port = lambda server, address: add_insecure_port(
    server, address.replace("[::]", "{harness.LOOPBACK}")
)
from phoenix.server.main import main
sys.argv = ["phoenix", "serve"]
sys.exit(main())
"""


class Phoenix(harness.ChildProcess):
    """``phoenix serve`` on loopback with its default store (SQLite under ``work``), telemetry off."""

    def __init__(self, work: Path, core: int | None = None) -> None:
        self.work = work
        port = harness.free_port()
        env = _env(
            {
                "PHOENIX_HOST": harness.LOOPBACK,
                "PHOENIX_PORT": str(port),
                "PHOENIX_GRPC_PORT": str(harness.free_port()),
                "PHOENIX_WORKING_DIR": str(work),
                # Nothing fetched or sent on its own: telemetry pixels, web fonts, downloads.
                "PHOENIX_TELEMETRY_ENABLED": "false",
                "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
                "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
                "PHOENIX_ENABLE_MCP_SERVER": "false",
                "PHOENIX_LOGGING_LEVEL": "warning",
            },
            # Its default store, whatever the environment says.
            ("PHOENIX_SQL_DATABASE", "PHOENIX_POSTGRES_", "PHOENIX_COLLECTOR_ENDPOINT"),
        )
        super().__init__(
            [str(PHOENIX.bin("python")), "-c", PHOENIX_LAUNCHER],
            port,
            name="Phoenix",
            core=core,
            cwd=work,
            env=env,
            log=work / "phoenix.log",
            ready=harness.http_ok(f"http://{harness.LOOPBACK}:{port}/healthz"),
            start_seconds=PEER_START_SECONDS,
        )

    @property
    def traces_url(self) -> str:
        return f"{self.url}/v1/traces"

    def stored(self) -> int:
        """Spans in its database, read from a read-only connection to the SQLite file."""
        database = self.work / PHOENIX_DATABASE
        if not database.exists():
            return 0
        uri = f"file:{database}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=harness.CLIENT_TIMEOUT_SECONDS)) as db:
            try:
                return int(db.execute("SELECT count(*) FROM spans").fetchone()[0])
            except sqlite3.OperationalError:  # the schema is not there yet
                return 0

"""The ``genai-collector`` command: run, validate, query, proxy, keys, evaluate, version.

A user's mistake (a config problem, a port in use, a store held by another
process, a statement that is not read-only) ends with exit status 2 and one line
per problem on standard error, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from collector import __version__
from collector.config.loader import expand_env, load_yaml
from collector.config.problems import ConfigError
from collector.config.service import CollectorConfig, check_listeners, load_config, parse_config
from collector.errors import StartError
from collector.httpserver import ListenError
from collector.keys import ROLES
from collector.keys_command import add_limit_arguments, create_key, limits_of, list_keys, revoke_key, update_key
from collector.listeners.descriptors import raise_open_files_limit
from collector.private_files import restrict_umask
from collector.proxy_command import ProxyCommandError, otlp_traces_url, proxy_config, serve_proxy
from collector.query.client import run_query
from collector.query.errors import NotReadOnlyError, QueryError, TooManyQueriesError
from collector.query.output import render
from collector.query.result import QueryResult
from collector.registry import Registry, default_registry
from collector.service import Service, check_memory_budgets
from proxy.config import ProxyConfig

DEFAULT_CONFIG = Path("otel-config.yaml")
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
GIL_SWITCH_INTERVAL_SECONDS = 0.0005
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logger = logging.getLogger("genai_collector")


class UserError(Exception):
    """Ends the command with exit status 2 and these lines on standard error."""

    def __init__(self, *lines: str) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="genai-collector", description="OpenTelemetry-native collector for LLM and agent telemetry."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def with_config(sub: argparse.ArgumentParser) -> argparse.ArgumentParser:
        sub.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help="config file (default: ./otel-config.yaml)"
        )
        return sub

    with_config(commands.add_parser("run", help="run the collector"))
    with_config(commands.add_parser("validate", help="check the config and exit"))
    query = with_config(commands.add_parser("query", help="run a read-only SQL statement against the store"))
    query.add_argument("sql", help='e.g. "SELECT count() FROM otel_traces"')
    query.add_argument("--format", choices=["table", "json", "csv"], default="table", dest="output_format")
    query.add_argument("--exporter", help="which clickhouse exporter's store, when there are several")
    proxy = with_config(commands.add_parser("proxy", help="run the GenAI proxy alone, spans over OTLP"))
    proxy.add_argument("--receiver", help="which genai_proxy receiver's settings, when there are several")
    proxy.add_argument(
        "--otlp-endpoint",
        help="collector to send spans to (default: $OTEL_EXPORTER_OTLP_ENDPOINT or http://127.0.0.1:4318)",
    )
    keys = commands.add_parser(
        "keys", help="manage the keys of the proxy (managed auth) and of the admin and api endpoints"
    )
    key_commands = keys.add_subparsers(dest="keys_command", metavar="KEYS_COMMAND", required=True)
    create = with_config(key_commands.add_parser("create", help="create a key; it is shown once"))
    create.add_argument(
        "--role",
        choices=ROLES,
        default="proxy",
        help="proxy (default): calls through the proxy; admin, operator, viewer: the collector's endpoints",
    )
    create.add_argument("--tenant", help="the tenant of a proxy key (required) or the one tenant an API key sees")
    add_limit_arguments(create)
    update = with_config(key_commands.add_parser("update", help="change a proxy key's limits; they apply at once"))
    update.add_argument("key_id", help="the id keys list shows, e.g. key_0123456789ab")
    add_limit_arguments(update)
    listing = with_config(
        key_commands.add_parser("list", help="list keys (id, role, tenant, created, limits and usage), never the keys")
    )
    revoke = with_config(key_commands.add_parser("revoke", help="remove a key; it stops working at once"))
    revoke.add_argument("key_id", help="the id keys list shows, e.g. key_0123456789ab")
    for sub in (create, update, listing, revoke):
        sub.add_argument("--receiver", help="which genai_proxy receiver's keys file, when there are several")
    evaluate = with_config(
        commands.add_parser("evaluate", help="score stored calls on a genai_evaluation connector's dimension")
    )
    evaluate.add_argument("--since", default="24h", help="how far back, e.g. 24h, 90m (default: 24h)")
    evaluate.add_argument("--dimension", required=True, help="the dimension's name in the connector's settings")
    evaluate.add_argument("--judge-model", help="judge with this model (default: the connector's)")
    evaluate.add_argument("--limit", type=int, default=1000, help="at most this many calls (default: 1000)")
    evaluate.add_argument("--dry-run", action="store_true", help="list the calls and the estimated cost only")
    evaluate.add_argument("--connector", help="which genai_evaluation connector, when there are several")
    evaluate.add_argument("--exporter", help="which clickhouse exporter's store, when there are several")
    evaluate.add_argument("--otlp-endpoint", help="also send the results as OTLP logs to this collector")
    commands.add_parser("version", help="print the version")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Before anything is written: the chDB engine creates its files with the process umask.
    restrict_umask()
    command = args.command or "run"
    if command == "version":
        print(f"genai-collector {__version__}")
        return EXIT_OK
    config_path: Path = getattr(args, "config", DEFAULT_CONFIG)
    try:
        registry = default_registry()
        if command == "validate":
            config = _load(config_path, registry)
            check_listeners(config)
            check_memory_budgets(config)
            print(f"{config_path}: configuration is valid")
            return EXIT_OK
        if command == "query":
            return _query(_load(config_path, registry), registry, args.sql, args.output_format, args.exporter)
        if command == "proxy":
            settings = proxy_config(_load(config_path, registry), args.receiver)
            return _run_proxy(settings, otlp_traces_url(args.otlp_endpoint))
        if command == "keys":
            print(_keys(args, _load(config_path, registry)))
            return EXIT_OK
        if command == "evaluate":
            return _evaluate(args, config_path, registry)
        return _run(_load(config_path, registry), registry)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_USAGE
    except UserError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return EXIT_USAGE
    except ProxyCommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _keys(args: argparse.Namespace, config: CollectorConfig) -> str:
    if args.keys_command == "create":
        return create_key(config, args.role, args.tenant, args.receiver, limits_of(args)[0])
    if args.keys_command == "update":
        limits, cleared = limits_of(args)
        return update_key(config, args.key_id, limits, cleared, args.receiver)
    if args.keys_command == "revoke":
        return revoke_key(config, args.key_id, args.receiver)
    return list_keys(config, args.receiver)


def _load(path: Path, registry: Registry) -> CollectorConfig:
    return load_config(path, registry)


def _query(config: CollectorConfig, registry: Registry, sql: str, output_format: str, exporter: str | None) -> int:
    try:
        result = run_query(config, registry, sql, exporter)
    except (NotReadOnlyError, QueryError, TooManyQueriesError) as exc:
        raise UserError(f"error: {exc}") from None
    sys.stdout.write(render(result, output_format))  # type: ignore[arg-type]
    return EXIT_OK


def _evaluate(args: argparse.Namespace, config_path: Path, registry: Registry) -> int:
    from connectors.genai_evaluation.command import EvaluateArguments, EvaluateError, evaluate

    document = expand_env(load_yaml(config_path))
    config = parse_config(document, registry)
    arguments = EvaluateArguments(
        since=args.since,
        dimension=args.dimension,
        judge_model=args.judge_model,
        limit=args.limit,
        dry_run=args.dry_run,
        connector=args.connector,
        otlp_endpoint=args.otlp_endpoint,
    )

    def query(sql: str) -> QueryResult:
        try:
            return run_query(config, registry, sql, args.exporter)
        except (NotReadOnlyError, QueryError, TooManyQueriesError) as exc:
            raise UserError(f"error: {exc}") from None

    try:
        evaluate(document, arguments, query, _traces_table(config, args.exporter), sys.stdout)
    except EvaluateError as exc:
        raise UserError(f"error: {exc}") from None
    return EXIT_OK


def _traces_table(config: CollectorConfig, exporter: str | None) -> str:
    """The traces table of the clickhouse exporter whose store is read (its checked identifier)."""
    from exporters.clickhouse.config import DEFAULT_TRACES_TABLE, ClickHouseConfig

    for component in config.components["exporters"].values():
        if isinstance(component.config, ClickHouseConfig) and exporter in (None, str(component.id)):
            return str(component.config.traces_table_name)
    return DEFAULT_TRACES_TABLE


def _run_proxy(settings: ProxyConfig, traces_url: str) -> int:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT, stream=sys.stderr)
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    raise_open_files_limit()
    try:
        asyncio.run(serve_proxy(settings, traces_url))
    except ListenError as exc:
        raise UserError(f"error: {exc}") from None
    return EXIT_OK


def _run(config: CollectorConfig, registry: Registry) -> int:
    logging.basicConfig(level=config.log_level, format=LOG_FORMAT, stream=sys.stderr)
    # uvicorn announces every server it starts; the collector logs its own listeners.
    logging.getLogger("uvicorn.error").setLevel(max(config.log_level, logging.WARNING))
    raise_open_files_limit()
    check_listeners(config)
    # The event loop shares the GIL with the threads that write the queues and build the store's columns; with
    # Python's default 5 ms a thread holding it delays every listener's answer by that much, again and again.
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_SECONDS)
    return asyncio.run(_serve(config, registry))


async def _serve(config: CollectorConfig, registry: Registry) -> int:
    service = Service(config, registry)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if not stop.is_set():
            stop.set()
            return
        logger.warning("second stop signal: dropping what is still queued")
        service.abandon()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        await service.start()
    except (ListenError, StartError) as exc:
        raise UserError(f"error: {exc}") from None
    logger.info("genai-collector %s is running; stop with Ctrl-C", __version__)
    await stop.wait()
    logger.info("shutting down: draining pipelines (signal again to stop without sending what is queued)")
    await service.shutdown()
    logger.info("stopped")
    return EXIT_OK

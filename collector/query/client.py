"""Where ``genai-collector query`` runs its SQL: the running collector, or the store itself.

chDB lets one process at a time open a data directory, so while a collector runs
it owns the store and answers through its admin endpoint. When no collector
answers there, the command opens the store of the configured exporter directly.
Either way the store's own guard, query profile and pool answer: the same
checks and limits whichever path the query takes.

The admin endpoint wants an admin key: $GENAI_COLLECTOR_API_KEY when set, else
the local token the running collector wrote in its owner-only token file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import httpx

from collector.component import ComponentSettings
from collector.config.service import CollectorConfig
from collector.extensions.access import read_local_token
from collector.extensions.admin import AdminConfig
from collector.query.errors import QueryError
from collector.query.result import QueryResult
from collector.query.stores import StoreChoiceError, choose_store, queryable_stores
from collector.registry import Registry
from collector.service import check_memory_budgets
from collector.telemetry import Telemetry

ADMIN_TIMEOUT_SECONDS = 60.0
WILDCARD_HOSTS = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
API_KEY_VARIABLE = "GENAI_COLLECTOR_API_KEY"


def run_query(config: CollectorConfig, registry: Registry, sql: str, exporter: str | None = None) -> QueryResult:
    """Answer ``sql`` (read-only) from the collector's admin endpoint or, failing that, the store."""
    for admin in _admin_endpoints(config):
        url, key = admin[0], _api_key(admin[1])
        result = _query_admin(url, key, sql, exporter)
        if result is not None:
            return result
    return _query_store_directly(config, registry, sql, exporter)


def _admin_endpoints(config: CollectorConfig) -> list[tuple[str, AdminConfig]]:
    """The /query URL and settings of every admin extension the service runs."""
    urls = []
    for component in config.used("extensions"):
        if isinstance(component.config, AdminConfig):
            endpoint = component.config.endpoint
            host = WILDCARD_HOSTS.get(endpoint.host, endpoint.host)
            host = f"[{host}]" if ":" in host else host
            urls.append((f"http://{host}:{endpoint.port}/query", component.config))
    return urls


def _api_key(admin: AdminConfig, environ: Mapping[str, str] | None = None) -> str | None:
    """The key to present: the environment's, else the running collector's local token."""
    env = os.environ if environ is None else environ
    if env.get(API_KEY_VARIABLE):
        return env[API_KEY_VARIABLE]
    token_path = admin.token_path()
    return read_local_token(token_path) if token_path is not None else None


def _query_admin(url: str, key: str | None, sql: str, exporter: str | None) -> QueryResult | None:
    """The admin endpoint's answer; None when nothing listens there."""
    payload: dict[str, Any] = {"sql": sql}
    if exporter is not None:
        payload["exporter"] = exporter
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=ADMIN_TIMEOUT_SECONDS)
    except httpx.ConnectError:
        return None
    except httpx.HTTPError as exc:
        raise QueryError(f"the collector at {url} did not answer: {exc}") from None
    try:
        body = response.json()
    except ValueError:
        raise QueryError(f"the collector at {url} answered {response.status_code} without JSON") from None
    if response.status_code == 401 and not key:
        raise QueryError(
            f"the collector at {url} wants an admin key: set {API_KEY_VARIABLE}, "
            "or run the command as the user running the collector"
        )
    if response.status_code != 200:
        raise QueryError(str(body.get("error", f"HTTP {response.status_code}")))
    return QueryResult(columns=body["columns"], types=body["types"], rows=body["rows"])


def _query_store_directly(config: CollectorConfig, registry: Registry, sql: str, exporter: str | None) -> QueryResult:
    candidates = {}
    for component in config.components["exporters"].values():
        factory = registry.exporters[component.id.type]
        if (exporter is not None and str(component.id) != exporter) or not factory.supports("traces"):
            continue
        candidates[component.id] = (factory, component)
    if exporter is not None and not candidates:
        raise QueryError(f'no exporter "{exporter}" in the config')
    telemetry = Telemetry()
    memory_limit = check_memory_budgets(config)
    built = {
        cid: factory.creator("traces")(
            ComponentSettings(
                cid, "exporter", logging.getLogger(f"genai_collector.query.{cid}"), telemetry, memory_limit
            ),
            component.config,
        )
        for cid, (factory, component) in candidates.items()
    }
    try:
        store = choose_store(queryable_stores(built), exporter, "choose one with --exporter")
    except StoreChoiceError as exc:
        raise QueryError(str(exc)) from None
    try:
        return store.query(sql)
    finally:
        close = getattr(store, "close", None)
        if callable(close):
            close()

"""Prometheus, Tempo and Grafana files of deploy/: every reference resolves to a service, a port, a datasource."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.deployfiles import (
    COLLECTOR_CONFIG_TARGET,
    DEPLOY_DIR,
    MAIN_COMPOSE,
    exposed_ports,
    interpolate_text,
    load_compose,
    load_yaml_file,
    mounted_file,
    split_host_port,
)

PROMETHEUS_CONFIG = DEPLOY_DIR / "prometheus" / "prometheus.yml"
TEMPO_CONFIG = DEPLOY_DIR / "tempo" / "tempo.yaml"
PROVISIONING = DEPLOY_DIR / "grafana" / "provisioning"
DATASOURCES = PROVISIONING / "datasources" / "datasources.yaml"
DASHBOARD_PROVIDERS = PROVISIONING / "dashboards" / "dashboards.yaml"
DASHBOARD = DEPLOY_DIR / "grafana" / "dashboards" / "genai.json"

# What the collector's prometheus exporter and admin endpoint serve (before _bucket/_sum/_count).
GENAI_METRICS = {
    "gen_ai_client_inference_usage_input_tokens_total",
    "gen_ai_client_inference_usage_output_tokens_total",
    "gen_ai_client_inference_usage_cache_read_input_tokens_total",
    "gen_ai_client_inference_usage_cache_write_input_tokens_total",
    "gen_ai_client_inference_usage_reasoning_output_tokens_total",
    "gen_ai_client_inference_operation_input_tokens",
    "gen_ai_client_inference_operation_output_tokens",
    "gen_ai_client_inference_duration_seconds",
    "gen_ai_client_inference_time_to_first_chunk_seconds",
    "gen_ai_client_embeddings_duration_seconds",
    "gen_ai_client_embeddings_operation_input_tokens",
    "gen_ai_client_operation_cost",
    "gen_ai_invocation_duration_seconds",
    "gen_ai_execute_tool_duration_seconds",
}
GENAI_LABELS = {
    "gen_ai_token_modality",
    "gen_ai_agent_name",
    "gen_ai_tool_name",
    "gen_ai_usage_cost_currency",
    "error_type",
    "gen_ai_provider_name",
    "gen_ai_request_model",
    "gen_ai_operation_name",
    "service_name",
    "tenant_id",
}
ADMIN_METRICS = {
    "otelcol_receiver_accepted_spans_total",
    "otelcol_receiver_refused_spans_total",
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_enqueue_failed_spans_total",
    "otelcol_exporter_rejected_spans_total",
    "otelcol_exporter_queue_size",
    "otelcol_exporter_queue_capacity",
}
FINDING_EVENT = "gen_ai.security.finding"
# Attributes every finding event carries (docs/components.md, genai_security).
FINDING_ATTRIBUTES = {
    "gen_ai.security.detector.id",
    "gen_ai.security.category",
    "gen_ai.security.severity",
    "gen_ai.security.action",
}


def _services() -> dict[str, Any]:
    services: dict[str, Any] = load_compose(MAIN_COMPOSE)["services"]
    return services


def _assert_reachable(where: str, host: str, port: int) -> None:
    services = _services()
    assert host in services, f"{where}: {host} is not a compose service"
    assert port in exposed_ports(services[host]), f"{where}: {host} does not expose {port}"


def _datasources() -> dict[str, dict[str, Any]]:
    document = load_yaml_file(DATASOURCES)
    assert document["apiVersion"] == 1
    by_uid: dict[str, dict[str, Any]] = {}
    for source in document["datasources"]:
        assert source["uid"] not in by_uid, f"datasource uid {source['uid']} twice"
        by_uid[source["uid"]] = source
    return by_uid


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def _panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = []
    for panel in _dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def _targets(datasource_type: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for panel in _panels():
        for target in panel.get("targets", []):
            if (target.get("datasource") or panel.get("datasource") or {}).get("type") == datasource_type:
                yield panel, target


def _collector_config() -> dict[str, Any]:
    config: dict[str, Any] = load_yaml_file(
        mounted_file(MAIN_COMPOSE, _services()["collector"], COLLECTOR_CONFIG_TARGET)
    )
    return config


# Prometheus


def test_every_scrape_target_is_a_service_port() -> None:
    config = load_yaml_file(PROMETHEUS_CONFIG)
    jobs = [job["job_name"] for job in config["scrape_configs"]]
    assert len(jobs) == len(set(jobs))
    targets = set()
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = split_host_port(target)
                _assert_reachable(f"job {job['job_name']}", host, port)
                targets.add((host, port, job.get("metrics_path", "/metrics")))
    collector = _collector_config()
    exporter = collector["exporters"]["prometheus"]
    genai_port = split_host_port(exporter["endpoint"])[1]
    admin_port = split_host_port(collector["extensions"]["admin"]["endpoint"])[1]
    assert ("collector", genai_port, exporter.get("path", "/metrics")) in targets
    assert ("collector", admin_port, "/metrics") in targets


def test_prometheus_mounts_its_config() -> None:
    prometheus = _services()["prometheus"]
    config_arg = next(arg for arg in prometheus["command"] if arg.startswith("--config.file="))
    assert mounted_file(MAIN_COMPOSE, prometheus, config_arg.split("=", 1)[1]) == PROMETHEUS_CONFIG


# Tempo


def test_tempo_receives_otlp_on_every_interface_and_stores_on_its_volume() -> None:
    tempo = load_yaml_file(TEMPO_CONFIG)
    for name, protocol in tempo["distributor"]["receivers"]["otlp"]["protocols"].items():
        assert split_host_port(protocol["endpoint"])[0] == "0.0.0.0", f"otlp {name}"
    service = _services()["tempo"]
    volume_targets = [str(v).split(":")[1] for v in service["volumes"] if not str(v).startswith(".")]
    storage = tempo["storage"]["trace"]
    for path in (storage["wal"]["path"], storage["local"]["path"]):
        assert any(path.startswith(target + "/") for target in volume_targets), f"{path} is not on a volume"


# Grafana provisioning


def test_datasources_point_at_services_and_ports_they_expose() -> None:
    for uid, source in _datasources().items():
        if source["type"] == "grafana-clickhouse-datasource":
            host, port = source["jsonData"]["host"], int(source["jsonData"]["port"])
        else:
            parts = urlsplit(source["url"])
            assert parts.hostname and parts.port, f"datasource {uid}: {source['url']}"
            host, port = parts.hostname, parts.port
        _assert_reachable(f"datasource {uid}", host, port)
    assert {source["type"] for source in _datasources().values()} == {
        "grafana-clickhouse-datasource",
        "prometheus",
        "tempo",
        "jaeger",
    }


def test_clickhouse_datasource_reads_otel_traces_in_opentelemetry_mode() -> None:
    clickhouse = next(s for s in _datasources().values() if s["type"] == "grafana-clickhouse-datasource")
    traces = clickhouse["jsonData"]["traces"]
    assert traces["otelEnabled"] is True
    collector_exporter = _collector_config()["exporters"]["clickhouse"]
    assert traces["defaultTable"] == collector_exporter["traces_table_name"] == "otel_traces"
    assert traces["defaultDatabase"] == collector_exporter["database"]
    assert clickhouse["jsonData"]["protocol"] == "http"


def test_datasource_credentials_come_from_grafanas_environment() -> None:
    text = DATASOURCES.read_text(encoding="utf-8")
    grafana_env = _services()["grafana"]["environment"]
    for name in re.findall(r"\$\{(\w+)\}", text):
        assert name in grafana_env, f"datasources.yaml reads ${name}, which the grafana service does not set"
    clickhouse = next(s for s in _datasources().values() if s["type"] == "grafana-clickhouse-datasource")
    assert clickhouse["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"
    assert interpolate_text(clickhouse["jsonData"]["username"], grafana_env) == grafana_env["CLICKHOUSE_USER"]


def test_grafana_mounts_provisioning_and_the_dashboard_folder_the_provider_reads() -> None:
    grafana = _services()["grafana"]
    assert mounted_file(MAIN_COMPOSE, grafana, "/etc/grafana/provisioning") == PROVISIONING
    providers = load_yaml_file(DASHBOARD_PROVIDERS)["providers"]
    assert len(providers) == 1
    folder = mounted_file(MAIN_COMPOSE, grafana, providers[0]["options"]["path"])
    assert folder == DASHBOARD.parent
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == providers[0]["options"]["path"] + "/" + DASHBOARD.name
    assert "grafana-clickhouse-datasource" in grafana["environment"]["GF_INSTALL_PLUGINS"]


# The dashboard


def test_every_datasource_the_dashboard_uses_is_provisioned() -> None:
    sources = _datasources()
    referenced: list[tuple[str, dict[str, Any]]] = []
    for panel in _panels():
        if "datasource" in panel:
            referenced.append((panel["title"], panel["datasource"]))
        for target in panel.get("targets", []):
            referenced.append((panel["title"], target["datasource"]))
        for override in panel.get("fieldConfig", {}).get("overrides", []):
            for prop in override["properties"]:
                for link in prop["value"] if prop["id"] == "links" else []:
                    if "internal" in link:
                        uid = link["internal"]["datasourceUid"]
                        referenced.append((panel["title"], {"uid": uid, "type": sources.get(uid, {}).get("type")}))
    for variable in _dashboard()["templating"]["list"]:
        referenced.append((f"variable {variable['name']}", variable["datasource"]))
    for where, ref in referenced:
        assert ref["uid"] in sources, f"{where}: datasource {ref['uid']} is not provisioned"
        assert ref["type"] == sources[ref["uid"]]["type"], f"{where}: {ref} has the wrong type"


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = _panels()
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


@pytest.mark.parametrize(
    ("topic", "words"),
    [
        ("calls", ("calls",)),
        ("tokens", ("tokens",)),
        ("cost", ("cost",)),
        ("latency", ("latency", "duration")),
        ("time to first chunk", ("time to first chunk",)),
        ("findings", ("findings",)),
    ],
)
def test_dashboard_covers(topic: str, words: tuple[str, ...]) -> None:
    titles = [panel["title"].lower() for panel in _panels() if panel["type"] != "row"]
    assert any(word in title for title in titles for word in words), f"no panel about {topic}"


def test_promql_uses_only_metrics_and_labels_the_collector_serves() -> None:
    queries = [target["expr"] for _, target in _targets("prometheus")]
    queries += [v["definition"] for v in _dashboard()["templating"]["list"] if v["datasource"]["type"] == "prometheus"]
    assert queries
    for query in queries:
        for metric in re.findall(r"\b((?:gen_ai|otelcol)_[a-z_]+)", query):
            if metric in GENAI_LABELS:
                continue
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            assert base in GENAI_METRICS or metric in ADMIN_METRICS, f"{metric} is not served: {query}"
        for selector in re.findall(r"\{([^}]*)\}", query):
            for label in re.findall(r"(\w+)\s*=~?", selector):
                assert label in GENAI_LABELS, f"label {label} is not on the GenAI metrics: {query}"
    variables = {v["name"] for v in _dashboard()["templating"]["list"]}
    for query in queries:
        for used in re.findall(r"\$(\w+)", query):
            assert used.startswith("__") or used in variables, f"${used} is not a dashboard variable"


def test_findings_panels_read_span_events_from_otel_traces() -> None:
    findings = [(panel, target) for panel, target in _targets("grafana-clickhouse-datasource")]
    assert findings
    finding_queries = [t["rawSql"] for p, t in findings if "finding" in p["title"].lower()]
    assert len(finding_queries) >= 2
    for sql in finding_queries:
        assert "FROM otel_traces" in sql and f"'{FINDING_EVENT}'" in sql
        assert "Events.Name" in sql and "Events.Attributes" in sql
        for attribute in re.findall(r"finding\['([^']+)'\]", sql):
            assert attribute in FINDING_ATTRIBUTES, f"{attribute} is not a finding event attribute"
    for _, target in findings:
        assert target["editorType"] == "sql" and target["queryType"] in ("table", "timeseries")

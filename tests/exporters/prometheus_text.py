"""A Prometheus text exposition parsed by Prometheus' own Python client (``prometheus_client.parser``), or by the
line-by-line reader the self-metrics tests use (``parse_metrics``)."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

HTTP_TIMEOUT = 10.0
# Labels every series of one scope carries (the exporter's ``otel_scope_*``); comparisons leave them out on request.
SCOPE_LABEL_PREFIX = "otel_scope_"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str, without_scope: bool = False) -> Samples:
    """Every sample by (name, labels); empty-valued labels are no labels (as in Prometheus)."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = frozenset(
                (name, value)
                for name, value in sample.labels.items()
                if value and not (without_scope and name.startswith(SCOPE_LABEL_PREFIX))
            )
            key = (sample.name, labels)
            assert key not in found, f"duplicate series {key}"
            found[key] = sample.value
    return found


def families(text: str) -> dict[str, tuple[str, str]]:
    """Each family's (type, help) by its name as the parser gives it (a counter's without ``_total``)."""
    return {family.name: (family.type, family.documentation) for family in text_string_to_metric_families(text)}


def scrape(port: int) -> httpx.Response:
    reply = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=HTTP_TIMEOUT)
    assert reply.status_code == 200, reply.text
    return reply


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> tuple[Samples, dict[str, str]]:
    """Samples by (name, labels), and the TYPE of each family, from the Prometheus text format."""
    found: Samples = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match, line
        name, labels, value = match.groups()
        key = (name, frozenset(_LABEL.findall(labels or "")))
        assert key not in found, f"duplicate series {line}"
        found[key] = float(value)
    return found, types


def total_of(found: Samples, name: str) -> float:
    """The sum of every series of one sample name."""
    return sum(value for (sample, _), value in found.items() if sample == name)

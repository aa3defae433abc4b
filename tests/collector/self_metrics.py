"""What a /metrics page of the collector or the proxy may hold: declared self-metrics only, each documented.

``rendered_problems`` checks a page against every metadata.yaml and the
self-metrics table of docs/components.md; ``source_problems`` checks Python
source for metric names written at a call site instead of declared.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping, Set
from pathlib import Path

from collector import mdatagen
from collector.telemetry import MetricSpec
from tests.exporters.prometheus_text import parse_metrics

# The packages whose code records self-metrics.
RECORDING_PACKAGES = ("collector", "processors", "exporters", "proxy", "connectors")
# The one module besides the generated ones that makes MetricSpecs: from each metadata.yaml.
GENERATOR = "collector/mdatagen.py"


def declared() -> dict[str, MetricSpec]:
    """Every declared self-metric, by the name its samples carry."""
    return {spec.series_name: spec for metadata in mdatagen.read_all() for spec in metadata.metrics}


def documented(docs: str | None = None) -> set[str]:
    """The sample names the self-metrics table of docs/components.md (or ``docs``) lists."""
    text = docs if docs is not None else (mdatagen.REPO_ROOT / mdatagen.DOCS_FILE).read_text()
    table = text[text.index(mdatagen.DOCS_BEGIN) + len(mdatagen.DOCS_BEGIN) : text.index(mdatagen.DOCS_END)]
    return {row.split("`")[1] for row in table.splitlines() if row.startswith("| `")}


def rendered_problems(
    page: str, specs: Mapping[str, MetricSpec] | None = None, listed: Set[str] | None = None
) -> list[str]:
    """One line per family or series of ``page`` (Prometheus text) that is undeclared, undocumented or mislabelled."""
    specs = declared() if specs is None else specs
    listed = documented() if listed is None else listed
    samples, types = parse_metrics(page)
    problems: list[str] = []
    for name, kind in sorted(types.items()):
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{name}: declared in no metadata.yaml")
            continue
        if spec.kind != kind:
            problems.append(f"{name}: rendered as a {kind}, declared a {spec.kind}")
        if name not in listed:
            problems.append(f"{name}: missing from the self-metrics table of docs/components.md")
    for name, labels in sorted(samples):
        spec = specs.get(name)
        if spec is None:
            if name not in types:
                problems.append(f"{name}: a sample without a TYPE line")
            continue
        names = {label for label, _ in labels}
        if not set(spec.labels) <= names <= {*spec.labels, *spec.optional_labels}:
            wanted = f"{list(spec.labels)} + {list(spec.optional_labels)}"
            problems.append(f"{name}: labels {sorted(names)}, declared {wanted}")
    return problems


def source_files(root: Path = mdatagen.REPO_ROOT) -> Iterator[Path]:
    """The Python files of the recording packages, the generated declarations left out."""
    for package in RECORDING_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if path.name != mdatagen.GENERATED_FILE:
                yield path


def source_problems(source: str, where: str, names: Set[str]) -> list[str]:
    """One line per place in ``source`` that names a self-metric in a string instead of through its declaration.

    Three shapes: a string literal (not a docstring) that is one of ``names``; a ``MetricSpec(...)`` made outside a
    generated file and the generator (a metric declared at its call site, not in a metadata.yaml); a call on a registry
    (``...telemetry.<method>(...)``) given a string literal, as ``telemetry.add("name", ...)`` once was.
    """
    tree = ast.parse(source, where)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree) if _has_docstring(node)}  # type: ignore[attr-defined]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            if node.value in names:
                found.append((node.lineno, f"the metric name {node.value!r} in a string"))
        elif isinstance(node, ast.Call):
            called = ast.unparse(node.func)
            if called.split(".")[-1] == "MetricSpec" and where != GENERATOR:
                found.append((node.lineno, "a MetricSpec made outside a generated_metrics.py"))
            elif _on_a_registry(node.func) and any(_is_string(arg) for arg in node.args):
                found.append((node.lineno, f"{called}() given a metric name in a string"))
    return [f"{where}:{line}: {problem}" for line, problem in sorted(found)]


def _has_docstring(node: ast.AST) -> bool:
    if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) or not node.body:
        return False
    first = node.body[0]
    return isinstance(first, ast.Expr) and _is_string(first.value)


def _on_a_registry(func: ast.expr) -> bool:
    """Whether ``func`` is a method of something named a telemetry (``telemetry.x``, ``self._telemetry.x``)."""
    if not isinstance(func, ast.Attribute):
        return False
    owner = func.value
    name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
    return name.lstrip("_") == "telemetry"


def _is_string(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)

"""Generate the typed self-metrics of each package from its ``metadata.yaml`` (``make metadata``).

As the OpenTelemetry Collector's mdatagen does, a package that records
metrics of the collector's own declares each of them once, in a
``metadata.yaml`` beside its code::

    type: genai_cost                 # names the class made: GenaiCostSelfMetrics
    metrics:
      genai_cost_unpriced_spans:     # the Prometheus name (a counter's series gain _total)
        kind: counter                # counter or gauge
        unit: "{spans}"              # UCUM: s, By, or an annotation such as {spans}
        description: LLM call spans without a price.   # the HELP text
        attributes: [processor]      # label names every series carries
        optional_attributes: []      # label names only some series carry

and this module writes ``generated_metrics.py`` next to it: the declarations
(``MetricSpec``), one class per metric whose ``add``/``bind`` (counters) or
``watch`` (gauges) take exactly its labels as keyword arguments, and a class
that makes all of them in one ``Telemetry``. Code records through those and
never names a metric in a string. The same pass writes the table of every
self-metric into docs/components.md, between the two markers there.

The generated files are committed; tests generate again in memory and
compare, so a metadata.yaml edited without ``make metadata`` fails the suite.

Usage: python -m collector.mdatagen [--check]
(``--check`` writes nothing and exits 1 when a generated file is out of date.)
"""

from __future__ import annotations

import json
import keyword
import re
import sys
import textwrap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from collector.telemetry import PROMETHEUS_UNITS, MetricKind, MetricSpec

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("collector", "processors", "exporters", "proxy", "connectors")
METADATA_FILE = "metadata.yaml"
GENERATED_FILE = "generated_metrics.py"
DOCS_FILE = Path("docs", "components.md")  # under the repository's root
DOCS_BEGIN = "<!-- self-metrics: generated from each metadata.yaml by `make metadata`; edit those, not this table -->"
DOCS_END = "<!-- end of self-metrics -->"
LINE_LENGTH = 120
INDENT = "    "

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")
_ANNOTATION = re.compile(r"\{[a-z_ ]+\}\Z")
# Parameter names of the generated methods besides the labels.
_RESERVED = frozenset({"self", "amount", "read"})
_KINDS: tuple[MetricKind, ...] = ("counter", "gauge")
_METRIC_KEYS = frozenset({"kind", "unit", "description", "attributes", "optional_attributes"})


class MetadataError(Exception):
    """A metadata.yaml the generator cannot use: one line naming the file and the YAML path."""


@dataclass(frozen=True)
class Metadata:
    """One metadata.yaml, read and checked."""

    path: Path
    type: str
    metrics: tuple[MetricSpec, ...]

    @property
    def builder(self) -> str:
        """The name of the generated class that makes every metric of the file."""
        return f"{_camel(self.type)}SelfMetrics"

    @property
    def generated_path(self) -> Path:
        return self.path.with_name(GENERATED_FILE)


def field_name(spec: MetricSpec) -> str:
    """The attribute a metric has on its generated class: its name without the first word (otelcol_, genai_)."""
    return spec.name.split("_", 1)[1]


def metadata_files(root: Path = REPO_ROOT) -> list[Path]:
    """Every metadata.yaml of the project's packages, in path order."""
    found: list[Path] = []
    for package in PACKAGES:
        if (root / package).is_dir():
            found.extend((root / package).rglob(METADATA_FILE))
    return sorted(found)


def read_all(root: Path = REPO_ROOT) -> list[Metadata]:
    """Every metadata.yaml of the project, read and checked, no metric declared twice."""
    files = [load(path) for path in metadata_files(root)]
    seen: dict[str, Path] = {}
    for metadata in files:
        for spec in metadata.metrics:
            other = seen.setdefault(spec.name, metadata.path)
            if other != metadata.path:
                raise MetadataError(f"{metadata.path}: metrics.{spec.name}: already declared in {other}")
    return files


def load(path: Path) -> Metadata:
    """Read and check one metadata.yaml; MetadataError names the first mistake."""
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise MetadataError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(document, dict):
        raise MetadataError(f"{path}: expected a mapping with type and metrics")
    unknown = set(document) - {"type", "metrics"}
    if unknown:
        raise MetadataError(f"{path}: unknown key {sorted(unknown)[0]!r}")
    kind_name = document.get("type")
    if not isinstance(kind_name, str) or not _NAME.match(kind_name):
        raise MetadataError(f"{path}: type: expected a snake_case name")
    metrics = document.get("metrics")
    if not isinstance(metrics, dict) or not metrics:
        raise MetadataError(f"{path}: metrics: expected a mapping of metric names to their declarations")
    specs = tuple(_spec(path, name, declaration) for name, declaration in metrics.items())
    fields: dict[str, str] = {}
    for spec in specs:
        other = fields.setdefault(field_name(spec), spec.name)
        if other != spec.name:
            raise MetadataError(f"{path}: metrics.{spec.name}: its field name clashes with {other}'s")
    return Metadata(path, kind_name, specs)


def _spec(path: Path, name: object, declaration: object) -> MetricSpec:
    where = f"{path}: metrics.{name}"
    if not isinstance(name, str) or not _NAME.match(name) or "_" not in name:
        raise MetadataError(f"{where}: expected a snake_case name of at least two words")
    if name.endswith("_total"):
        raise MetadataError(f"{where}: a counter's _total is added in the Prometheus text; leave it out")
    if not isinstance(declaration, dict):
        raise MetadataError(f"{where}: expected a mapping")
    unknown = set(declaration) - _METRIC_KEYS
    if unknown:
        raise MetadataError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    kind = declaration.get("kind")
    if kind not in _KINDS:
        raise MetadataError(f"{where}.kind: expected one of {', '.join(_KINDS)}")
    unit = declaration.get("unit")
    if not isinstance(unit, str) or not (unit in PROMETHEUS_UNITS or _ANNOTATION.match(unit)):
        known = ", ".join(PROMETHEUS_UNITS)
        raise MetadataError(f"{where}.unit: expected {known} or an annotation such as {{spans}}")
    description = declaration.get("description")
    if not isinstance(description, str) or not description.strip():
        raise MetadataError(f"{where}.description: expected the HELP text")
    labels = _label_names(f"{where}.attributes", declaration.get("attributes", []))
    optional = _label_names(f"{where}.optional_attributes", declaration.get("optional_attributes", []))
    if set(labels) & set(optional):
        raise MetadataError(f"{where}: {sorted(set(labels) & set(optional))[0]} is listed as both kinds of attribute")
    return MetricSpec(name, kind, " ".join(description.split()), unit, labels, optional)


def _label_names(where: str, names: object) -> tuple[str, ...]:
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise MetadataError(f"{where}: expected a list of label names")
    for label in names:
        if not _NAME.match(label) or keyword.iskeyword(label) or label in _RESERVED:
            raise MetadataError(f"{where}: {label!r} cannot be a label name")
    if len(set(names)) != len(names):
        raise MetadataError(f"{where}: a label is listed twice")
    return tuple(sorted(names))


def generate(metadata: Metadata, root: Path = REPO_ROOT) -> str:
    """The source of ``generated_metrics.py`` for ``metadata``."""
    source = metadata.path.relative_to(root).as_posix()
    used = {"Telemetry", "MetricSpec"}
    for spec in metadata.metrics:
        used.add("Counter" if spec.kind == "counter" else "Gauge")
        if spec.kind == "counter":
            used.add("BoundCounter")
        if spec.optional_labels:
            used.add("present")
    names = sorted(used, key=lambda n: (n[0].islower(), n))
    lines = [
        f"# Generated by collector.mdatagen from {source}:",
        "# edit that file, then run `make metadata`.",
        f'"""The self-metrics of {metadata.type}, typed, as its metadata.yaml declares them."""',
        "",
        "from __future__ import annotations",
        "",
    ]
    if any(spec.kind == "gauge" for spec in metadata.metrics):
        lines += ["from collections.abc import Callable", ""]
    lines.append(f"from collector.telemetry import {', '.join(names)}")
    for spec in metadata.metrics:
        lines += ["", *_declaration(spec)]
    for spec in metadata.metrics:
        lines += ["", "", *_instrument(spec)]
    lines += ["", "", f"class {metadata.builder}:"]
    lines += [f'{INDENT}"""Every self-metric of {metadata.type}, declared in one registry."""', ""]
    lines += [f"{INDENT}def __init__(self, telemetry: Telemetry) -> None:"]
    for spec in metadata.metrics:
        field = field_name(spec)
        line = f"{INDENT * 2}self.{field} = {_camel(field)}(telemetry, {field.upper()})"
        if len(line) > LINE_LENGTH:
            line = f"{INDENT * 2}self.{field} = {_camel(field)}(\n{INDENT * 3}telemetry, {field.upper()}\n{INDENT * 2})"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _declaration(spec: MetricSpec) -> list[str]:
    lines = [f"{field_name(spec).upper()} = MetricSpec("]
    lines.append(f"{INDENT}name={_quote(spec.name)},")
    lines.append(f'{INDENT}kind="{spec.kind}",')
    lines += _string_argument("help", spec.help)
    lines.append(f"{INDENT}unit={_quote(spec.unit)},")
    if spec.labels:
        lines.append(f"{INDENT}labels={_tuple(spec.labels)},")
    if spec.optional_labels:
        lines.append(f"{INDENT}optional_labels={_tuple(spec.optional_labels)},")
    lines.append(")")
    return lines


def _string_argument(name: str, text: str) -> list[str]:
    """``name="text",`` as one line, or as adjacent literals in parentheses when that is too long."""
    line = f"{INDENT}{name}={_quote(text)},"
    if len(line) <= LINE_LENGTH:
        return [line]
    width = LINE_LENGTH - len(INDENT * 2) - 2
    chunks = textwrap.wrap(text, width, drop_whitespace=False, break_on_hyphens=False)
    return [f"{INDENT}{name}=(", *(f"{INDENT * 2}{_quote(chunk)}" for chunk in chunks), f"{INDENT}),"]


def _instrument(spec: MetricSpec) -> list[str]:
    field = field_name(spec)
    params = "".join(f", {label}: str" for label in spec.labels)
    params += "".join(f", {label}: str | None = None" for label in spec.optional_labels)
    keyword_only = f", *{params}" if params else ""
    key = _key(spec)
    lines = [f"class {_camel(field)}({'Counter' if spec.kind == 'counter' else 'Gauge'}):"]
    lines += [f"{INDENT}{line}" for line in _docstring(spec.help, LINE_LENGTH - len(INDENT))]
    if spec.kind == "counter":
        lines += [
            "",
            f"{INDENT}def add(self, amount: float{keyword_only}) -> None:",
            *_call("self._add(amount, ", key, ")"),
            "",
            f"{INDENT}def bind(self{keyword_only}) -> BoundCounter:",
            *_call("return self._bind(", key, ")"),
        ]
    else:
        lines += [
            "",
            f"{INDENT}def watch(self, read: Callable[[], float]{keyword_only}) -> None:",
            *_call("self._watch(read, ", key, ")"),
        ]
    return lines


def _key(spec: MetricSpec) -> tuple[str, list[str]]:
    """How a call builds the label tuple: a literal, or ``present(...)`` when some labels are optional.

    Either way the labels are sorted by name, as a series keeps them; the literal's items, or present's
    arguments, are the second part.
    """
    names = sorted((*spec.labels, *spec.optional_labels))
    items = [f"({_quote(name)}, {name})" for name in names]
    return ("present(", items) if spec.optional_labels else ("", items)


def _call(opening: str, key: tuple[str, list[str]], closing: str) -> list[str]:
    """A method body's one statement, passing the label tuple; wrapped when longer than LINE_LENGTH."""
    body = INDENT * 2
    wrapper, items = key
    if not items:
        return [f"{body}{opening}(){closing}"]
    inline = f"{wrapper}{', '.join(items)})" if wrapper else _literal(items)
    single = f"{body}{opening}{inline}{closing}"
    if len(single) <= LINE_LENGTH:
        return [single]
    items_lines = [f"{body}{INDENT}{item}," for item in items]
    return [f"{body}{opening}{wrapper or '('}", *items_lines, f"{body}){closing}"]


def _literal(items: Sequence[str]) -> str:
    return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"


def _docstring(text: str, width: int) -> list[str]:
    one = f'"""{text}"""'
    if len(one) <= width:
        return [one]
    return ['"""', *textwrap.wrap(text, width), '"""']


def _tuple(names: Iterable[str]) -> str:
    quoted = [_quote(name) for name in names]
    return f"({quoted[0]},)" if len(quoted) == 1 else f"({', '.join(quoted)})"


def _quote(text: str) -> str:
    """A double-quoted Python string literal (JSON's escapes are Python's too)."""
    return json.dumps(text, ensure_ascii=False)


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def docs_table(files: Sequence[Metadata], root: Path = REPO_ROOT) -> str:
    """The markdown table of every self-metric, for docs/components.md."""
    lines = [
        "| metric | kind | unit | labels | declared in | help |",
        "|---|---|---|---|---|---|",
    ]
    rows: list[tuple[str, str]] = []
    for metadata in files:
        where = metadata.path.parent.relative_to(root).as_posix()
        for spec in metadata.metrics:
            labels = [f"`{label}`" for label in spec.labels]
            labels += [f"`{label}` (some series)" for label in spec.optional_labels]
            unit = f"`{spec.unit}`"
            help_text = spec.help.replace("|", "\\|")
            row = f"| `{spec.series_name}` | {spec.kind} | {unit} | {', '.join(labels)} | `{where}` | {help_text} |"
            rows.append((spec.name, row))
    return "\n".join([*lines, *(row for _, row in sorted(rows))])


def with_docs_table(document: str, table: str) -> str:
    """``document`` with the text between the markers replaced by ``table``."""
    start = document.find(DOCS_BEGIN)
    end = document.find(DOCS_END)
    if start < 0 or end < start:
        raise MetadataError(f"{DOCS_FILE}: the markers of the self-metrics table are missing")
    return f"{document[: start + len(DOCS_BEGIN)]}\n{table}\n{document[end:]}"


def outputs(root: Path = REPO_ROOT) -> dict[Path, str]:
    """Every file the generator writes, with what it should hold; MetadataError for a bad metadata.yaml."""
    files = read_all(root)
    wanted = {metadata.generated_path: generate(metadata, root) for metadata in files}
    docs = root / DOCS_FILE
    wanted[docs] = with_docs_table(docs.read_text(), docs_table(files, root))
    return wanted


def out_of_date(wanted: dict[Path, str]) -> list[Path]:
    """The files of ``wanted`` that do not hold what they should."""
    return [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]


def main(argv: Sequence[str]) -> int:
    check = "--check" in argv[1:]
    try:
        wanted = outputs()
    except MetadataError as exc:
        print(exc, file=sys.stderr)
        return 2
    stale = out_of_date(wanted)
    for path in stale:
        if check:
            print(f"{path.relative_to(REPO_ROOT)} is out of date: run make metadata", file=sys.stderr)
        else:
            path.write_text(wanted[path])
            print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

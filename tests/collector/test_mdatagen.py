"""collector.mdatagen: the committed generated_metrics.py files and the docs table match the metadata.yaml files."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest

from collector import mdatagen
from collector.telemetry import Telemetry

METADATA = """\
type: sample_thing
metrics:
  genai_sample_refused_items:
    kind: counter
    unit: "{items}"
    description: Items refused, by reason.
    attributes: [thing]
    optional_attributes: [reason]
  genai_sample_held_bytes:
    kind: gauge
    unit: By
    description: Bytes held.
    attributes: [thing]
"""


def _tree(root: Path, metadata: str = METADATA) -> Path:
    """A repository of one package with ``metadata`` and the real docs/components.md; the metadata.yaml's path."""
    package = root / "processors" / "sample"
    package.mkdir(parents=True)
    (package / mdatagen.METADATA_FILE).write_text(metadata)
    (root / mdatagen.DOCS_FILE).parent.mkdir(parents=True)
    shutil.copy(mdatagen.REPO_ROOT / mdatagen.DOCS_FILE, root / mdatagen.DOCS_FILE)
    return package / mdatagen.METADATA_FILE


def test_the_committed_generated_files_and_docs_table_are_up_to_date() -> None:
    wanted = mdatagen.outputs()
    assert len(wanted) > 1 + len(mdatagen.PACKAGES)  # the docs and a generated file per declaring package
    stale = [str(path.relative_to(mdatagen.REPO_ROOT)) for path in mdatagen.out_of_date(wanted)]
    assert stale == [], "run make metadata"


def test_an_edited_metadata_yaml_leaves_its_generated_file_and_the_docs_out_of_date(tmp_path: Path) -> None:
    metadata = _tree(tmp_path)
    for path, text in mdatagen.outputs(tmp_path).items():
        path.write_text(text)
    assert mdatagen.out_of_date(mdatagen.outputs(tmp_path)) == []

    metadata.write_text(METADATA.replace("Bytes held.", "Bytes held now."))
    stale = mdatagen.out_of_date(mdatagen.outputs(tmp_path))
    assert sorted(stale) == sorted([tmp_path / mdatagen.DOCS_FILE, metadata.with_name(mdatagen.GENERATED_FILE)])


def test_the_generated_module_records_what_the_metadata_declares(tmp_path: Path) -> None:
    metadata = mdatagen.load(_tree(tmp_path))
    source = mdatagen.generate(metadata, tmp_path)
    module = ModuleType("generated_sample")
    exec(compile(source, "generated_metrics.py", "exec"), module.__dict__)

    telemetry = Telemetry()
    metrics = module.SampleThingSelfMetrics(telemetry)
    metrics.sample_refused_items.add(2, thing="a")
    metrics.sample_refused_items.bind(thing="a", reason="limit").add(3)
    metrics.sample_held_bytes.watch(lambda: 512.0, thing="a")
    assert telemetry.render() == (
        "# HELP genai_sample_held_bytes Bytes held.\n"
        "# TYPE genai_sample_held_bytes gauge\n"
        "# UNIT genai_sample_held_bytes bytes\n"
        'genai_sample_held_bytes{thing="a"} 512\n'
        "# HELP genai_sample_refused_items_total Items refused, by reason.\n"
        "# TYPE genai_sample_refused_items_total counter\n"
        'genai_sample_refused_items_total{reason="limit",thing="a"} 3\n'
        'genai_sample_refused_items_total{thing="a"} 2\n'
    )
    with pytest.raises(TypeError):
        metrics.sample_held_bytes.watch(lambda: 0.0)  # its label is required

    table = mdatagen.docs_table([metadata], tmp_path)
    assert (
        "| `genai_sample_refused_items_total` | counter | `{items}` | `thing`, `reason` (some series) "
        "| `processors/sample` | Items refused, by reason. |"
    ) in table


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("kind: gauge", "kind: histogram"), "metrics.genai_sample_held_bytes.kind: expected one of counter, gauge"),
        (("unit: By", "unit: bytes"), "metrics.genai_sample_held_bytes.unit: expected s, By or an annotation"),
        (("genai_sample_held_bytes:", "genai_sample_held_bytes_total:"), "_total is added in the Prometheus text"),
        (("optional_attributes: [reason]", "optional_attributes: [why, why]"), "a label is listed twice"),
        (("optional_attributes: [reason]", "optional_attributes: [thing]"), "thing is listed as both kinds"),
        (("optional_attributes: [reason]", "optional_attributes: [amount]"), "'amount' cannot be a label name"),
        (("    description: Bytes held.\n", ""), "metrics.genai_sample_held_bytes.description: expected the HELP"),
        (("type: sample_thing", "type: Sample"), "type: expected a snake_case name"),
        (("metrics:", "metric:"), "unknown key 'metric'"),
        (("kind: counter", "kind: [counter"), "not YAML"),
    ],
)
def test_a_mistake_in_a_metadata_yaml_is_one_line_naming_the_file_and_the_place(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    path = _tree(tmp_path, METADATA.replace(*change))
    with pytest.raises(mdatagen.MetadataError) as caught:
        mdatagen.outputs(tmp_path)
    assert str(caught.value).startswith(f"{path}: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_metric_declared_by_two_packages_is_refused(tmp_path: Path) -> None:
    _tree(tmp_path)
    other = tmp_path / "exporters" / "sample"
    other.mkdir(parents=True)
    (other / mdatagen.METADATA_FILE).write_text(METADATA.replace("sample_thing", "other_thing"))
    with pytest.raises(mdatagen.MetadataError, match="already declared in"):
        mdatagen.outputs(tmp_path)

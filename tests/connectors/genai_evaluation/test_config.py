"""Config mistakes of the genai_evaluation connector: one line each, naming the YAML path."""

from __future__ import annotations

from typing import Any

import pytest

from collector.config.problems import ConfigError
from tests.connectors.genai_evaluation.support import config, upstreams

URL = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({}, "connectors.genai_evaluation.dimensions: define at least one dimension"),
        (
            {"dimensions": [{"name": "r", "rubric": "relevance"}]},
            "connectors.genai_evaluation.dimensions[0]: a judged dimension needs judge.model (or its judge_model)",
        ),
        (
            {"dimensions": [{"name": "r", "rubric": "kindness"}]},
            'connectors.genai_evaluation.dimensions[0].rubric: unknown rubric "kindness"; expected one of '
            "faithfulness, harmful_content, relevance, task_completion, tool_use",
        ),
        (
            {"dimensions": [{"name": "r", "rubric": "relevance", "rule": {"type": "json_valid"}}]},
            "connectors.genai_evaluation.dimensions[0]: set exactly one of rubric, template or rule",
        ),
        (
            {
                "judge": {"model": "gpt-4o", "upstreams": upstreams(URL)},
                "dimensions": [{"name": "c", "template": "{oops}"}],
            },
            'connectors.genai_evaluation.dimensions[0].template: unknown variable "{oops}"; expected one of input, '
            "output, system, tool_results, steps, attributes[KEY]",
        ),
        (
            {"dimensions": [{"name": "x", "rule": {"type": "regex_present", "pattern": "("}}]},
            "connectors.genai_evaluation.dimensions[0].rule.pattern: is not a valid RE2 pattern: missing ): (",
        ),
        (
            {"dimensions": [{"name": "x", "rule": {"type": "json_schema", "schema": '{"type": 5}'}}]},
            "connectors.genai_evaluation.dimensions[0].rule.schema: is not a valid JSON schema: "
            "5 is not valid under any of the given schemas",
        ),
        (
            {"dimensions": [{"name": "x", "rule": {"type": "json_valid"}, "sampling_rate": 1.5}]},
            "connectors.genai_evaluation.dimensions[0].sampling_rate: must be between 0 and 1",
        ),
        (
            {
                "judge": {"model": "claude-x", "upstreams": upstreams(URL)},
                "dimensions": [{"name": "x", "rubric": "relevance"}],
            },
            'connectors.genai_evaluation.judge.model: no upstream serves "claude-x"',
        ),
        (
            {
                "dimensions": [{"name": "x", "rubric": "tool_use"}],
                "judge": {"model": "gpt-4o", "upstreams": upstreams(URL)},
            },
            "connectors.genai_evaluation.dimensions[0].applies_to: the tool_use rubric applies to agent_runs",
        ),
    ],
)
def test_one_line_per_mistake(raw: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(raw)
    assert problem in [str(p) for p in caught.value.problems]


def test_a_custom_template_with_labels() -> None:
    raw = {
        "judge": {"model": "gpt-4o", "upstreams": upstreams(URL)},
        "dimensions": [
            {
                "name": "tone",
                "template": "Is this polite? {output} (model {attributes[gen_ai.request.model]}) {{literal}}",
                "labels": ["polite", "rude"],
                "pass_labels": ["polite"],
            }
        ],
    }
    decoded = config(raw)
    assert decoded.dimensions[0].labels == ("polite", "rude")

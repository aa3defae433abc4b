"""/api/v1/openapi.json: a valid OpenAPI 3.1 document, and the answers the API really gives match it."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource

from tests.collector.extensions.api.world import World


@pytest.fixture(scope="module")
def document(world: World) -> dict[str, Any]:
    answer: dict[str, Any] = world.json("/api/v1/openapi.json", key=None)
    return answer


def test_the_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"] == "3.1.0"


def test_the_document_declares_what_the_handlers_accept(world: World, document: dict[str, Any]) -> None:
    """Every declared query parameter is accepted by its route, and an undeclared one is refused."""
    traces = document["paths"]["/api/v1/traces"]["get"]
    declared = {parameter["name"] for parameter in traces["parameters"]}
    assert declared == {
        "start", "end", "service", "span_name", "model", "provider", "operation", "tenant", "conversation",
        "has_findings", "min_severity", "error", "min_duration", "max_duration", "attribute", "limit", "cursor",
    }  # fmt: skip
    refused = world.get("/api/v1/traces", not_declared="x").json()
    assert refused["error"].startswith(
        "not_declared: unknown parameter; this endpoint takes " + ", ".join(sorted(declared))
    )
    limit = next(p for p in traces["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20}
    assert world.get("/api/v1/traces", limit="1001").json()["parameter"] == "limit"


def _validator(document: dict[str, Any], schema: dict[str, Any]) -> Draft202012Validator:
    root = Resource.from_contents({**document, "$schema": "https://json-schema.org/draft/2020-12/schema"})
    registry: Registry = Registry().with_resource("urn:openapi", root)
    return Draft202012Validator({"$ref": "urn:openapi" + schema["$ref"]}, registry=registry)


def _check(document: dict[str, Any], path: str, status: int, body: Any) -> None:
    operation = document["paths"][path]["get"]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    errors = sorted(_validator(document, schema).iter_errors(body), key=str)
    assert not errors, f"{path} {status}: {errors[0].message} at {list(errors[0].absolute_path)}"


def test_real_answers_match_their_schemas(world: World, document: dict[str, Any]) -> None:
    window = world.window()
    trace_id = world.traces["invoke_agent support"]
    answers = [
        ("/api/v1/traces", "/api/v1/traces", window),
        ("/api/v1/traces/{trace_id}", f"/api/v1/traces/{trace_id}", {}),
        ("/api/v1/calls", "/api/v1/calls", window),
        ("/api/v1/stats", "/api/v1/stats", {**window, "group_by": "model,provider,service,tenant", "bucket": "hour"}),
        ("/api/v1/stats", "/api/v1/stats", {**window, "group_by": "operation"}),
        ("/api/v1/findings", "/api/v1/findings", window),
        ("/api/v1/conversations/{conversation_id}", "/api/v1/conversations/c-acme-1", {"end": window["end"]}),
        ("/api/v1/services", "/api/v1/services", window),
        ("/api/v1/stats", "/api/v1/stats", {**window, "group_by": "model", "bucket": "5minutes"}),
        ("/api/v1/conversations", "/api/v1/conversations", window),
        ("/api/v1/about", "/api/v1/about", {}),
    ]
    for declared, path, params in answers:
        answer = world.get(path, **params)
        assert answer.status_code == 200, answer.text
        _check(document, declared, 200, answer.json())


@pytest.mark.parametrize(
    ("declared", "path", "params", "status"),
    [
        ("/api/v1/traces", "/api/v1/traces", {"limit": "0"}, 400),
        ("/api/v1/traces/{trace_id}", "/api/v1/traces/" + "0" * 32, {}, 404),
        ("/api/v1/conversations/{conversation_id}", "/api/v1/conversations/none", {}, 404),
    ],
)
def test_errors_match_the_error_schema(
    world: World, document: dict[str, Any], declared: str, path: str, params: dict[str, str], status: int
) -> None:
    answer = world.get(path, **params)
    assert answer.status_code == status
    _check(document, declared, status, answer.json())

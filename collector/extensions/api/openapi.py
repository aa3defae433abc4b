"""The OpenAPI 3.1 document of the API, made from the same ``Endpoint`` declarations the routes are made from."""

from __future__ import annotations

from collections.abc import Iterable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from collector.extensions.api import schemas
from collector.extensions.api.endpoints import Endpoint

OPENAPI_VERSION = "3.1.0"
PACKAGE = "genai-collector"
TITLE = "genai-collector read API"
DESCRIPTION = (
    "Traces, GenAI calls, costs and findings stored by genai-collector. Every request but /health and this "
    "document needs an API key (Authorization: Bearer <key>) unless the listener is on loopback and no key exists; "
    "a key bound to a tenant sees only that tenant's data."
)
STATUS_TEXT = {
    101: "Switching to the WebSocket protocol",
    400: "A parameter is missing or invalid; parameter names it",
    401: "No API key, or not a valid one",
    403: "The key's role does not reach this, or the request came from a name or origin not accepted",
    404: "Not found",
    502: "The store could not answer",
    503: "Every query slot is busy (see Retry-After), or the stream has all the clients it takes",
    504: "The query ran longer than the store's max_execution_time",
}
QUERY_ERRORS = (502, 503, 504)


def _version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return "0"


def _error(status: int) -> dict[str, Any]:
    return {
        "description": STATUS_TEXT[status],
        "content": {"application/json": {"schema": schemas.ref("Error")}},
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    responses: dict[str, Any]
    if endpoint.websocket:
        responses = {"101": {"description": STATUS_TEXT[101]}}
    else:
        media_type, schema = endpoint.response_media_type, dict(endpoint.response_schema)
        responses = {"200": {"description": endpoint.summary, "content": {media_type: {"schema": schema}}}}
    for status in (*endpoint.errors, *QUERY_ERRORS):
        responses[str(status)] = _error(status)
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "parameters": [parameter.openapi() for parameter in endpoint.parameters],
        "responses": responses,
    }
    if endpoint.description:
        operation["description"] = endpoint.description
    if endpoint.tags:
        operation["tags"] = list(endpoint.tags)
    return operation


def document(endpoints: Iterable[Endpoint], open_paths: Iterable[str] = ()) -> dict[str, Any]:
    """The OpenAPI document of ``endpoints`` (those declared with ``openapi``)."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        if endpoint.openapi:
            paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    for path in open_paths:
        for operation in paths.get(path, {}).values():
            operation["security"] = []
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": TITLE, "version": _version(), "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": schemas.COMPONENTS,
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer", "description": "An API key (gca_...)"}},
        },
        "security": [{"apiKey": []}],
    }

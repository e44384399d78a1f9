"""The OpenAPI 3.1 document, generated from the pydantic models that validate requests and shape
responses.

A view states its contract with `@operation(...)` right under its route decorator. The document
walks the app's url_map; a route without a contract is left out (and logged), and a test compares
the url_map with the served document, so such a route fails the suite. The error answers of an
operation follow from what it declares (an API key means 401, a body 400/413/415/422, a query 422, a
path parameter 404) plus the statuses it lists in `errors`; all carry the one envelope, ErrorBody.

The schemas are pydantic's own (`models_json_schema`, JSON Schema 2020-12, which OpenAPI 3.1
takes as it is), placed verbatim under components/schemas.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from importlib.metadata import version
from typing import Any, Literal, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from werkzeug.routing import Rule

from api.schemas.errors import ErrorBody
from shared.logging import get_logger

log = get_logger(__name__)

Auth = Literal["key", "admin", "none"]
View = TypeVar("View", bound=Callable[..., Any])
Json = dict[str, Any]

_CONTRACT_ATTR = "__openapi_contract__"
_EXTENSION = "promptq.openapi"

SECURITY_SCHEMES: dict[str, Json] = {
    "apiKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A user's API key, from `promptq keys create <user>`.",
    },
    "adminKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "The operator's ADMIN_API_KEY (the admin API is off while it is unset).",
    },
}
_SECURITY: dict[Auth, list[dict[str, list[str]]]] = {
    "key": [{"apiKey": []}],
    "admin": [{"adminKey": []}],
    "none": [],
}

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "The body is not valid JSON (code `invalid_json`).",
    401: "No API key, or an unknown, revoked or expired one (code `unauthorized`).",
    403: "The admin API is disabled (code `forbidden`).",
    404: "No such resource, or it is not the caller's (code `not_found`).",
    409: "The request collides with existing state (codes `idempotency_conflict`, "
    "`job_not_cancellable`, `job_not_streamed`, `already_exists`, `limit_reached`).",
    413: "The request body is larger than the server accepts (code `payload_too_large`).",
    415: "The body is not sent as `Content-Type: application/json` (code "
    "`unsupported_media_type`).",
    422: "Well-formed JSON, but invalid; `details` lists each problem.",
    429: "Over a rate limit or budget (codes `rate_limited`, `budget_exceeded`); retry after "
    "`Retry-After` seconds.",
    503: "Temporarily unable to serve, with `Retry-After`: the job queues are full (code "
    "`queue_full`), PostgreSQL is away (code `database_unavailable`) or Redis is away (code "
    "`broker_unavailable`).",
}
_RETRY_AFTER: Json = {
    "Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer", "minimum": 0}}
}
_ERROR_HEADERS: dict[int, Json] = {
    401: {
        "WWW-Authenticate": {
            "description": "How to authenticate.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}

# Werkzeug's URL converters (`<int:n>`) as the JSON Schema of the path segment each accepts.
_CONVERTER_SCHEMAS: dict[str, Json] = {
    "default": {"type": "string", "pattern": "^[^/]+$"},
    "string": {"type": "string", "pattern": "^[^/]+$"},
    "path": {"type": "string"},
    "int": {"type": "integer", "minimum": 0},
    "float": {"type": "number", "minimum": 0},
    "uuid": {"type": "string", "format": "uuid"},
}
_RULE_PARAM = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Body:
    """A success body that is not plain JSON, or that needs a word: e.g. a stream of one
    `model` per line, `Body(BatchResultLine, "application/x-ndjson", "One result a line.")`."""

    model: type[BaseModel]
    media_type: str = "application/json"
    description: str | None = None


ResponseBody = type[BaseModel] | Body | None


class ContractError(ValueError):
    """A contract names something the app does not have (a link target, a URL converter)."""


@dataclass(frozen=True)
class Contract:
    """What one view accepts and answers; `@operation` attaches it to the view."""

    summary: str
    responses: Mapping[int, Body | None]
    request: type[BaseModel] | None
    query: type[BaseModel] | None
    errors: tuple[int, ...]
    auth: Auth
    tags: tuple[str, ...]
    links: Mapping[str, Json]

    def error_statuses(self, has_path_params: bool) -> list[int]:
        """Every error status the operation can answer with."""
        statuses = set(self.errors)
        if self.auth != "none":
            statuses.add(401)
        if self.auth == "admin":
            statuses.add(403)
        if self.request is not None:
            statuses |= {400, 413, 415, 422}
        if self.query is not None:
            statuses.add(422)
        if has_path_params:
            statuses.add(404)
        return sorted(statuses)


def operation(
    *,
    summary: str,
    responses: Mapping[int, ResponseBody],
    request: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    errors: Sequence[int] = (),
    auth: Auth = "key",
    tags: Sequence[str] = (),
    links: Mapping[str, Json] | None = None,
) -> Callable[[View], View]:
    """Declare a view's contract; put it right under the route decorator.

    `responses`: each success status and its body: a model (JSON), a `Body`, or None (no
    body). `request`: the JSON
    body model; `query`: the query-string model. `errors`: error statuses beyond the implied
    ones. `auth`: "key" (a user's API key), "admin" (ADMIN_API_KEY) or "none". `links` (made
    with `link`) go on every success response, for clients and for stateful fuzzing.
    """
    if not responses or any(status >= 400 for status in responses):
        raise ContractError("`responses` holds the success statuses; put error ones in `errors`")
    contract = Contract(
        summary=summary,
        responses={
            status: Body(body) if isinstance(body, type) else body
            for status, body in responses.items()
        },
        request=request,
        query=query,
        errors=tuple(errors),
        auth=auth,
        tags=tuple(tags),
        links=dict(links or {}),
    )

    def declare(view: View) -> View:
        setattr(view, _CONTRACT_ATTR, contract)
        return view

    return declare


def link(operation_id: str, **parameters: str) -> Json:
    """A link to the operation `operation_id` (its Flask endpoint, e.g. 'jobs.get_job') with
    parameters taken from this response, e.g. `job_id="$response.body#/id"`."""
    return {"operationId": operation_id, "parameters": parameters}


def is_documented(endpoint: str) -> bool:
    """Every endpoint but Flask's static files, the docs' own (api/routes/docs.py), the
    Prometheus scrape (api/routes/metrics.py) and the OpenAI- and Anthropic-compatible
    surfaces, whose contracts and error shapes are their vendors' documents (api/compat/)."""
    return endpoint != "static" and endpoint.split(".", 1)[0] not in (
        "docs",
        "metrics",
        "openai",
        "anthropic",
    )


def document_for(app: Flask) -> Json:
    """The app's OpenAPI document, built on first use (the routes are fixed by then)."""
    if _EXTENSION not in app.extensions:
        app.extensions[_EXTENSION] = build_document(app)
    document: Json = app.extensions[_EXTENSION]
    return document


def build_document(app: Flask) -> Json:
    """Assemble the document from the app's routes and their contracts."""
    routes = list(_documented_routes(app))
    refs, schemas = _component_schemas([contract for _, _, contract in routes])
    operation_ids = {rule.endpoint for rule, _, _ in routes}
    paths: dict[str, Json] = {}
    for rule, view, contract in routes:
        for name, target in contract.links.items():
            if target["operationId"] not in operation_ids:
                raise ContractError(
                    f"{rule.endpoint}: link {name!r} points at {target['operationId']!r}, "
                    "which is no documented route"
                )
        path, path_params = _openapi_path(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                rule, view, contract, path_params, refs, schemas
            )
    tags = sorted({tag for _, _, contract in routes for tag in contract.tags})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "promptq",
            "version": version("promptq"),
            "description": "Async job gateway for LLM calls. Every error answers with "
            '`{"error": {"code", "message", "details"}}`.',
        },
        "tags": [{"name": tag} for tag in tags],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def _documented_routes(app: Flask) -> Iterator[tuple[Rule, Callable[..., Any], Contract]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if not is_documented(rule.endpoint):
            continue
        view = app.view_functions[rule.endpoint]
        contract = getattr(view, _CONTRACT_ATTR, None)
        if contract is None:
            log.warning("openapi.undocumented_route", rule=rule.rule, endpoint=rule.endpoint)
            continue
        yield rule, view, contract


ModelKey = tuple[type[BaseModel], JsonSchemaMode]


def _component_schemas(contracts: list[Contract]) -> tuple[dict[ModelKey, str], Json]:
    """Every model's schema for components/schemas, and the $ref of each (model, mode).

    Request and query models are documented as pydantic validates them, response models as it
    serializes them; a model used both ways whose two schemas differ gets both.
    """
    wanted: dict[ModelKey, None] = {(ErrorBody, "serialization"): None}
    for contract in contracts:
        for model in (contract.request, contract.query):
            if model is not None:
                wanted[(model, "validation")] = None
        for body in contract.responses.values():
            if body is not None:
                wanted[(body.model, "serialization")] = None
    key_map, definitions = models_json_schema(
        list(wanted), ref_template="#/components/schemas/{model}"
    )
    refs = {key: schema["$ref"] for key, schema in key_map.items()}
    return refs, definitions.get("$defs", {})


def _openapi_path(rule: Rule) -> tuple[str, list[Json]]:
    """`/v1/jobs/<job_id>` -> `/v1/jobs/{job_id}`, with its path parameters."""
    parameters: list[Json] = []

    def replace(match: re.Match[str]) -> str:
        converter = match["converter"] or "default"
        if converter not in _CONVERTER_SCHEMAS:
            raise ContractError(f"{rule.rule}: no schema for URL converter {converter!r}")
        name = match["name"]
        parameters.append(
            {"name": name, "in": "path", "required": True, "schema": _CONVERTER_SCHEMAS[converter]}
        )
        return "{" + name + "}"

    return _RULE_PARAM.sub(replace, rule.rule), parameters


def _query_parameters(schema: Json) -> list[Json]:
    """One query parameter per field of the query model."""
    required = set(schema.get("required", ()))
    parameters = []
    for name, field in schema.get("properties", {}).items():
        parameter = {"name": name, "in": "query", "required": name in required, "schema": field}
        if "description" in field:
            parameter["description"] = field["description"]
        parameters.append(parameter)
    return parameters


def _json_content(ref: str, media_type: str = "application/json") -> Json:
    return {media_type: {"schema": {"$ref": ref}}}


def _responses(contract: Contract, has_path_params: bool, refs: Mapping[ModelKey, str]) -> Json:
    responses: Json = {}
    for status, body in contract.responses.items():
        response: Json = {"description": HTTPStatus(status).phrase}
        if body is not None:
            response["description"] = body.description or response["description"]
            ref = refs[(body.model, "serialization")]
            response["content"] = _json_content(ref, body.media_type)
        if contract.links:
            response["links"] = dict(contract.links)
        responses[str(status)] = response
    for status in contract.error_statuses(has_path_params):
        response = {"description": ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase)}
        if status in _ERROR_HEADERS:
            response["headers"] = _ERROR_HEADERS[status]
        response["content"] = _json_content(refs[(ErrorBody, "serialization")])
        responses[str(status)] = response
    return responses


def _operation(
    rule: Rule,
    view: Callable[..., Any],
    contract: Contract,
    path_params: list[Json],
    refs: Mapping[ModelKey, str],
    schemas: Json,
) -> Json:
    operation: Json = {"operationId": rule.endpoint, "summary": contract.summary}
    if description := inspect.getdoc(view):
        operation["description"] = description
    if contract.tags:
        operation["tags"] = list(contract.tags)
    parameters = list(path_params)
    if contract.query is not None:
        query_schema = refs[(contract.query, "validation")].rsplit("/", 1)[-1]
        parameters += _query_parameters(schemas[query_schema])
    if parameters:
        operation["parameters"] = parameters
    if contract.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json_content(refs[(contract.request, "validation")]),
        }
    operation["responses"] = _responses(contract, bool(path_params), refs)
    operation["security"] = _SECURITY[contract.auth]
    return operation

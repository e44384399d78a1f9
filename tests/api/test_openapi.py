"""The OpenAPI document: valid 3.1, generated from the routes' contracts, covering every route."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from flask import Blueprint, Flask, jsonify
from flask.testing import FlaskClient
from openapi_spec_validator import OpenAPIV31SpecValidator
from pydantic import BaseModel, ConfigDict, Field

from api import openapi
from api.schemas.errors import ErrorBody
from api.schemas.models import ModelList
from shared.pricing import PRICE_TABLE
from tests.conftest import Account

# pydantic's own constraint names: in a JSON Schema they mean nothing, so a bound written where
# pydantic cannot translate it (e.g. before a BeforeValidator) would silently go undocumented.
PYDANTIC_CONSTRAINT_NAMES = {"ge", "gt", "le", "lt", "min_length", "max_length", "multiple_of"}


def _served(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_served_document_is_valid_openapi_3_1(client: FlaskClient) -> None:
    """GET /openapi.json is an OpenAPI 3.1.0 document that passes the official schema."""
    document = _served(client)
    assert document["openapi"] == "3.1.0"
    OpenAPIV31SpecValidator(document).validate()


def test_every_route_is_documented_and_nothing_else(client: FlaskClient) -> None:
    """Each url_map rule and method (but static files, the docs, the Prometheus scrape and the
    OpenAI- and Anthropic-compatible surfaces, whose contracts are their vendors' documents) is
    an operation, and back."""
    app = client.application
    routes = {
        (rule.rule, method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        and not rule.endpoint.startswith(("docs.", "metrics.", "openai.", "anthropic."))
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    flask_style = {
        (path.replace("{", "<").replace("}", ">"), method)
        for path, method, _ in _operations(_served(client))
    }
    assert sorted(routes - flask_style) == [], "routes without @openapi.operation"
    assert sorted(flask_style - routes) == [], "documented operations with no route"


def test_every_operation_documents_its_errors_with_the_envelope(client: FlaskClient) -> None:
    """Authenticated operations declare bearer security and 401; every 4xx/5xx is ErrorBody."""
    document = _served(client)
    schemes = document["components"]["securitySchemes"]
    assert {s["scheme"] for s in schemes.values()} == {"bearer"}
    for path, method, operation in _operations(document):
        where = f"{method.upper()} {path}"
        if operation["security"]:
            assert "401" in operation["responses"], where
            assert all(name in schemes for req in operation["security"] for name in req), where
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        for status, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorBody"}, f"{where} {status}"
        if "{" in path:
            assert "404" in errors, where


def test_component_schemas_carry_no_pydantic_constraint_names(client: FlaskClient) -> None:
    """Every bound a model declares reached the document as JSON Schema (minimum, maxLength…)."""
    leaked = [
        (name, sorted(PYDANTIC_CONSTRAINT_NAMES & node.keys()))
        for name, schema in _served(client)["components"]["schemas"].items()
        for node in _walk(schema)
        if "type" in node and PYDANTIC_CONSTRAINT_NAMES & node.keys()
    ]
    assert leaked == []


def test_error_answers_match_the_documented_envelope(client: FlaskClient) -> None:
    """A 401, a routing 404 and a 405 all validate against ErrorBody."""
    for response in (client.get("/v1/models"), client.get("/nowhere"), client.put("/health")):
        assert response.status_code in (401, 404, 405)
        ErrorBody.model_validate(response.get_json())


def test_models_answer_matches_its_model(
    client: FlaskClient, make_account: Callable[[str], Account]
) -> None:
    """GET /v1/models validates against ModelList and lists the whole price table."""
    account = make_account("alice")
    response = client.get("/v1/models", headers={"Authorization": f"Bearer {account.key}"})
    catalogue = ModelList.model_validate(response.get_json())
    assert [m.id for m in catalogue.data] == list(PRICE_TABLE)


class WidgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)
    size: int = Field(default=1, ge=1, le=10)


class WidgetOut(BaseModel):
    id: int
    name: str


class WidgetQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100, description="Page size.")
    state: Literal["new", "old"]


def _widget_app() -> Flask:
    """A small app using every kind of contract: body, query, path parameter, admin, public,
    a non-JSON answer, and one route without a contract."""
    bp = Blueprint("widgets", __name__, url_prefix="/v1/widgets")

    @bp.post("")
    @openapi.operation(
        summary="Create a widget",
        request=WidgetIn,
        responses={201: WidgetOut},
        errors=[409, 429],
        tags=["widgets"],
        links={"GetWidget": openapi.link("widgets.get_widget", widget_id="$response.body#/id")},
    )
    def create_widget() -> Any:
        return jsonify({})

    @bp.get("")
    @openapi.operation(summary="List widgets", query=WidgetQuery, responses={200: WidgetOut})
    def list_widgets() -> Any:
        return jsonify({})

    @bp.get("/<int:widget_id>")
    @openapi.operation(summary="Get a widget", responses={200: WidgetOut}, auth="admin")
    def get_widget(widget_id: int) -> Any:
        return jsonify({})

    @bp.delete("/<widget_id>")
    @openapi.operation(summary="Delete a widget", responses={204: None}, auth="none")
    def delete_widget(widget_id: str) -> Any:
        return "", 204

    @bp.get("/export")
    @openapi.operation(
        summary="Every widget, one a line",
        responses={200: openapi.Body(WidgetOut, "application/x-ndjson", "One widget a line.")},
    )
    def export_widgets() -> Any:
        return ""

    @bp.get("/undocumented")
    def undocumented() -> Any:
        return jsonify({})

    app = Flask(__name__)
    app.register_blueprint(bp)
    return app


def test_contract_becomes_operation() -> None:
    """Body, success and implied + listed errors, tags, security and links land as declared."""
    document = openapi.build_document(_widget_app())
    OpenAPIV31SpecValidator(document).validate()
    create = document["paths"]["/v1/widgets"]["post"]
    assert create["operationId"] == "widgets.create_widget"
    assert create["tags"] == ["widgets"]
    assert create["requestBody"] == {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WidgetIn"}}},
    }
    assert list(create["responses"]) == ["201", "400", "401", "409", "413", "415", "422", "429"]
    assert create["responses"]["201"]["links"]["GetWidget"]["operationId"] == "widgets.get_widget"
    assert create["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert create["security"] == [{"apiKey": []}]
    assert document["components"]["schemas"]["WidgetIn"]["properties"]["size"] == {
        "default": 1,
        "maximum": 10,
        "minimum": 1,
        "title": "Size",
        "type": "integer",
    }


def test_query_and_path_parameters() -> None:
    """A query model becomes one parameter per field; URL converters become path schemas."""
    paths = openapi.build_document(_widget_app())["paths"]
    listing = paths["/v1/widgets"]["get"]
    by_name = {p["name"]: p for p in listing["parameters"]}
    assert by_name["limit"]["in"] == "query"
    assert by_name["limit"]["required"] is False
    assert by_name["limit"]["description"] == "Page size."
    assert by_name["limit"]["schema"]["maximum"] == 100
    assert by_name["state"]["required"] is True
    assert by_name["state"]["schema"]["enum"] == ["new", "old"]
    assert list(listing["responses"]) == ["200", "401", "422"]
    get = paths["/v1/widgets/{widget_id}"]["get"]
    assert get["parameters"] == [
        {
            "name": "widget_id",
            "in": "path",
            "required": True,
            "schema": {"type": "integer", "minimum": 0},
        }
    ]
    assert list(get["responses"]) == ["200", "401", "403", "404"]
    assert get["security"] == [{"adminKey": []}]
    delete = paths["/v1/widgets/{widget_id}"]["delete"]
    assert delete["parameters"][0]["schema"] == {"type": "string", "pattern": "^[^/]+$"}
    assert delete["responses"]["204"] == {"description": "No Content"}
    assert delete["security"] == []


def test_non_json_body() -> None:
    """A `Body` documents its media type and description; its model is still a component."""
    document = openapi.build_document(_widget_app())
    ok = document["paths"]["/v1/widgets/export"]["get"]["responses"]["200"]
    assert ok == {
        "description": "One widget a line.",
        "content": {"application/x-ndjson": {"schema": {"$ref": "#/components/schemas/WidgetOut"}}},
    }


def test_undocumented_route_is_left_out() -> None:
    """A route without a contract is not in the document (the coverage test above catches it)."""
    assert "/v1/widgets/undocumented" not in openapi.build_document(_widget_app())["paths"]


def test_contract_mistakes_are_refused() -> None:
    """An error status among `responses`, or a link to no documented route, is a ContractError."""
    with pytest.raises(openapi.ContractError):
        openapi.operation(summary="x", responses={200: WidgetOut, 404: ErrorBody})
    app = _widget_app()
    app.view_functions["widgets.list_widgets"] = openapi.operation(
        summary="x", responses={200: WidgetOut}, links={"L": openapi.link("widgets.nowhere")}
    )(lambda: None)
    with pytest.raises(openapi.ContractError, match="nowhere"):
        openapi.build_document(app)

"""GET /openapi.json (the API's OpenAPI 3.1 document) and GET /docs/ (Swagger UI on it).

Swagger UI's scripts and styles come from the flask-swagger-ui package and are served from
here, never from a CDN, so the page works offline and on private networks.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from flask_swagger_ui import get_swaggerui_blueprint

from api.openapi import document_for

bp = Blueprint("docs", __name__)
bp.register_blueprint(
    get_swaggerui_blueprint("/docs", "/openapi.json", config={"app_name": "promptq API"})
)


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return jsonify(document_for(current_app))

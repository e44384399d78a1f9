"""Liveness (/health) and readiness (/ready: Postgres and Redis answer)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api import openapi
from api.errors import error_response
from api.schemas_common import HealthOut, ReadyOut
from shared.db import get_engine
from shared.redis_client import get_redis

bp = Blueprint("health", __name__)


@bp.get("/health")
@openapi.operation(
    summary="Liveness: the API process answers",
    responses={200: HealthOut},
    auth="none",
    tags=["health"],
)
def health() -> Response:
    return jsonify(HealthOut(status="ok").model_dump(mode="json"))


@bp.get("/ready")
@openapi.operation(
    summary="Readiness: PostgreSQL and Redis answer",
    responses={200: ReadyOut},
    errors=[503],
    auth="none",
    tags=["health"],
)
def ready() -> Response:
    checks: dict[str, str] = {}
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["postgres"] = "ok"
    except Exception as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}"
    try:
        get_redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    if all(v == "ok" for v in checks.values()):
        return jsonify(ReadyOut(status="ready", checks=checks).model_dump(mode="json"))
    return error_response(503, "not_ready", "A backing service is unavailable.", checks)

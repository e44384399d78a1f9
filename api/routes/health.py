"""Liveness (/health) and readiness (/ready: PostgreSQL, Redis and a job worker's heartbeat)."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from api import openapi
from api.errors import error_response
from api.schemas.health import HealthOut, ReadyOut
from shared import worker_heartbeats
from shared.db import get_engine
from shared.redis_client import get_redis
from shared.settings import get_settings

bp = Blueprint("health", __name__)

# Checks run here so a hung backend costs /ready its timeout, never a request thread forever.
# A hung check keeps its thread until its own socket timeout; more threads than checks let the
# next /ready run meanwhile.
_checks = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ready-check")


@bp.get("/health")
@openapi.operation(
    summary="Liveness: the API process answers",
    responses={200: HealthOut},
    auth="none",
    tags=["health"],
)
def health() -> Response:
    return jsonify(HealthOut(status="ok").model_dump(mode="json"))


def _postgres() -> str:
    with get_engine().connect() as connection:
        connection.execute(text("SELECT 1"))
    return "ok"


def _redis() -> str:
    get_redis().ping()
    return "ok"


def _workers() -> str:
    within = get_settings().ready_worker_heartbeat_s
    alive = worker_heartbeats.alive(get_redis(), within)
    if not alive:
        return f"unavailable: no job worker's heartbeat within {within:g} s"
    return "ok"


def _outcome(future: Future[str], deadline: float, timeout_s: float) -> str:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        return f"unavailable: no answer within {timeout_s:g} s"
    except Exception as exc:
        return f"unavailable: {type(exc).__name__}"


_CHECKS: tuple[tuple[str, Callable[[], str]], ...] = (
    ("postgres", _postgres),
    ("redis", _redis),
    ("workers", _workers),
)


@bp.get("/ready")
@openapi.operation(
    summary="Readiness: PostgreSQL and Redis answer, and a job worker is alive",
    responses={200: ReadyOut},
    errors=[503],
    auth="none",
    tags=["health"],
)
def ready() -> Response:
    timeout_s = get_settings().ready_check_timeout_s
    deadline = time.monotonic() + timeout_s
    running = {name: _checks.submit(check) for name, check in _CHECKS}
    checks = {name: _outcome(future, deadline, timeout_s) for name, future in running.items()}
    if all(v == "ok" for v in checks.values()):
        return jsonify(ReadyOut(status="ready", checks=checks).model_dump(mode="json"))
    failing = ", ".join(name for name, v in checks.items() if v != "ok")
    return error_response(503, "not_ready", f"Not ready: {failing}.", checks)

"""GET /metrics: the API's Prometheus metrics, summed over its gunicorn processes.

Not in the OpenAPI document (like /docs): Prometheus reads its text format, not a client.
"""

from __future__ import annotations

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST

from api.metrics import render

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    return Response(render(), content_type=CONTENT_TYPE_LATEST)

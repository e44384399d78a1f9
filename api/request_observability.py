"""Each request's id, log context and HTTP metrics.

`X-Request-ID` is taken from the client when it is a short token of safe characters (a proxy's
or the client's own id, so their logs and ours meet) and generated otherwise; it is returned on
every answer, bound to every log line written while the request runs, stored on the jobs it
creates, and from there carried to the worker's lines and the job's webhook deliveries.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from flask import Flask, Response, g, request

from api import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
# The submissions whose refusals count, by error code, in promptq_jobs_refused_total.
_SUBMISSIONS = frozenset({"jobs.submit_job", "batches.submit_batch"})


def request_id() -> str | None:
    """This request's id (None outside a request)."""
    return g.get("request_id")


def _begin() -> None:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = given if _VALID_REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
    g.started = time.perf_counter()
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=g.request_id)


def _end(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    route = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics.http_requests.labels(request.method, route, str(response.status_code)).inc()
    metrics.http_duration.labels(request.method, route).observe(
        time.perf_counter() - g.get("started", time.perf_counter())
    )
    if response.status_code >= 400 and request.endpoint in _SUBMISSIONS:
        metrics.jobs_refused.labels(g.get("error_code", f"http_{response.status_code}")).inc()
    return response


def _forget(_: BaseException | None) -> None:
    structlog.contextvars.clear_contextvars()


def register_request_observability(app: Flask) -> None:
    app.before_request(_begin)
    app.after_request(_end)
    app.teardown_request(_forget)

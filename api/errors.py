"""The one table from errors to HTTP answers. Every error leaves as
`{"error": {"code", "message", "details"}}`. A PostgreSQL or Redis outage is a 503 with
Retry-After (shared/outages.py decides what counts); anything else unmapped is a bug, logged,
and a 500."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g, has_request_context, jsonify
from werkzeug.exceptions import HTTPException

from shared import errors
from shared.logging import get_logger
from shared.outages import as_unavailable

log = get_logger(__name__)

STATUS_FOR: dict[type[errors.PromptqError], int] = {
    errors.MalformedJsonError: 400,
    errors.AuthenticationError: 401,
    errors.ForbiddenError: 403,
    errors.NotFoundError: 404,
    errors.ConflictError: 409,
    errors.UnsupportedMediaTypeError: 415,
    errors.ValidationError: 422,
    errors.UnknownModelError: 422,
    errors.InputRejectedError: 422,
    errors.RateLimitedError: 429,
    errors.BudgetExceededError: 429,
    errors.QueueFullError: 503,
    errors.RetryLaterError: 503,
}

# Werkzeug's own refusals (routing, methods, body size) under stable codes of ours.
HTTP_CODES: dict[int, str] = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, details: Any = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details}})
    response.status_code = status
    if has_request_context():
        # Counted as the refusal's reason when this answers a submission (metrics).
        g.error_code = code
    return response


def status_for(exc: errors.PromptqError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_FOR:
            return STATUS_FOR[cls]
    return 400


def _domain_response(exc: errors.PromptqError) -> Response:
    response = error_response(status_for(exc), exc.code, exc.message, exc.details)
    if isinstance(exc, errors.AuthenticationError):
        response.headers["WWW-Authenticate"] = 'Bearer realm="promptq"'
    if isinstance(exc, errors.RetryLaterError):
        response.headers["Retry-After"] = str(exc.retry_after_s)
    return response


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(errors.PromptqError)
    def _domain(exc: errors.PromptqError) -> Response:
        return _domain_response(exc)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 404:
            message = "No such endpoint. The API lives under /v1/ (see README)."
        response = error_response(status, HTTP_CODES.get(status, f"http_{status}"), message)
        if valid := getattr(exc, "valid_methods", None):
            response.headers["Allow"] = ", ".join(valid)
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            log.warning("request.service_unavailable", code=unavailable.code, error=repr(exc))
            return _domain_response(unavailable)
        log.exception("request.unhandled_error")
        return error_response(500, "internal_error", "Something went wrong on our side.")

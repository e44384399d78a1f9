"""Errors of the OpenAI-compatible surface in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, so the openai SDK raises its own typed
errors (BadRequestError, NotFoundError, ...). promptq's domain errors keep their status codes,
except that a validation error is OpenAI's 400 rather than promptq's 422; outages are 503 with
Retry-After as on the native API (shared/outages.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException

from api.errors import status_for
from shared import errors
from shared.logging import get_logger
from shared.outages import as_unavailable

log = get_logger(__name__)

TYPE_FOR_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(Exception):
    """A refusal particular to this surface, with OpenAI's `param` and `code`."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def openai_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> Response:
    error_type = TYPE_FOR_STATUS.get(
        status, "invalid_request_error" if status < 500 else "api_error"
    )
    response = jsonify(
        {"error": {"message": message, "type": error_type, "param": param, "code": code}}
    )
    response.status_code = status
    return response


def register_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(OpenAIError)
    def _own(exc: OpenAIError) -> Response:
        return openai_error(exc.status, exc.message, exc.param, exc.code)

    @bp.errorhandler(errors.PromptqError)
    def _domain(exc: errors.PromptqError) -> Response:
        status = status_for(exc)
        response = openai_error(400 if status == 422 else status, exc.message, code=exc.code)
        if isinstance(exc, errors.RetryLaterError):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        return openai_error(
            status, exc.description or exc.name, code=exc.name.lower().replace(" ", "_")
        )

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            log.warning("request.service_unavailable", code=unavailable.code, error=repr(exc))
            return _domain(unavailable)
        log.exception("request.unhandled_error")
        return openai_error(500, "Something went wrong on our side.", code="internal_error")

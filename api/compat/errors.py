"""Error handling shared by the compatible surfaces: each renders errors in its vendor's shape
(`render`), and all map promptq's domain errors the same way. Domain errors keep their status
codes, except that a validation error is the vendors' 400 rather than promptq's 422; outages
are 503 with Retry-After as on the native API (shared/outages.py)."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from api.errors import status_for
from shared import errors
from shared.logging import get_logger
from shared.outages import as_unavailable

log = get_logger(__name__)

# (status, message, param, code) -> the vendor's error response.
Render = Callable[[int, str, str | None, str | None], Response]


class CompatError(Exception):
    """A refusal particular to a compatible surface, with the `param` and `code` its vendor's
    error shape may carry."""

    def __init__(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def install_error_handlers(bp: Blueprint, render: Render) -> None:
    """Every error raised under `bp` answered through `render`."""

    @bp.errorhandler(CompatError)
    def _own(exc: CompatError) -> Response:
        return render(exc.status, exc.message, exc.param, exc.code)

    @bp.errorhandler(errors.PromptqError)
    def _domain(exc: errors.PromptqError) -> Response:
        status = status_for(exc)
        response = render(400 if status == 422 else status, exc.message, None, exc.code)
        if isinstance(exc, errors.RetryLaterError):
            response.headers["Retry-After"] = str(exc.retry_after_s)
        return response

    @bp.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = exc.name.lower().replace(" ", "_")
        return render(status, exc.description or exc.name, None, code)

    @bp.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        unavailable = as_unavailable(exc)
        if unavailable is not None:
            log.warning("request.service_unavailable", code=unavailable.code, error=repr(exc))
            return _domain(unavailable)
        log.exception("request.unhandled_error")
        return render(500, "Something went wrong on our side.", None, "internal_error")

"""Errors of the Anthropic-compatible surface in Anthropic's shape,
`{"type": "error", "error": {"type", "message"}, "request_id"}`, so the anthropic SDK raises its
own typed errors (BadRequestError, NotFoundError, ...); the mapping of promptq's errors is
shared with the other surfaces (api/compat/errors.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.compat.errors import install_error_handlers
from api.request_observability import request_id

# Anthropic's error types by status (its API reference, "Errors").
TYPE_FOR_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
}


def anthropic_error(
    status: int, message: str, param: str | None = None, code: str | None = None
) -> Response:
    """Anthropic's shape has no param or code fields: this surface's messages name the field
    they are about, and the code goes into the message, where a person reads it."""
    error_type = TYPE_FOR_STATUS.get(
        status, "invalid_request_error" if status < 500 else "api_error"
    )
    text = message if code is None else f"{message} ({code})"
    response = jsonify(
        {
            "type": "error",
            "error": {"type": error_type, "message": text},
            "request_id": request_id(),
        }
    )
    response.status_code = status
    return response


def register_error_handlers(bp: Blueprint) -> None:
    install_error_handlers(bp, anthropic_error)

"""Errors of the OpenAI-compatible surface in OpenAI's shape,
`{"error": {"message", "type", "param", "code"}}`, so the openai SDK raises its own typed
errors (BadRequestError, NotFoundError, ...); the mapping of promptq's errors is shared with
the other surfaces (api/compat/errors.py)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from api.compat.errors import CompatError, install_error_handlers

TYPE_FOR_STATUS = {
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAIError(CompatError):
    """A refusal particular to this surface, with OpenAI's `param` and `code`."""


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
    install_error_handlers(bp, openai_error)

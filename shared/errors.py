"""The domain error tree. No HTTP here: api/errors.py maps these to status codes.

PromptqError
├── NotFoundError          the thing does not exist, or is not the caller's
├── AuthenticationError    no key, an unknown key, a revoked or expired key
├── ValidationError        the request is malformed (details say where)
├── UnknownModelError      the model is not in the catalogue
└── ConflictError          the request collides with existing state
"""

from __future__ import annotations

from typing import Any


class PromptqError(Exception):
    code = "error"

    def __init__(self, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFoundError(PromptqError):
    code = "not_found"


class AuthenticationError(PromptqError):
    code = "unauthorized"


class ForbiddenError(PromptqError):
    code = "forbidden"


class ValidationError(PromptqError):
    code = "validation_error"


class MalformedJsonError(ValidationError):
    code = "invalid_json"


class UnknownModelError(PromptqError):
    code = "unknown_model"


class ConflictError(PromptqError):
    code = "conflict"

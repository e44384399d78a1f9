"""The request's database session, and its JSON body, query string and path ids parsed into
pydantic models. The session closes (and rolls back anything uncommitted) when the request ends.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import pydantic
import pydantic_core
from flask import Flask, g, request
from sqlalchemy.orm import Session

from api.schemas.fields import PATTERN_PROBLEMS
from shared.db import get_session_factory
from shared.errors import (
    MalformedJsonError,
    NotFoundError,
    UnsupportedMediaTypeError,
    ValidationError,
)

ModelT = TypeVar("ModelT", bound=pydantic.BaseModel)


def db() -> Session:
    """This request's session, opened on first use."""
    if "db" not in g:
        g.db = get_session_factory()()
    return g.db


def _close_session(_: BaseException | None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()


def register_request_scope(app: Flask) -> None:
    app.teardown_appcontext(_close_session)


def _problem(error: pydantic_core.ErrorDetails) -> str:
    if error["type"] == "string_pattern_mismatch":
        described = PATTERN_PROBLEMS.get(str((error.get("ctx") or {}).get("pattern")))
        if described is not None:
            return described
    return error["msg"]


def _problems(exc: pydantic.ValidationError, whole: str) -> list[dict[str, Any]]:
    return [
        {"field": ".".join(str(p) for p in e["loc"]) or whole, "problem": _problem(e)}
        for e in exc.errors(include_url=False, include_input=False)
    ]


def _invalid(what: str, problems: list[dict[str, Any]]) -> ValidationError:
    first = problems[0]
    return ValidationError(
        f"Invalid {what}: {first['field']}: {first['problem']}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        details=problems,
    )


def parse_body(model: type[ModelT]) -> ModelT:
    """Validate the request body against `model` (strict JSON, unknown fields refused). A body
    not sent as application/json (a charset may follow) is 415 unsupported_media_type; bytes
    that are not JSON, including NaN, Infinity and lone surrogates, are 400 invalid_json."""
    if request.mimetype != "application/json":
        given = request.headers.get("Content-Type") or "none"
        raise UnsupportedMediaTypeError(
            f"The body must be sent with 'Content-Type: application/json' (got {given!r})."
        )
    raw = request.get_data(cache=True)
    try:
        pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as exc:
        raise MalformedJsonError(
            f"The request body is not valid JSON: {exc}. Send a JSON object with "
            "'Content-Type: application/json'."
        ) from None
    try:
        return model.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        raise _invalid("request", _problems(exc, "(body)")) from None


def parse_query(model: type[ModelT]) -> ModelT:
    """Validate the query string against `model` (strict; each parameter at most once, unknown
    ones refused); a bad parameter is a 422 naming it."""
    repeated = [name for name, values in request.args.lists() if len(values) > 1]
    if repeated:
        raise _invalid(
            "query", [{"field": name, "problem": "given more than once"} for name in repeated]
        )
    try:
        return model.model_validate_strings(request.args.to_dict(), strict=True)
    except pydantic.ValidationError as exc:
        raise _invalid("query", _problems(exc, "(query)")) from None


def path_id(value: str, what: str) -> uuid.UUID:
    """A resource id from the path; a malformed one is as unknown as a missing one."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise NotFoundError(f"No {what} with id {value!r}.") from None

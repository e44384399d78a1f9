"""The request's database session and JSON body. The session closes (and rolls back anything
uncommitted) when the request ends."""

from __future__ import annotations

import json
from typing import TypeVar

import pydantic
from flask import Flask, g, request
from sqlalchemy.orm import Session

from shared.db import get_session_factory
from shared.errors import MalformedJsonError, ValidationError

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


def parse_body(model: type[ModelT]) -> ModelT:
    """Validate the request body against `model`; wrong JSON or shape is a clear 4xx."""
    raw = request.get_data(cache=True)
    try:
        json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedJsonError(
            f"The request body is not valid JSON: {exc}. Send a JSON object with "
            "'Content-Type: application/json'."
        ) from None
    try:
        return model.model_validate_json(raw, strict=True)
    except pydantic.ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "problem": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        raise ValidationError(
            f"Invalid request: {first['field']}: {first['problem']}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
            details=problems,
        ) from None

"""A job's optional fields (fallbacks, response_format, callback_url, max_cost_usd): what is
accepted and stored, and what is refused, through the Flask app on the real Postgres."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from shared.db import transaction
from shared.models import Job
from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account

BAD_FIELDS: list[tuple[str, Any, str]] = [
    ("unknown fallback", {**VALID, "fallbacks": ["gpt-4o", "gpt-9"]}, "unknown_model"),
    ("fallbacks not a list", {**VALID, "fallbacks": "gpt-4o"}, "validation_error"),
    (
        "too many fallbacks",
        {
            **VALID,
            "fallbacks": [
                "gpt-4o",
                "gpt-4.1-mini",
                "o4-mini",
                "claude-haiku-4-5",
                "claude-sonnet-4-5",
                "claude-3-5-haiku-latest",
            ],
        },
        "validation_error",
    ),
    ("fallback twice", {**VALID, "fallbacks": ["gpt-4o", "gpt-4o"]}, "validation_error"),
    (
        "response_format type",
        {**VALID, "response_format": {"type": "xml"}},
        "validation_error",
    ),
    ("response_format string", {**VALID, "response_format": "json"}, "validation_error"),
    (
        "json_schema without schema",
        {**VALID, "response_format": {"type": "json_schema"}},
        "validation_error",
    ),
    (
        "json_schema not a schema",
        {**VALID, "response_format": {"type": "json_schema", "schema": {"type": "objekt"}}},
        "validation_error",
    ),
    (
        "json_schema bad keyword value",
        {**VALID, "response_format": {"type": "json_schema", "schema": {"minLength": -1}}},
        "validation_error",
    ),
    (
        "callback not http",
        {**VALID, "callback_url": "ftp://example.com/x"},
        "validation_error",
    ),
    ("callback not a url", {**VALID, "callback_url": "not a url"}, "validation_error"),
    (
        "callback too long",
        {**VALID, "callback_url": "https://example.com/" + "a" * 2040},
        "validation_error",
    ),
    ("max_cost zero", {**VALID, "max_cost_usd": 0}, "validation_error"),
    ("max_cost negative", {**VALID, "max_cost_usd": "-1"}, "validation_error"),
    ("max_cost bool", {**VALID, "max_cost_usd": True}, "validation_error"),
    ("max_cost not a number", {**VALID, "max_cost_usd": "lots"}, "validation_error"),
    # PostgreSQL cannot store NUL in text or JSONB: refused up front, never a 500 on insert.
    ("NUL in content", {"messages": [{"role": "user", "content": "a\u0000b"}]}, "validation_error"),
    ("NUL in metadata", {"metadata": {"k": ["ok", "a\u0000"]}}, "validation_error"),
    ("NUL in metadata key", {"metadata": {"\u0000": 1}}, "validation_error"),
    ("fallback_response empty", {"fallback_response": ""}, "validation_error"),
    ("fallback_response too long", {"fallback_response": "x" * 10_001}, "validation_error"),
    ("fallback_response not text", {"fallback_response": ["busy"]}, "validation_error"),
    ("NUL in fallback_response", {"fallback_response": "a\u0000"}, "validation_error"),
    (
        "NUL in json_schema",
        {"response_format": {"type": "json_schema", "schema": {"title": "\u0000"}}},
        "validation_error",
    ),
]


@pytest.mark.parametrize(("why", "fields", "code"), BAD_FIELDS, ids=[b[0] for b in BAD_FIELDS])
def test_bad_optional_fields_are_422(
    client: FlaskClient, alice: Account, why: str, fields: dict[str, Any], code: str
) -> None:
    """A bad fallback list, response_format, callback_url or max_cost_usd is refused with 422
    (unknown_model for a model not in the price table) and creates no job."""
    error = error_of(
        client.post("/v1/jobs", json={**VALID, **fields}, headers=auth(alice)), 422, code
    )
    if code == "validation_error":
        assert error["details"][0]["field"].split(".")[0] in fields
    with transaction() as session:
        assert session.scalars(select(Job)).first() is None


SCHEMA = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}


@pytest.mark.parametrize(
    ("fields", "stored"),
    [
        (
            {"fallbacks": ["gpt-4o", "claude-haiku-4-5"]},
            {"fallbacks": ["gpt-4o", "claude-haiku-4-5"]},
        ),
        ({"response_format": {"type": "text"}}, {"response_format": {"type": "text"}}),
        (
            {"response_format": {"type": "json_object"}},
            {"response_format": {"type": "json_object"}},
        ),
        (
            {"response_format": {"type": "json_schema", "schema": SCHEMA}},
            {"response_format": {"type": "json_schema", "schema": SCHEMA}},
        ),
        (
            {"callback_url": "https://hooks.example.com/promptq?x=1"},
            {"callback_url": "https://hooks.example.com/promptq?x=1"},
        ),
        ({"max_cost_usd": 0.25}, {"max_cost_usd": Decimal("0.25")}),
        ({"max_cost_usd": "0.0000012345"}, {"max_cost_usd": Decimal("0.0000012345")}),
    ],
    ids=[
        "fallbacks",
        "text",
        "json_object",
        "json_schema",
        "callback_url",
        "cost-number",
        "cost-string",
    ],
)
def test_new_fields_are_stored_and_shown(
    client: FlaskClient, alice: Account, fields: dict[str, Any], stored: dict[str, Any]
) -> None:
    """fallbacks, response_format, callback_url and max_cost_usd are kept on the job row (money
    as an exact Decimal) and shown back on the job."""
    response = client.post("/v1/jobs", json={**VALID, **fields}, headers=auth(alice))
    assert response.status_code == 202, response.get_data(as_text=True)
    body = response.get_json()
    with transaction() as session:
        job = session.get(Job, uuid.UUID(body["id"]))
        assert job is not None
        for column, value in stored.items():
            assert getattr(job, column) == value
    for field, value in fields.items():
        expected = str(stored[field]) if field == "max_cost_usd" else value
        assert body[field] == expected


def test_cache_opt_in_is_stored_and_shown(client: FlaskClient, alice: Account) -> None:
    """`cache: true` is kept on the job (the worker honours it for temperature 0); default off."""
    cached = client.post(
        "/v1/jobs", json={**VALID, "temperature": 0, "cache": True}, headers=auth(alice)
    ).get_json()
    plain = client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()
    assert (cached["cache"], plain["cache"]) == (True, False)
    with transaction() as session:
        assert session.get(Job, uuid.UUID(cached["id"])).cache is True  # type: ignore[union-attr]
    refused = client.post("/v1/jobs", json={**VALID, "cache": "yes"}, headers=auth(alice))
    error_of(refused, 422, "validation_error")


def test_a_fallback_response_is_kept_with_the_request_and_shown(
    client: FlaskClient, alice: Account
) -> None:
    """The last-resort text rides in the stored request, where the worker reads it; a job
    without one stores no key for it."""
    text = "Busy now; we will answer by email."
    carried = client.post(
        "/v1/jobs", json={**VALID, "fallback_response": text}, headers=auth(alice)
    ).get_json()
    plain = client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()
    assert (carried["fallback_response"], plain["fallback_response"]) == (text, None)
    with transaction() as session:
        stored = session.get(Job, uuid.UUID(carried["id"]))
        bare = session.get(Job, uuid.UUID(plain["id"]))
        assert stored is not None and bare is not None
        assert stored.request["fallback_response"] == text
        assert "fallback_response" not in bare.request

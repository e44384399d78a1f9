"""The edges of every request body and of the services behind it: JSON only (415 otherwise),
metadata nesting bounded (422), and a PostgreSQL or Redis that is away answered with 503 and
Retry-After, never 500. Through the Flask app on the real services."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.schemas.fields import MAX_METADATA_DEPTH
from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonp",
        None,
    ],
)
def test_a_json_body_sent_as_anything_else_is_415(
    client: FlaskClient, alice: Account, content_type: str | None
) -> None:
    """The body is valid JSON, but not declared as such: refused, and nothing is created."""
    headers = auth(alice) | ({"Content-Type": content_type} if content_type else {})
    response = client.post("/v1/jobs", data=json.dumps(VALID), headers=headers)
    error_of(response, 415, "unsupported_media_type")
    listed = client.get("/v1/jobs", headers=auth(alice)).get_json()
    assert listed["data"] == []


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8"])
def test_json_with_or_without_a_charset_is_accepted(
    client: FlaskClient, alice: Account, content_type: str
) -> None:
    response = client.post(
        "/v1/jobs", data=json.dumps(VALID), headers=auth(alice, **{"Content-Type": content_type})
    )
    assert response.status_code == 202, response.get_data(as_text=True)


def _nested(levels: int) -> dict[str, Any]:
    """An object `levels` deep, counting itself."""
    value: Any = "leaf"
    for _ in range(levels - 1):
        value = {"k": value}
    return {"k": value}


def test_metadata_up_to_the_depth_limit_is_kept(client: FlaskClient, alice: Account) -> None:
    metadata = _nested(MAX_METADATA_DEPTH)
    response = client.post("/v1/jobs", json={**VALID, "metadata": metadata}, headers=auth(alice))
    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["metadata"] == metadata


@pytest.mark.parametrize("path", ["/v1/jobs", "/v1/batches"])
def test_metadata_deeper_than_the_limit_is_422(
    client: FlaskClient, alice: Account, path: str
) -> None:
    metadata = _nested(MAX_METADATA_DEPTH + 1)
    body = (
        {**VALID, "metadata": metadata}
        if path == "/v1/jobs"
        else {"jobs": [{"custom_id": "a", **VALID}], "metadata": metadata}
    )
    error = error_of(client.post(path, json=body, headers=auth(alice)), 422, "validation_error")
    assert "levels of nesting" in error["message"]


def test_a_database_that_is_away_is_503_with_retry_after(
    client: FlaskClient, alice: Account, unreachable: None
) -> None:
    """The key lookup cannot reach PostgreSQL: 503 database_unavailable, not a 500."""
    response = client.get("/v1/jobs", headers=auth(alice))
    error_of(response, 503, "database_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_a_broker_that_is_away_is_503_with_retry_after(
    client: FlaskClient, alice: Account, broker_unreachable: None
) -> None:
    """Admission cannot count the key's limits without Redis: 503 broker_unavailable."""
    response = client.post("/v1/jobs", json=VALID, headers=auth(alice))
    error_of(response, 503, "broker_unavailable")
    assert int(response.headers["Retry-After"]) >= 1

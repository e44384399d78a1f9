"""GET /v1/jobs: the caller's jobs newest first, cursor pages, filters, and refused queries."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from shared.db import transaction
from shared.models import Job
from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account


def _walk(client: FlaskClient, account: Account, query: str) -> list[list[dict[str, Any]]]:
    """Every page of GET /v1/jobs?<query>, following next_cursor to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        url = f"/v1/jobs?{query}" + (f"&cursor={cursor}" if cursor else "")
        response = client.get(url, headers=auth(account))
        assert response.status_code == 200, response.get_data(as_text=True)
        body = response.get_json()
        assert body["object"] == "list"
        pages.append(body["data"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 100, "pagination does not end"


def test_pages_walk_every_job_exactly_once_newest_first(
    client: FlaskClient, alice: Account, make_account: Callable[[str], Account]
) -> None:
    """Following next_cursor visits each of the caller's jobs once, newest first, even when many
    share one created_at (a batch is inserted in one transaction); nobody else's jobs appear."""
    bob = make_account("bob")
    client.post("/v1/jobs", json=VALID, headers=auth(bob))
    ids = [
        client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()["id"] for _ in range(9)
    ]
    batch = {"jobs": [{**VALID, "custom_id": f"c{i}"} for i in range(10)]}
    assert client.post("/v1/batches", json=batch, headers=auth(alice)).status_code == 202
    ids += [client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()["id"]]

    pages = _walk(client, alice, "limit=4")
    seen = [job["id"] for page in pages for job in page]
    assert [len(page) for page in pages] == [4, 4, 4, 4, 4]
    assert len(seen) == len(set(seen)) == 20
    assert set(ids) <= set(seen)
    assert seen[0] == ids[-1]
    with transaction() as session:
        rows = {str(j.id): j for j in session.query(Job).all()}
    keys = [(rows[i].created_at, rows[i].id) for i in seen]
    assert keys == sorted(keys, reverse=True)

    default = client.get("/v1/jobs", headers=auth(alice)).get_json()
    assert len(default["data"]) == 20
    assert default["next_cursor"] is None


def _insert(account: Account, **values: Any) -> str:
    with transaction() as session:
        job = Job(
            user_id=uuid.UUID(account.user_id),
            request={"messages": [], "max_tokens": 1},
            **{"model": "gpt-4o-mini", "priority": "normal", "status": "queued", **values},
        )
        session.add(job)
    return str(job.id)


def test_filters_narrow_the_list(client: FlaskClient, alice: Account) -> None:
    """status, priority, model, created_after and created_before each narrow the list, and they
    combine; pages of a filtered list stay inside the filter."""
    base = datetime(2026, 3, 1, 12, tzinfo=UTC)
    old = _insert(alice, status="succeeded", created_at=base - timedelta(days=2))
    mid = _insert(alice, status="failed", priority="high", created_at=base)
    new = _insert(alice, model="gpt-4o", priority="high", created_at=base + timedelta(days=2))
    newest = _insert(alice, model="gpt-4o", created_at=base + timedelta(days=3))

    def ids(query: str) -> list[str]:
        return [job["id"] for page in _walk(client, alice, query) for job in page]

    assert ids("limit=100") == [newest, new, mid, old]
    assert ids("status=succeeded") == [old]
    assert ids("status=queued&limit=1") == [newest, new]
    assert ids("priority=high") == [new, mid]
    assert ids("model=gpt-4o") == [newest, new]
    assert ids("model=gpt-4o&priority=high") == [new]
    assert ids("created_after=2026-03-01T12:00:00Z") == [newest, new]
    assert ids("created_before=2026-03-01T12:00:00%2B00:00") == [old]
    assert ids("created_after=2026-02-28T00:00:00Z&created_before=2026-03-04T00:00:00Z") == [
        new,
        mid,
    ]
    assert ids("model=claude-haiku-4-5") == []


def _cursor(payload: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


BAD_QUERIES: list[tuple[str, str, str]] = [
    ("limit zero", "limit=0", "limit"),
    ("limit over 100", "limit=101", "limit"),
    ("limit not a number", "limit=ten", "limit"),
    ("unknown status", "status=done", "status"),
    ("unknown priority", "priority=urgent", "priority"),
    ("date not ISO 8601", "created_after=yesterday", "created_after"),
    ("unix time, not ISO 8601", "created_after=1767225600.5", "created_after"),
    ("date out of range", "created_before=2026-13-45T00:00:00Z", "created_before"),
    ("date without a time", "created_after=2026-03-01", "created_after"),
    ("date-time without an offset", "created_after=2026-03-01T12:00:00", "created_after"),
    ("unknown parameter", "colour=blue", "colour"),
    ("empty cursor", "cursor=", "cursor"),
    ("cursor not base64 json", "cursor=not-a-cursor", "cursor"),
    ("cursor of wrong shape", f"cursor={_cursor({'a': 1})}", "cursor"),
    ("cursor with bad id", f"cursor={_cursor(['2026-01-01T00:00:00+00:00', 'x'])}", "cursor"),
    (
        "cursor with naive time",
        f"cursor={_cursor(['2026-01-01T00:00:00', str(uuid.uuid4())])}",
        "cursor",
    ),
]


@pytest.mark.parametrize(("why", "query", "field"), BAD_QUERIES, ids=[q[0] for q in BAD_QUERIES])
def test_bad_query_is_422_naming_the_parameter(
    client: FlaskClient, alice: Account, why: str, query: str, field: str
) -> None:
    """A query parameter out of range, of the wrong type, unknown, or a cursor the API did not
    issue is a 422 validation_error whose details name the parameter."""
    error = error_of(client.get(f"/v1/jobs?{query}", headers=auth(alice)), 422, "validation_error")
    assert error["details"][0]["field"] == field


def test_listing_needs_a_key(client: FlaskClient) -> None:
    """GET /v1/jobs without a key is 401."""
    error_of(client.get("/v1/jobs"), 401, "unauthorized")

"""Job tags: up to 10 distinct labels of a safe charset, stored on the job, shown in its view
and filterable in GET /v1/jobs; a batch's jobs take them too."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.api.job_helpers import VALID, auth, error_of
from tests.conftest import Account


@pytest.fixture
def bob(make_account: Callable[[str], Account]) -> Account:
    return make_account("bob")


def _submit(client: FlaskClient, account: Account, tags: Any) -> Any:
    return client.post("/v1/jobs", json={**VALID, "tags": tags}, headers=auth(account))


def test_tags_are_stored_and_shown(client: FlaskClient, alice: Account) -> None:
    """The tags come back as given, on the 202 and on GET; a job without any shows []."""
    tags = ["team:search", "exp-7", "v1.2_beta", "A" * 64]
    created = _submit(client, alice, tags)
    assert created.status_code == 202
    assert created.get_json()["tags"] == tags
    fetched = client.get(f"/v1/jobs/{created.get_json()['id']}", headers=auth(alice))
    assert fetched.get_json()["tags"] == tags
    plain = client.post("/v1/jobs", json=VALID, headers=auth(alice)).get_json()
    assert plain["tags"] == []


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ([f"t{i}" for i in range(11)], "at most 10"),
        (["has space"], "pattern"),
        (["é"], "pattern"),
        ([""], "at least 1"),
        (["x" * 65], "at most 64"),
        (["a", "b", "a"], "repeated: ['a']"),
        ([7], "string"),
        ("solo", "array"),
    ],
)
def test_bad_tags_are_422_naming_the_field(
    client: FlaskClient, alice: Account, tags: Any, problem: str
) -> None:
    error = error_of(_submit(client, alice, tags), 422, "validation_error")
    assert error["details"][0]["field"].startswith("tags")
    assert problem in error["details"][0]["problem"]


def test_jobs_are_filtered_by_tag(client: FlaskClient, alice: Account, bob: Account) -> None:
    """?tag= lists only the caller's jobs carrying that tag; a malformed tag is a 422."""
    first = _submit(client, alice, ["x", "y"]).get_json()["id"]
    second = _submit(client, alice, ["y"]).get_json()["id"]
    _submit(client, alice, [])
    _submit(client, bob, ["y"])

    def listed(tag: str) -> list[str]:
        response = client.get(f"/v1/jobs?tag={tag}", headers=auth(alice))
        assert response.status_code == 200
        return [job["id"] for job in response.get_json()["data"]]

    assert listed("y") == [second, first]
    assert listed("x") == [first]
    assert listed("z") == []
    error = error_of(
        client.get("/v1/jobs?tag=no%20way", headers=auth(alice)), 422, "validation_error"
    )
    assert error["details"][0]["field"] == "tag"


def test_a_batchs_jobs_carry_their_tags(client: FlaskClient, alice: Account) -> None:
    jobs = [
        {**VALID, "custom_id": "a", "tags": ["nightly"]},
        {**VALID, "custom_id": "b"},
    ]
    assert client.post("/v1/batches", json={"jobs": jobs}, headers=auth(alice)).status_code == 202
    listed = client.get("/v1/jobs?tag=nightly", headers=auth(alice)).get_json()["data"]
    assert [(job["custom_id"], job["tags"]) for job in listed] == [("a", ["nightly"])]
    bad = [{**VALID, "custom_id": "a", "tags": ["no way"]}]
    error = error_of(
        client.post("/v1/batches", json={"jobs": bad}, headers=auth(alice)), 422, "validation_error"
    )
    assert error["details"][0]["field"].startswith("jobs.0.tags")

"""The OpenAI-compatible Files and Batches API (/openai/v1): validation, limits and OpenAI's
error shape, the batch object and its rendered output files, a PostgreSQL or Redis that is away
(503 with Retry-After, OpenAI-shaped), through the Flask app on the real PostgreSQL and Redis."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from shared.db import transaction
from shared.models import Job, WebhookMessage
from shared.repositories.batches import settle_finished
from shared.settings import get_settings
from tests.api.job_helpers import auth, job_count
from tests.conftest import Account
from tests.support.batches import subscribe
from tests.support.jobs import succeeded_result

BASE = "/openai/v1"


def _line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], **body},
    }


def _jsonl(*lines: dict[str, Any] | str) -> bytes:
    return b"".join(
        (line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines
    )


def _upload(
    client: FlaskClient, account: Account, content: bytes, purpose: str | None = "batch"
) -> Any:
    data: dict[str, Any] = {"file": (io.BytesIO(content), "input.jsonl")}
    if purpose is not None:
        data["purpose"] = purpose
    return client.post(
        f"{BASE}/files", data=data, headers=auth(account), content_type="multipart/form-data"
    )


def _create(client: FlaskClient, account: Account, file_id: str, **fields: Any) -> Any:
    body = {
        "input_file_id": file_id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
    }
    return client.post(f"{BASE}/batches", json={**body, **fields}, headers=auth(account))


def openai_error(response: Any, status: int, param: str | None = None) -> dict[str, Any]:
    """The error of `response` in OpenAI's shape, after checking its status and param."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] and error["type"]
    assert error["param"] == param
    return error


@pytest.fixture
def small_files(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """At most 4 KiB and 3 lines a file, for this test only."""
    monkeypatch.setenv("MAX_FILE_BYTES", "4096")
    monkeypatch.setenv("MAX_FILE_LINES", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("MAX_FILE_BYTES")
    monkeypatch.delenv("MAX_FILE_LINES")
    get_settings.cache_clear()


def test_file_round_trip(client: FlaskClient, alice: Account) -> None:
    """An uploaded file is stored whole: listed, got, read back byte for byte, then deleted."""
    content = _jsonl(_line("a"), _line("b"))
    uploaded = _upload(client, alice, content)
    assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    file = uploaded.get_json()
    assert file["id"].startswith("file-") and file["bytes"] == len(content)
    assert file["purpose"] == "batch" and file["filename"] == "input.jsonl"
    listed = client.get(f"{BASE}/files", headers=auth(alice)).get_json()
    assert [f["id"] for f in listed["data"]] == [file["id"]]
    assert listed["has_more"] is False and listed["first_id"] == file["id"]
    assert client.get(f"{BASE}/files/{file['id']}", headers=auth(alice)).get_json() == file
    read = client.get(f"{BASE}/files/{file['id']}/content", headers=auth(alice))
    assert read.data == content
    deleted = client.delete(f"{BASE}/files/{file['id']}", headers=auth(alice)).get_json()
    assert deleted == {"id": file["id"], "object": "file", "deleted": True}
    openai_error(client.get(f"{BASE}/files/{file['id']}", headers=auth(alice)), 404)


def test_upload_needs_purpose_batch(client: FlaskClient, alice: Account) -> None:
    """purpose is required and must be `batch`."""
    openai_error(_upload(client, alice, _jsonl(_line("a")), purpose=None), 400, "purpose")
    openai_error(_upload(client, alice, _jsonl(_line("a")), purpose="fine-tune"), 400, "purpose")


def test_upload_limits(client: FlaskClient, alice: Account, small_files: None) -> None:
    """A file over MAX_FILE_BYTES is 413, one over MAX_FILE_LINES requests is 400, both in
    OpenAI's error shape."""
    big = _upload(client, alice, _jsonl(_line("a", temperature=0.5)) * 100)
    assert big.status_code == 413
    assert big.get_json()["error"]["code"] == "file_too_large"
    # Past the raised body limit itself, werkzeug refuses the body before the view reads it.
    huge = _upload(client, alice, _jsonl(_line("a", temperature=0.5)) * 1000)
    assert huge.status_code == 413
    assert huge.get_json()["error"]["type"] == "invalid_request_error"
    many = openai_error(
        _upload(client, alice, _jsonl(*(_line(str(i)) for i in range(4)))), 400, "file"
    )
    assert many["code"] == "too_many_lines"
    assert _upload(client, alice, _jsonl(*(_line(str(i)) for i in range(3)))).status_code == 200


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"endpoint": "/v1/embeddings"}, "endpoint"),
        ({"completion_window": "1h"}, "completion_window"),
        ({"metadata": {"priority": "urgent"}}, "metadata.priority"),
    ],
)
def test_batch_parameters_are_checked(
    client: FlaskClient, alice: Account, fields: dict[str, Any], param: str
) -> None:
    """A wrong endpoint, completion window or priority is refused before any job exists."""
    file_id = _upload(client, alice, _jsonl(_line("a"))).get_json()["id"]
    openai_error(_create(client, alice, file_id, **fields), 400, param)
    assert job_count(alice) == 0


def test_unknown_input_file_is_404(client: FlaskClient, alice: Account) -> None:
    openai_error(_create(client, alice, "file-nope"), 404)


def test_bad_lines_fail_the_whole_batch(client: FlaskClient, alice: Account) -> None:
    """Any bad line fails the batch at validation, as OpenAI does: `failed`, every bad line in
    `errors` by its number, and no job admitted, not even for the good lines."""
    content = _jsonl(
        _line("good"),
        "{not json",
        {**_line("wrong-url"), "url": "/v1/embeddings"},
        _line("bad-model", model="gpt-0"),
        {k: v for k, v in _line("x").items() if k != "custom_id"},
        _line("good"),
        _line("no-messages", messages=[]),
    )
    file_id = _upload(client, alice, content).get_json()["id"]
    response = _create(client, alice, file_id, metadata={"team": "search"})
    assert response.status_code == 200, response.get_data(as_text=True)
    batch = response.get_json()
    assert batch["status"] == "failed" and batch["failed_at"] is not None
    assert batch["request_counts"] == {"total": 0, "completed": 0, "failed": 0}
    assert batch["metadata"] == {"team": "search"}
    errors = batch["errors"]
    assert errors["object"] == "list"
    assert [(e["line"], e["code"], e["param"]) for e in errors["data"]] == [
        (2, "invalid_json_line", None),
        (3, "invalid_url", "url"),
        (4, "model_not_found", "body.model"),
        (5, "missing_required_parameter", "custom_id"),
        (6, "duplicate_custom_id", "custom_id"),
        (7, "invalid_request", "body.messages"),
    ]
    assert job_count(alice) == 0
    assert client.get(f"{BASE}/batches/{batch['id']}", headers=auth(alice)).get_json() == batch
    openai_error(client.post(f"{BASE}/batches/{batch['id']}/cancel", headers=auth(alice)), 409)


def _finish(batch_id: str) -> None:
    """Succeed job `a` and fail job `b` of the native batch, as workers would, then settle."""
    with transaction() as session:
        for custom_id, status in (("a", "succeeded"), ("b", "failed")):
            session.execute(
                update(Job)
                .where(Job.batch_id == uuid.UUID(batch_id), Job.custom_id == custom_id)
                .values(
                    status=status,
                    result=succeeded_result("Hello") if status == "succeeded" else None,
                    error={"code": "provider_error", "message": "no"}
                    if status == "failed"
                    else None,
                    input_tokens=3,
                    output_tokens=4,
                    cost_usd=Decimal("0.00001"),
                    reserved_usd=0,
                    finished_at=func.now(),
                )
            )
        settle_finished(session, get_settings().public_base_url, 10)


def test_batch_runs_as_a_native_batch_and_renders_its_files(
    client: FlaskClient, alice: Account
) -> None:
    """A valid file becomes one native batch of low-priority jobs (a metadata priority overrides
    it); once final, its output and error files are rendered from the jobs."""
    file_id = _upload(client, alice, _jsonl(_line("a", max_tokens=20), _line("b"))).get_json()["id"]
    created = _create(client, alice, file_id, metadata={"priority": "high"})
    assert created.status_code == 200, created.get_data(as_text=True)
    batch = created.get_json()
    assert batch["status"] == "in_progress" and batch["errors"] is None
    assert batch["request_counts"] == {"total": 2, "completed": 0, "failed": 0}
    assert batch["output_file_id"] is None and batch["expires_at"] - batch["created_at"] == 86_400
    native_id = batch["id"].removeprefix("batch_")
    with transaction() as session:
        jobs = session.scalars(select(Job).where(Job.batch_id == uuid.UUID(native_id))).all()
    assert sorted(j.custom_id for j in jobs) == ["a", "b"]
    assert {j.priority for j in jobs} == {"high"}
    assert {j.custom_id: j.request["max_tokens"] for j in jobs}["a"] == 20

    _finish(native_id)
    done = client.get(f"{BASE}/batches/{batch['id']}", headers=auth(alice)).get_json()
    assert done["status"] == "completed" and done["completed_at"] is not None
    assert done["request_counts"] == {"total": 2, "completed": 1, "failed": 1}
    output = client.get(f"{BASE}/files/{done['output_file_id']}/content", headers=auth(alice))
    [line] = [json.loads(raw) for raw in output.data.splitlines()]
    assert line["custom_id"] == "a" and line["error"] is None
    body = line["response"]["body"]
    assert line["response"]["status_code"] == 200
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Hello",
        "refusal": None,
    }
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    errors = client.get(f"{BASE}/files/{done['error_file_id']}/content", headers=auth(alice))
    [failed] = [json.loads(raw) for raw in errors.data.splitlines()]
    assert failed["custom_id"] == "b" and failed["response"] is None
    assert failed["error"] == {"code": "provider_error", "message": "no"}
    described = client.get(f"{BASE}/files/{done['output_file_id']}", headers=auth(alice)).get_json()
    assert described["bytes"] == len(output.data) and described["purpose"] == "batch_output"


def test_batches_page_with_after(client: FlaskClient, alice: Account) -> None:
    """GET /batches pages newest first with `after` and `limit`, as OpenAI's lists do."""
    file_id = _upload(client, alice, _jsonl(_line("a"))).get_json()["id"]
    ids = [_create(client, alice, file_id).get_json()["id"] for _ in range(3)]
    first = client.get(f"{BASE}/batches?limit=2", headers=auth(alice)).get_json()
    assert [b["id"] for b in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True and first["last_id"] == ids[1]
    rest = client.get(f"{BASE}/batches?limit=2&after={first['last_id']}", headers=auth(alice))
    assert [b["id"] for b in rest.get_json()["data"]] == [ids[0]]
    assert rest.get_json()["has_more"] is False


def test_cancel_cancels_queued_jobs(client: FlaskClient, alice: Account) -> None:
    """Cancelling a batch whose jobs are all queued ends it cancelled at once."""
    file_id = _upload(client, alice, _jsonl(_line("a"), _line("b"))).get_json()["id"]
    batch_id = _create(client, alice, file_id).get_json()["id"]
    cancelled = client.post(f"{BASE}/batches/{batch_id}/cancel", headers=auth(alice))
    assert cancelled.status_code == 200, cancelled.get_data(as_text=True)
    body = cancelled.get_json()
    assert body["status"] == "cancelled" and body["cancelled_at"] is not None
    assert body["output_file_id"] is None and body["error_file_id"] is not None
    # The cancelled jobs are the error file's lines, and count as failed.
    assert body["request_counts"] == {"total": 2, "completed": 0, "failed": 2}


def test_errors_are_openai_shaped(client: FlaskClient, alice: Account) -> None:
    """No key is a 401 and a missing batch a 404, both in OpenAI's error shape."""
    assert client.get(f"{BASE}/batches").get_json()["error"]["type"] == "authentication_error"
    openai_error(client.get(f"{BASE}/batches/batch_nope", headers=auth(alice)), 404)
    openai_error(client.post(f"{BASE}/batches", json={}, headers=auth(alice)), 400)


def test_a_batch_failed_at_validation_sends_batch_failed(
    client: FlaskClient, alice: Account
) -> None:
    """As OpenAI does, a batch that fails validation announces batch.failed: the event carries a
    native batch without jobs, named by its OpenAI id in origin; the native API shows it too."""
    subscribe(alice, ["batch.failed"])
    file_id = _upload(client, alice, _jsonl(_line("a", model="gpt-0"))).get_json()["id"]
    batch = _create(client, alice, file_id).get_json()
    assert batch["status"] == "failed"
    with transaction() as session:
        [message] = session.scalars(
            select(WebhookMessage).where(WebhookMessage.user_id == uuid.UUID(alice.user_id))
        ).all()
    assert message.event_type == "batch.failed"
    view = json.loads(message.body)["data"]["batch"]
    assert view["origin"] == {"api": "openai", "id": batch["id"]}
    assert view["status"] == "failed" and view["counts"]["total"] == 0
    native = client.get(f"/v1/batches/{view['id']}", headers=auth(alice)).get_json()
    assert native["status"] == "failed" and native["origin"]["id"] == batch["id"]
    assert job_count(alice) == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/batches"),
        ("get", "/batches/batch_0123"),
        ("post", "/batches/batch_0123/cancel"),
        ("get", "/files"),
        ("get", "/files/file-0123/content"),
    ],
)
def test_a_database_that_is_away_is_an_openai_503(
    client: FlaskClient, alice: Account, unreachable: None, method: str, path: str
) -> None:
    """The key lookup cannot reach PostgreSQL: 503 database_unavailable with Retry-After, in
    OpenAI's error shape (so the SDK raises its InternalServerError and may retry)."""
    response = getattr(client, method)(f"{BASE}{path}", headers=auth(alice))
    error = openai_error(response, 503)
    assert (error["type"], error["code"]) == ("api_error", "database_unavailable")
    assert int(response.headers["Retry-After"]) >= 1


def test_a_database_that_is_away_refuses_an_upload_with_an_openai_503(
    client: FlaskClient, alice: Account, unreachable: None
) -> None:
    response = _upload(client, alice, _jsonl(_line("a")))
    error = openai_error(response, 503)
    assert error["code"] == "database_unavailable"
    assert int(response.headers["Retry-After"]) >= 1


def test_a_broker_that_is_away_is_an_openai_503(
    client: FlaskClient, alice: Account, broker_unreachable: None
) -> None:
    """The file is stored (PostgreSQL is up), but admitting its batch needs Redis: 503
    broker_unavailable with Retry-After in OpenAI's error shape, and no job is admitted."""
    uploaded = _upload(client, alice, _jsonl(_line("a"), _line("b")))
    assert uploaded.status_code == 200, uploaded.get_data(as_text=True)
    response = _create(client, alice, uploaded.get_json()["id"])
    error = openai_error(response, 503)
    assert (error["type"], error["code"]) == ("api_error", "broker_unavailable")
    assert int(response.headers["Retry-After"]) >= 1
    assert job_count(alice) == 0
    listed = client.get(f"{BASE}/batches", headers=auth(alice)).get_json()
    assert listed["data"] == []

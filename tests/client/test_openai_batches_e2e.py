"""The OpenAI-compatible Batch API against a real stack (gunicorn, a job worker, beat, the
simulator), driven by the official `openai` SDK: a JSONL file uploaded, its batch polled to
`completed`, each output line's body a real `ChatCompletion`; a file with a bad line fails at
validation with `errors`; a batch cancelled mid-run ends `cancelled`; lines of a failing model
fail over to its default fallback and are billed as such; a cancel waits for the job that is
running; a batch past its window expires, with its batch.expired webhook."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
import standardwebhooks
from openai import OpenAI
from openai.types import Batch
from openai.types.chat import ChatCompletion
from sqlalchemy import func, update

from devstack.processes import wait_until
from shared.db import transaction
from shared.models import Batch as NativeBatch
from tests.client.conftest import FAULT_RULES, SLOW, Account
from tests.support.stack import RunningStack
from tests.support.webhook_receiver import WebhookReceiver, register_endpoint

pytestmark = pytest.mark.e2e

WAIT_S = 60
FINAL = {"completed", "failed", "expired", "cancelled"}


def _line(custom_id: str, model: str, content: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": content}], **body},
    }


def _jsonl(lines: list[dict[str, Any]]) -> io.BytesIO:
    return io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


def _file(n: int, model: str = "gpt-4o-mini", **body: Any) -> io.BytesIO:
    return _jsonl([_line(f"req-{i}", model, f"Say {i}", **body) for i in range(n)])


@pytest.fixture
def openai_client(stack: RunningStack, account: Account) -> Iterator[OpenAI]:
    with OpenAI(base_url=f"{stack.api_url}/openai/v1", api_key=account.key, max_retries=0) as c:
        yield c


def _settled(client: OpenAI, batch_id: str) -> Batch:
    seen: list[Batch] = []

    def final() -> bool:
        seen.append(client.batches.retrieve(batch_id))
        return seen[-1].status in FINAL

    wait_until(final, timeout=WAIT_S, what=f"batch {batch_id} to settle")
    return seen[-1]


def test_batch_completes_with_chat_completion_lines(openai_client: OpenAI) -> None:
    """files.create -> batches.create -> completed; every output line parses as ChatCompletion."""
    uploaded = openai_client.files.create(
        file=("in.jsonl", _file(3, max_tokens=16)), purpose="batch"
    )
    assert uploaded.purpose == "batch"
    batch = openai_client.batches.create(
        input_file_id=uploaded.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"run": "e2e"},
    )
    assert batch.status == "in_progress"
    done = _settled(openai_client, batch.id)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (done.request_counts.total, done.request_counts.completed) == (3, 3)
    assert done.output_file_id is not None and done.error_file_id is None
    lines = [
        json.loads(raw)
        for raw in openai_client.files.content(done.output_file_id).text.splitlines()
    ]
    assert sorted(line["custom_id"] for line in lines) == ["req-0", "req-1", "req-2"]
    for line in lines:
        assert line["error"] is None and line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"])
        assert completion.choices[0].message.content
        assert completion.choices[0].finish_reason in ("stop", "length")
        assert completion.usage is not None and completion.usage.total_tokens > 0
    assert batch.id in [b.id for b in openai_client.batches.list(limit=10)]


def test_file_with_a_bad_line_fails_with_errors(openai_client: OpenAI) -> None:
    """A line naming an unknown model fails the batch at validation, with the line in errors."""
    content = _file(2).getvalue() + _file(1, model="gpt-0").getvalue().replace(b"req-0", b"bad")
    uploaded = openai_client.files.create(file=("in.jsonl", content), purpose="batch")
    batch = openai_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.errors is not None and batch.errors.data is not None
    [error] = batch.errors.data
    assert (error.line, error.code, error.param) == (3, "model_not_found", "body.model")


def test_cancel_mid_run_ends_cancelled(openai_client: OpenAI) -> None:
    """A batch of slow jobs cancelled while they run goes cancelling -> cancelled."""
    uploaded = openai_client.files.create(
        file=("slow.jsonl", _file(8, model=SLOW["model"], max_tokens=64)), purpose="batch"
    )
    batch = openai_client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    asked = openai_client.batches.cancel(batch.id)
    assert asked.status in ("cancelling", "cancelled")
    ended = _settled(openai_client, batch.id)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    assert ended.request_counts is not None
    assert ended.request_counts.completed < ended.request_counts.total
    assert ended.error_file_id is not None
    errors = [
        json.loads(raw)
        for raw in openai_client.files.content(ended.error_file_id).text.splitlines()
    ]
    assert {line["error"]["code"] for line in errors} == {"batch_cancelled"}


def _native_id(openai_batch_id: str) -> str:
    """The native batch behind an OpenAI batch: its id without `batch_`, as a UUID."""
    return str(uuid.UUID(openai_batch_id.removeprefix("batch_")))


def _native(stack: RunningStack, key: str, path: str) -> requests.Response:
    response = requests.get(
        f"{stack.api_url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    return response


def _results(stack: RunningStack, key: str, native_id: str) -> list[dict[str, Any]]:
    """The native batch's finished jobs (GET /v1/batches/<id>/results)."""
    text = _native(stack, key, f"/v1/batches/{native_id}/results").text
    return [json.loads(raw) for raw in text.splitlines()]


def _job_ids(stack: RunningStack, key: str, status: str) -> set[str]:
    """The custom_ids of the account's jobs in `status` (a fresh account: this test's only)."""
    listed = _native(stack, key, f"/v1/jobs?status={status}&limit=100").json()
    return {job["custom_id"] for job in listed["data"]}


def _lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(raw) for raw in client.files.content(file_id).text.splitlines()]


def _create(client: OpenAI, content: io.BytesIO) -> Batch:
    uploaded = client.files.create(file=("in.jsonl", content), purpose="batch")
    return client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )


def test_failing_model_fails_over_and_is_billed_as_its_fallback(
    stack: RunningStack, account: Account, openai_client: OpenAI
) -> None:
    """Lines of two models, the simulator failing claude-sonnet-4-5: its lines fail over to
    gpt-4o (its default chain), the batch completes, every output line is a ChatCompletion
    (the failed-over ones of gpt-4o), and /v1/usage bills gpt-4o and gpt-4o-mini, its totals
    the sum of the jobs' costs."""
    run = uuid.uuid4().hex
    mini = [_line(f"mini-{i}", "gpt-4o-mini", f"{run} {i}", max_tokens=16) for i in range(2)]
    sonnet = [
        _line(f"sonnet-{i}", "claude-sonnet-4-5", f"{run} {i}", max_tokens=16) for i in range(2)
    ]
    stack.set_faults({"model": "claude-sonnet-4-5", "kind": "server_error"}, *FAULT_RULES)
    try:
        batch = _create(openai_client, _jsonl(mini + sonnet))
        done = _settled(openai_client, batch.id)
    finally:
        stack.set_faults(*FAULT_RULES)
    assert done.status == "completed", done
    assert done.request_counts is not None
    counts = done.request_counts
    assert (counts.total, counts.completed, counts.failed) == (4, 4, 0)
    assert done.error_file_id is None
    models: dict[str, str] = {}
    for line in _lines(openai_client, done.output_file_id):
        assert line["error"] is None and line["response"]["status_code"] == 200
        completion = ChatCompletion.model_validate(line["response"]["body"])
        assert completion.choices[0].message.content
        models[line["custom_id"]] = completion.model
    assert models == {
        "mini-0": "gpt-4o-mini",
        "mini-1": "gpt-4o-mini",
        "sonnet-0": "gpt-4o",
        "sonnet-1": "gpt-4o",
    }

    jobs = _results(stack, account.key, _native_id(batch.id))
    assert {job["custom_id"]: job["result"]["model"] for job in jobs} == models
    job_cost = sum(Decimal(job["cost_usd"]) for job in jobs)
    usage = _native(stack, account.key, "/v1/usage").json()
    billed = {row["model"]: Decimal(row["cost_usd"]) for row in usage["data"]}
    # Failed attempts are not billed; a model with a usage row has a cost.
    assert set(billed) == {"gpt-4o", "gpt-4o-mini"}, usage
    assert all(cost > 0 for cost in billed.values())
    totals = usage["totals"]
    assert Decimal(totals["cost_usd"]) == sum(billed.values()) == job_cost > 0
    assert totals["requests"] == 4
    assert totals["input_tokens"] > 0 and totals["output_tokens"] > 0


def test_cancel_waits_for_the_running_job(
    stack: RunningStack, account: Account, openai_client: OpenAI
) -> None:
    """A batch of slow lines cancelled once a job runs: `cancelling` while it runs, then
    `cancelled`; the jobs that were running finish and are in the output file, every other
    line is in the error file with batch_cancelled, and request_counts add up."""
    # More lines than the stack's one worker has slots (4 threads): some stay queued.
    batch = _create(openai_client, _file(8, model=SLOW["model"], max_tokens=64))
    running: set[str] = set()

    def one_running() -> bool:
        running.update(_job_ids(stack, account.key, "running"))
        return bool(running)

    wait_until(one_running, timeout=WAIT_S, interval=0.05, what="a job of the batch running")
    asked = openai_client.batches.cancel(batch.id)
    # The simulator takes 1.5 s a call, so the job seen running is still running.
    assert asked.status == "cancelling", asked
    assert openai_client.batches.retrieve(batch.id).status == "cancelling"

    ended = _settled(openai_client, batch.id)
    assert ended.status == "cancelled" and ended.cancelled_at is not None
    succeeded = _lines(openai_client, ended.output_file_id)
    failed = _lines(openai_client, ended.error_file_id)
    done_ids = {line["custom_id"] for line in succeeded}
    assert running <= done_ids
    for line in succeeded:
        assert line["error"] is None
        ChatCompletion.model_validate(line["response"]["body"])
    assert failed and {line["error"]["code"] for line in failed} == {"batch_cancelled"}
    assert all(line["response"] is None for line in failed)
    assert done_ids | {line["custom_id"] for line in failed} == {f"req-{i}" for i in range(8)}
    assert ended.request_counts is not None
    counts = ended.request_counts
    assert (counts.total, counts.completed, counts.failed) == (8, len(succeeded), len(failed))


def test_batch_past_its_window_expires_with_a_verified_webhook(
    stack: RunningStack, account: Account, openai_client: OpenAI
) -> None:
    """A batch of slow lines whose window is over (expires_at set to now in PostgreSQL) is
    expired by beat: `expired` with expired_at, its unstarted lines in the error file with
    batch_expired, and its batch.expired webhook verified with standardwebhooks."""
    receiver = WebhookReceiver()
    try:
        route = receiver.route("/expired")
        register_endpoint(stack, account.key, route, ["batch.expired"])
        # Four waves of the worker's four slots: most lines are unstarted when the beat comes.
        batch = _create(openai_client, _file(16, model=SLOW["model"], max_tokens=64))
        native_id = _native_id(batch.id)
        with transaction() as session:
            session.execute(
                update(NativeBatch)
                .where(NativeBatch.id == uuid.UUID(native_id))
                .values(expires_at=func.now())
            )
        ended = _settled(openai_client, batch.id)
        assert ended.status == "expired" and ended.expired_at is not None, ended
        assert ended.expires_at is not None and ended.expired_at >= ended.expires_at

        # Jobs already running when the batch expired finish and count.
        wait_until(
            lambda: (
                not _job_ids(stack, account.key, "queued")
                and not _job_ids(stack, account.key, "running")
            ),
            timeout=WAIT_S,
            what="the running jobs of the expired batch to finish",
        )
        final = openai_client.batches.retrieve(batch.id)
        assert final.status == "expired"
        succeeded = _lines(openai_client, final.output_file_id)
        failed = _lines(openai_client, final.error_file_id)
        assert failed and {line["error"]["code"] for line in failed} == {"batch_expired"}
        assert {line["custom_id"] for line in failed}.isdisjoint(
            line["custom_id"] for line in succeeded
        )
        assert len(succeeded) + len(failed) == 16

        def arrived() -> bool:
            return any(
                d.payload and d.payload["data"].get("batch", {}).get("id") == native_id
                for d in route.received()
            )

        wait_until(arrived, timeout=WAIT_S, what="the batch.expired webhook")
        [delivery] = route.received()
        assert delivery.verified, delivery.error
        assert route.secret is not None
        payload = standardwebhooks.Webhook(route.secret).verify(delivery.body, delivery.headers)
        assert payload["type"] == "batch.expired"
        assert payload["data"]["batch"]["status"] == "expired"
    finally:
        receiver.close()

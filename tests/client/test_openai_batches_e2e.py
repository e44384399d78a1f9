"""The OpenAI-compatible Batch API against a real stack (gunicorn, a job worker, beat, the
simulator), driven by the official `openai` SDK: a JSONL file uploaded, its batch polled to
`completed`, each output line's body a real `ChatCompletion`; a file with a bad line fails at
validation with `errors`; a batch cancelled mid-run ends `cancelled`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai import OpenAI
from openai.types import Batch
from openai.types.chat import ChatCompletion

from devstack.processes import wait_until
from tests.client.conftest import SLOW, Account
from tests.support.stack import RunningStack

pytestmark = pytest.mark.e2e

WAIT_S = 60
FINAL = {"completed", "failed", "expired", "cancelled"}


def _file(n: int, model: str = "gpt-4o-mini", **body: Any) -> io.BytesIO:
    lines = [
        {
            "custom_id": f"req-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "user", "content": f"Say {i}"}], **body},
        }
        for i in range(n)
    ]
    return io.BytesIO(b"".join(json.dumps(line).encode() + b"\n" for line in lines))


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

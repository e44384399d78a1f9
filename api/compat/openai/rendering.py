"""promptq's rows in OpenAI's shapes: a native batch as OpenAI's batch object, a finished job as
a line of a batch's output or error file (its `body` a real `chat.completion`), a stored file as
a file object.

Output and error files are not stored: their content is rendered from the jobs when asked for,
so they are never out of step with the jobs and cost no storage. Their ids name their batch.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from api.compat.openai.schemas import BatchErrors, BatchObject, FileObject, RequestCounts
from shared.models import Batch, BatchStatus, File, JobStatus, OpenAIBatch

_OUTPUT_FILE = re.compile(r"^file-(batch_[0-9a-f]+)-(output|errors)$")
# A native failed batch is one whose every job failed: to OpenAI that batch still completed
# (its validation passed), with every request counted as failed.
_STATUS = {
    BatchStatus.IN_PROGRESS: "in_progress",
    BatchStatus.CANCELLING: "cancelling",
    BatchStatus.COMPLETED: "completed",
    BatchStatus.FAILED: "completed",
    BatchStatus.CANCELLED: "cancelled",
    BatchStatus.EXPIRED: "expired",
}
_FINAL = {"completed", "cancelled", "expired"}


def unix(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp())


def output_file_id(openai_batch_id: str, errors: bool) -> str:
    return f"file-{openai_batch_id}-{'errors' if errors else 'output'}"


def parse_output_file_id(file_id: str) -> tuple[str, bool] | None:
    """(the batch id, whether it is the error file) of a rendered file's id, or None."""
    match = _OUTPUT_FILE.match(file_id)
    return None if match is None else (match.group(1), match.group(2) == "errors")


def file_object(row: File) -> FileObject:
    return FileObject(
        id=row.id,
        bytes=row.bytes,
        created_at=unix(row.created_at) or 0,
        filename=row.filename,
        purpose=row.purpose,
    )


def batch_object(row: OpenAIBatch, batch: Batch | None, counts: dict[str, int]) -> BatchObject:
    """The OpenAI batch of `row`; `batch` is its native batch and `counts` that batch's jobs by
    status. A batch that failed validation (`row.errors`) has a native one without jobs, or
    none if it failed before batches recorded their origin."""
    errors = BatchErrors(data=row.errors) if row.errors else None
    common: dict[str, Any] = {
        "id": row.id,
        "endpoint": row.endpoint,
        "errors": errors,
        "input_file_id": row.input_file_id,
        "completion_window": row.completion_window,
        "created_at": unix(row.created_at),
        "metadata": row.meta,
    }
    if batch is None or row.errors:
        return BatchObject(
            **common,
            status="failed",
            output_file_id=None,
            error_file_id=None,
            in_progress_at=None,
            expires_at=None,
            finalizing_at=None,
            completed_at=None,
            failed_at=unix(row.failed_at),
            expired_at=None,
            cancelling_at=None,
            cancelled_at=None,
            request_counts=RequestCounts(total=0, completed=0, failed=0),
        )
    status = _STATUS[BatchStatus(batch.status)]
    unfinished = counts.get(JobStatus.QUEUED, 0) + counts.get(JobStatus.RUNNING, 0)
    if status == "in_progress" and unfinished == 0:
        # Every job is final and the settling beat has not yet come by.
        status = "finalizing"
    succeeded = counts.get(JobStatus.SUCCEEDED, 0)
    final = status in _FINAL
    return BatchObject(
        **common,
        status=status,
        output_file_id=output_file_id(row.id, False) if final and succeeded else None,
        error_file_id=output_file_id(row.id, True) if final and succeeded < batch.total else None,
        # Validation happens as the batch is created, so it is in progress from then on.
        in_progress_at=unix(batch.created_at),
        expires_at=unix(batch.expires_at),
        finalizing_at=unix(batch.completed_at),
        completed_at=unix(batch.completed_at),
        failed_at=None,
        expired_at=unix(batch.expired_at),
        cancelling_at=unix(batch.cancel_requested_at),
        cancelled_at=unix(batch.cancelled_at),
        # Every line of the error file counts as failed, a cancelled or expired job's too, so
        # a final batch's completed and failed add up to its total, as on OpenAI.
        request_counts=RequestCounts(
            total=batch.total,
            completed=succeeded,
            failed=counts.get(JobStatus.FAILED, 0) + counts.get(JobStatus.CANCELLED, 0),
        ),
    )


def outcome_line(row: Any) -> str:
    """One line of an output or error file: a job's `{id, custom_id, response, error}`."""
    if row.result is None:
        error = row.error or {}
        response = None
        line_error = {"code": error.get("code"), "message": error.get("message")}
    else:
        response = {
            "status_code": 200,
            "request_id": row.request_id or str(row.id),
            "body": _chat_completion(row),
        }
        line_error = None
    line = {
        "id": f"batch_req_{row.id.hex}",
        "custom_id": row.custom_id,
        "response": response,
        "error": line_error,
    }
    return json.dumps(line) + "\n"


def _chat_completion(row: Any) -> dict[str, Any]:
    result = row.result
    return {
        "id": f"chatcmpl-{row.id.hex}",
        "object": "chat.completion",
        "created": unix(row.finished_at),
        "model": result["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result["content"], "refusal": None},
                "finish_reason": result["finish_reason"],
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": row.input_tokens,
            "completion_tokens": row.output_tokens,
            "total_tokens": row.input_tokens + row.output_tokens,
        },
    }

"""promptq's rows in Anthropic's shapes: a native batch as a Message Batch, a finished job as a
line of its results (`result.message` a real Messages API object). Results are rendered from
the jobs when asked for, never stored."""

from __future__ import annotations

import json
import uuid
from typing import Any

from api.compat.anthropic.schemas import MessageBatch, RequestCounts
from api.compat.errors import CompatError
from shared.batch_view import origin_id
from shared.models import Batch, BatchOrigin, BatchStatus, JobStatus
from shared.repositories.batches import EXPIRED

PREFIX = "msgbatch_"
_PROCESSING_STATUS = {
    BatchStatus.IN_PROGRESS: "in_progress",
    BatchStatus.CANCELLING: "canceling",
}
# promptq's finish reasons in Anthropic's words, for an answer another provider gave.
_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
_STOP_REASONS = {
    "end_turn",
    "max_tokens",
    "stop_sequence",
    "tool_use",
    "pause_turn",
    "refusal",
    "model_context_window_exceeded",
}


def batch_id_of(message_batch_id: str) -> str:
    """The native id behind an Anthropic batch id; a 404 for one this surface never gave."""
    hex_id = message_batch_id.removeprefix(PREFIX)
    if hex_id != message_batch_id:
        try:
            return str(uuid.UUID(hex=hex_id))
        except ValueError:
            pass
    raise CompatError(404, f"No message batch with id {message_batch_id!r}.")


def message_batch(batch: Batch, counts: dict[str, int], results_url: str) -> MessageBatch:
    """`batch` as a Message Batch; `counts` are its jobs by status with the expired ones apart
    (counts_of's split_expired). As Anthropic does, every request counts as processing until
    the whole batch has ended."""
    status = _PROCESSING_STATUS.get(BatchStatus(batch.status), "ended")
    ended = status == "ended"
    if ended:
        request_counts = RequestCounts(
            processing=0,
            succeeded=counts.get(JobStatus.SUCCEEDED, 0),
            errored=counts.get(JobStatus.FAILED, 0),
            canceled=counts.get(JobStatus.CANCELLED, 0),
            expired=counts.get(EXPIRED, 0),
        )
    else:
        request_counts = RequestCounts(
            processing=batch.total, succeeded=0, errored=0, canceled=0, expired=0
        )
    return MessageBatch(
        id=origin_id(BatchOrigin.ANTHROPIC, batch.id),
        processing_status=status,
        request_counts=request_counts,
        created_at=batch.created_at,
        expires_at=batch.expires_at,
        ended_at=batch.completed_at or batch.cancelled_at or batch.expired_at,
        cancel_initiated_at=batch.cancel_requested_at,
        results_url=results_url if ended else None,
    )


def result_line(row: Any) -> str:
    """One line of a batch's results: a finished job's `{custom_id, result}`."""
    if row.status == JobStatus.SUCCEEDED:
        result: dict[str, Any] = {"type": "succeeded", "message": _message(row)}
    elif row.status == JobStatus.FAILED:
        error = row.error or {}
        result = {
            "type": "errored",
            "error": {
                "type": "error",
                "error": {
                    "type": "api_error",
                    "message": f"{error.get('message')} ({error.get('code')})",
                },
            },
        }
    elif (row.error or {}).get("code") == "batch_expired":
        result = {"type": "expired"}
    else:
        result = {"type": "canceled"}
    return json.dumps({"custom_id": row.custom_id, "result": result}) + "\n"


def _message(row: Any) -> dict[str, Any]:
    answer = row.result
    stop_reason = answer["provider_finish_reason"]
    if answer["provider"] != "anthropic" or stop_reason not in _STOP_REASONS:
        stop_reason = _STOP_REASON[answer["finish_reason"]]
    return {
        "id": f"msg_{row.id.hex}",
        "type": "message",
        "role": "assistant",
        "model": answer["model"],
        "content": [{"type": "text", "text": answer["content"]}],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": row.input_tokens, "output_tokens": row.output_tokens},
    }

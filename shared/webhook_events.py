"""Webhook event types and their payloads: `{type, timestamp, data}`, where a job event's data is
the job exactly as GET /v1/jobs/<id> shows it, a batch event's the batch as
GET /v1/batches/<id> shows it, and a budget alert's the fraction of a budget a user's spend
crossed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.batch_view import BatchOut, results_url
from shared.job_view import JobOut, status_url
from shared.models import Batch, BatchStatus, Job, JobStatus
from shared.money import usd

if TYPE_CHECKING:
    from shared.repositories.budget_alerts import Alert

JOB_EVENTS: dict[str, str] = {
    JobStatus.SUCCEEDED: "job.succeeded",
    JobStatus.FAILED: "job.failed",
    JobStatus.CANCELLED: "job.cancelled",
}
# A batch announces the status it settled in.
BATCH_EVENTS: dict[str, str] = {
    BatchStatus.COMPLETED: "batch.completed",
    BatchStatus.FAILED: "batch.failed",
    BatchStatus.CANCELLED: "batch.cancelled",
    BatchStatus.EXPIRED: "batch.expired",
}
# A user's daily or monthly spend crossed a configured fraction of the budget.
BUDGET_THRESHOLD = "budget.threshold"
# What an endpoint may subscribe to, in the order the API lists them.
EVENT_TYPES: tuple[str, ...] = (*JOB_EVENTS.values(), *BATCH_EVENTS.values(), BUDGET_THRESHOLD)
# Sent by POST /v1/webhooks/<id>/test, whatever the endpoint subscribes to.
PING = "ping"


def _envelope(event_type: str, data: dict[str, Any]) -> str:
    event = {
        "type": event_type,
        "timestamp": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "data": data,
    }
    # Compact and fixed once: every attempt sends (and signs) these same bytes.
    return json.dumps(event, separators=(",", ":"), ensure_ascii=False)


def job_event_type(status: str) -> str | None:
    """The event a job in this status announces; None while it is not final."""
    return JOB_EVENTS.get(status)


def job_event_body(job: Job, base_url: str) -> str:
    """The payload announcing that `job` reached its (final) status."""
    event_type = JOB_EVENTS[job.status]
    view = JobOut.from_row(job, status_url(base_url, job.id))
    return _envelope(event_type, {"job": view.model_dump(mode="json")})


def batch_event_body(batch: Batch, counts: dict[str, int], base_url: str) -> str:
    """The payload announcing that `batch` settled in its (final) status."""
    view = BatchOut.from_row(batch, counts, results_url(base_url, batch.id))
    return _envelope(BATCH_EVENTS[batch.status], {"batch": view.model_dump(mode="json")})


def budget_event_body(alert: Alert) -> str:
    """The payload announcing that a user's spend crossed a fraction of a budget."""
    return _envelope(
        BUDGET_THRESHOLD,
        {
            "user_id": str(alert.user_id),
            "period": alert.period,
            "period_start": alert.period_start.isoformat(),
            # A JSON number (0.8 is 80%); the dollars are exact decimal strings, as elsewhere.
            "fraction": float(alert.fraction),
            "budget_usd": usd(alert.budget_usd),
            "spent_usd": usd(alert.spent_usd),
        },
    )


def ping_body(endpoint_id: str) -> str:
    return _envelope(
        PING,
        {"webhook_id": endpoint_id, "message": "A test event sent by POST /v1/webhooks/<id>/test."},
    )

"""A job's live tokens: GET /v1/jobs/<id>/stream (Server-Sent Events, api/stream_relay.py)."""

from __future__ import annotations

from flask import Blueprint, Response, stream_with_context, url_for

from api import openapi
from api.auth import current_key
from api.request_scope import db
from api.schemas.job_streams import JobStreamEvent
from api.stream_relay import relay, result_event
from shared.errors import JobNotStreamedError
from shared.models import FINAL_STATUSES
from shared.redis_client import get_redis
from shared.repositories.jobs import get_job_for_user
from shared.settings import get_settings

bp = Blueprint("job_streams", __name__, url_prefix="/v1/jobs")

# Proxies must pass each event on as it comes: nginx buffers a response unless told not to.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@bp.get("/<job_id>/stream")
@openapi.operation(
    summary="Follow a job: its tokens as the model writes them, then its final state",
    responses={
        200: openapi.Body(
            JobStreamEvent,
            "text/event-stream",
            "Server-Sent Events; a finished job's stream is its `result` alone.",
        )
    },
    errors=[409],
    tags=["jobs"],
)
def job_stream(job_id: str) -> Response:
    """Tokens are relayed for a job submitted with `"stream": true` (a running job that was
    not is `409 job_not_streamed`); a client that connects late gets the tokens so far first.
    The stream ends after the `result` event."""
    user_id = current_key().user_id
    job = get_job_for_user(db(), job_id, user_id)
    status_url = url_for("jobs.get_job", job_id=str(job.id), _external=True)
    if job.status in FINAL_STATUSES:
        events = iter([result_event(job, status_url)])
    elif job.request.get("stream"):
        events = relay(job.id, user_id, status_url, get_redis(), get_settings())
    else:
        raise JobNotStreamedError(
            f'Job {job_id!r} was not submitted with "stream": true, so its tokens are not '
            f"relayed; poll {status_url} for its result."
        )
    return Response(
        stream_with_context(events), mimetype="text/event-stream", headers=STREAM_HEADERS
    )

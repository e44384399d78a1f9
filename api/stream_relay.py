"""The relay behind GET /v1/jobs/<id>/stream: a streamed job's events from its Redis stream
(shared/token_streams.py) as Server-Sent Events, then its final state from Postgres.

A client that connects late reads the stream from its first entry, then waits for new ones.
Each read blocks for at most TOKEN_STREAM_BLOCK_MS, so between reads the relay sends the
keep-alive comment a quiet stream is due and reads the job when a run ended (or every
TOKEN_STREAM_CHECK_S, in case that entry was lost, or the job was cancelled). A client that went
away is noticed at the next write. No database connection is held between the reads of the
job, and every blocking call is short: it runs the same in gunicorn's threads or under gevent.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import redis

from shared import token_streams
from shared.db import one_statement
from shared.job_view import JobOut
from shared.logging import get_logger
from shared.models import FINAL_STATUSES, Job
from shared.outages import as_unavailable
from shared.repositories.jobs import get_job_for_user
from shared.settings import Settings

log = get_logger(__name__)
KEEP_ALIVE = ": keep-alive\n\n"
# Entries taken per read: a late client catches up in a few reads, never in one huge reply.
READ_COUNT = 500


def sse(event: str, data: str) -> str:
    """One Server-Sent Event; `data` is JSON on one line (JSON text holds no raw newline)."""
    return f"event: {event}\ndata: {data}\n\n"


def result_event(job: Job, status_url: str) -> str:
    """The final event: the job as GET /v1/jobs/<id> shows it."""
    view = JobOut.from_row(job, status_url).model_dump(mode="json")
    return sse("result", json.dumps(view, separators=(",", ":"), ensure_ascii=False))


def relay(
    job_id: uuid.UUID,
    user_id: uuid.UUID,
    status_url: str,
    client: redis.Redis,
    settings: Settings,
) -> Iterator[str]:
    """The events of a job that was not final when the client asked, up to its result."""
    key = token_streams.stream_key(job_id)
    last_id = "0-0"
    check_at = time.monotonic() + settings.token_stream_check_s
    quiet_since = time.monotonic()
    try:
        while True:
            ended = False
            replies = client.xread(
                {key: last_id}, count=READ_COUNT, block=settings.token_stream_block_ms
            )
            for _, entries in replies or ():
                for entry_id, fields in entries:
                    last_id = entry_id
                    kind, data = token_streams.decode(fields)
                    if kind in token_streams.RELAYED:
                        yield sse(kind, data)
                        quiet_since = time.monotonic()
                    ended = ended or kind == token_streams.ENDED
            now = time.monotonic()
            if ended or now >= check_at:
                with one_statement() as session:
                    job = get_job_for_user(session, str(job_id), user_id)
                if job.status in FINAL_STATUSES:
                    yield result_event(job, status_url)
                    return
                check_at = now + settings.token_stream_check_s
            if now - quiet_since >= settings.token_stream_keepalive_s:
                yield KEEP_ALIVE
                quiet_since = now
    except Exception as exc:
        # The answer's status is sent: an outage can only be told as an event, and it ends here.
        unavailable = as_unavailable(exc)
        if unavailable is None:
            raise
        log.warning("job_stream.service_unavailable", code=unavailable.code, error=repr(exc))
        body = {"code": unavailable.code, "message": unavailable.message, "details": None}
        yield sse("error", json.dumps(body))

"""A validated submission (POST /v1/jobs, or one job of POST /v1/batches) as the job admission
writes: its column values, its estimated tokens for the rate limit and its worst-case cost for
the budget hold."""

from __future__ import annotations

import uuid

from api.admission import NewJob
from api.request_observability import request_id
from api.schemas.batches import BatchJobCreate
from api.schemas.jobs import JobCreate
from shared.cost_estimate import estimated_tokens, reservation_usd
from shared.semantic_backend import require_semantic_backend
from shared.settings import Settings


def new_job(body: JobCreate, settings: Settings) -> NewJob:
    threshold = body.semantic_threshold()
    if threshold is not None:
        require_semantic_backend()
    max_tokens = body.effective_max_tokens()
    contents = body.contents()
    reserved = reservation_usd(
        body.models(), contents, max_tokens, settings.max_billed_attempts, body.max_cost_usd
    )
    values = {
        "id": uuid.uuid4(),
        "priority": body.priority,
        "model": body.model,
        "fallbacks": body.fallbacks,
        "request": {
            "messages": [m.model_dump() for m in body.messages],
            "max_tokens": max_tokens,
            "temperature": body.temperature,
            "stream": body.stream,
        },
        "meta": body.metadata,
        "response_format": body.response_format_json(),
        "callback_url": body.callback_url,
        "max_cost_usd": body.max_cost_usd,
        "cache": body.cache is True,
        "reserved_usd": reserved,
        "request_id": request_id(),
    }
    if threshold is not None:
        # Kept with the request, as `stream` is: only the worker reads it, and a job that did
        # not ask carries nothing.
        values["request"]["semantic_cache"] = {"threshold": threshold}
    if isinstance(body, BatchJobCreate):
        values["custom_id"] = body.custom_id
    return NewJob(values, estimated_tokens(contents, max_tokens), reserved)

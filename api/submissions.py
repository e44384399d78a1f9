"""A validated submission (POST /v1/jobs, or one job of POST /v1/batches) as the job admission
writes: its column values, its estimated tokens for the rate limit and its worst-case cost for
the budget hold."""

from __future__ import annotations

import uuid

from api.admission import NewJob
from api.auth import CallerKey
from api.input_safety import apply_input_safety
from api.model_choice import routed
from api.request_observability import request_id
from api.schemas.batches import BatchJobCreate
from api.schemas.jobs import JobCreate
from shared.cost_estimate import estimated_tokens, reservation_usd
from shared.model_routing import AUTO
from shared.semantic_backend import require_semantic_backend
from shared.settings import Settings


def new_job(body: JobCreate, settings: Settings, key: CallerKey) -> NewJob:
    """The job to admit for `body`, submitted with `key` (its owner's input-safety settings
    apply to every surface: jobs, batches, the compatible APIs)."""
    threshold = body.semantic_threshold()
    if threshold is not None:
        require_semantic_backend()
    max_tokens = body.effective_max_tokens()
    contents = body.contents()
    routing = routed(body, settings) if body.model == AUTO else None
    models = list(routing.chain) if routing is not None else body.models()
    reserved = reservation_usd(
        models, contents, max_tokens, settings.max_billed_attempts, body.max_cost_usd
    )
    request: dict[str, object] = {
        "messages": [m.model_dump() for m in body.messages],
        "max_tokens": max_tokens,
        "temperature": body.temperature,
        "stream": body.stream,
    }
    if body.fallback_response is not None:
        request["fallback_response"] = body.fallback_response
    if threshold is not None:
        # Kept with the request, as `stream` is: only the worker reads it, and a job that did
        # not ask carries nothing.
        request["semantic_cache"] = {"threshold": threshold}
    safety = apply_input_safety(body, key.input_safety, request, settings)
    values = {
        "id": uuid.uuid4(),
        "priority": body.priority,
        "model": models[0],
        "fallbacks": models[1:] if routing is not None else body.fallbacks,
        "routing": routing.as_json() if routing is not None else None,
        "request": request,
        "meta": body.metadata,
        "response_format": body.response_format_json(),
        "callback_url": body.callback_url,
        "max_cost_usd": body.max_cost_usd,
        "cache": body.cache is True,
        "tags": body.tags,
        "reserved_usd": reserved,
        "request_id": request_id(),
        **safety,
    }
    if isinstance(body, BatchJobCreate):
        values["custom_id"] = body.custom_id
    return NewJob(values, estimated_tokens(contents, max_tokens), reserved)

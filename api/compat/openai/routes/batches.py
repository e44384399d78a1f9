"""Batches (OpenAI's Batch API): create one from an uploaded input file, get, list and cancel
them. A batch whose every line validates is admitted as a native batch (api/admission.py), one
job a line; a file with any bad line fails the whole batch at validation, as OpenAI does, and
no job is admitted."""

from __future__ import annotations

from typing import Literal, cast

from flask import Blueprint, Response, jsonify

from api import screening
from api.admission import admit_batch
from api.auth import current_key
from api.compat.openai.errors import OpenAIError
from api.compat.openai.rendering import batch_object
from api.compat.openai.schemas import BatchCreate, BatchObject, ListPage, ListQuery
from api.compat.openai.translation import CHAT_COMPLETIONS, translate
from api.request_scope import db, parse_body, parse_query
from api.submissions import new_job
from shared import job_announcements, outbox
from shared.logging import get_logger
from shared.models import BatchOrigin, OpenAIBatch
from shared.repositories.batches import (
    cancel_batch,
    count_by_status,
    counts_of,
    create_refused_batch,
)
from shared.repositories.files import get_file
from shared.repositories.openai_batches import (
    get_openai_batch,
    list_openai_batches,
    native_batches,
    record_openai_batch,
)
from shared.settings import get_settings

bp = Blueprint("openai_batches", __name__, url_prefix="/batches")
screening.install_headers(bp)
log = get_logger(__name__)
COMPLETION_WINDOW = "24h"
WINDOW_S = 86_400
PRIORITIES = ("high", "normal", "low")
# OpenAI batches are background work: they wait behind interactive jobs unless told otherwise.
DEFAULT_PRIORITY = "low"


def _json(row: OpenAIBatch) -> Response:
    session = db()
    batch = native_batches(session, [row]).get(row.batch_id) if row.batch_id else None
    counts = count_by_status(session, batch.id) if batch is not None else {}
    return jsonify(batch_object(row, batch, counts).model_dump(mode="json"))


def _priority(metadata: dict[str, str] | None) -> Literal["high", "normal", "low"]:
    priority = (metadata or {}).get("priority", DEFAULT_PRIORITY)
    if priority not in PRIORITIES:
        raise OpenAIError(
            400,
            f"metadata.priority must be one of {list(PRIORITIES)}.",
            param="metadata.priority",
            code="invalid_value",
        )
    return cast(Literal["high", "normal", "low"], priority)


@bp.post("")
def create() -> Response:
    key = current_key()
    body = parse_body(BatchCreate)
    if body.endpoint != CHAT_COMPLETIONS:
        raise OpenAIError(
            400,
            f"endpoint must be {CHAT_COMPLETIONS!r}; promptq batches chat completions only.",
            param="endpoint",
            code="invalid_value",
        )
    if body.completion_window != COMPLETION_WINDOW:
        raise OpenAIError(
            400,
            f"completion_window must be {COMPLETION_WINDOW!r}.",
            param="completion_window",
            code="invalid_value",
        )
    priority = _priority(body.metadata)
    session = db()
    input_file = get_file(session, body.input_file_id, key.user_id, with_content=True)
    if input_file.purpose != "batch":
        raise OpenAIError(
            400,
            "The input file's purpose must be 'batch'.",
            param="input_file_id",
            code="invalid_value",
        )
    translated = translate(input_file.content, priority)
    fields = {
        "user_id": key.user_id,
        "input_file_id": input_file.id,
        "endpoint": body.endpoint,
        "completion_window": body.completion_window,
        "meta": body.metadata,
    }
    if not translated.errors and not translated.jobs:
        raise OpenAIError(
            400, "The input file holds no requests.", param="input_file_id", code="empty_file"
        )
    settings = get_settings()
    if translated.errors:
        refused, webhooks = create_refused_batch(
            session,
            user_id=key.user_id,
            meta=dict(body.metadata or {}),
            origin=BatchOrigin.OPENAI,
            base_url=settings.public_base_url,
        )
        row = record_openai_batch(session, batch=refused, errors=translated.errors, **fields)
        session.commit()
        outbox.publish_webhooks(webhooks)
        log.info("openai_batch.failed_validation", batch_id=row.id, errors=len(translated.errors))
        return _json(row)
    jobs = [new_job(job, settings, key) for job in translated.jobs]
    recorded: list[OpenAIBatch] = []
    admit_batch(
        key,
        jobs,
        dict(body.metadata or {}),
        WINDOW_S,
        also=lambda s, batch: recorded.append(
            record_openai_batch(s, batch=batch, errors=None, **fields)
        ),
        origin=BatchOrigin.OPENAI,
    )
    return _json(recorded[-1])


@bp.get("/<batch_id>")
def retrieve(batch_id: str) -> Response:
    return _json(get_openai_batch(db(), batch_id, current_key().user_id))


@bp.get("")
def list_own() -> Response:
    query = parse_query(ListQuery)
    session = db()
    rows = list_openai_batches(session, current_key().user_id, query.after, query.limit + 1)
    page = rows[: query.limit]
    batches = native_batches(session, page)
    counts = counts_of(session, list(batches))
    data = [
        batch_object(
            row,
            batches.get(row.batch_id) if row.batch_id else None,
            counts.get(row.batch_id, {}) if row.batch_id else {},
        )
        for row in page
    ]
    listing = ListPage[BatchObject](
        data=data,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(rows) > query.limit,
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.post("/<batch_id>/cancel")
def cancel(batch_id: str) -> Response:
    session = db()
    user_id = current_key().user_id
    row = get_openai_batch(session, batch_id, user_id)
    if row.batch_id is None or row.errors:
        raise OpenAIError(
            409, f"Batch {batch_id} failed validation; there is nothing to cancel.", code="conflict"
        )
    _, done = cancel_batch(session, str(row.batch_id), user_id, get_settings().public_base_url)
    session.commit()
    job_announcements.announce(done.cancelled_jobs)
    outbox.publish_webhooks(done.webhooks)
    log.info("openai_batch.cancel", batch_id=batch_id, jobs=len(done.cancelled_jobs))
    return _json(row)

"""Message Batches (Anthropic's batch API): create, retrieve, list and cancel batches, and read
their results. A batch is admitted as a native batch (api/admission.py), one job a request,
and only batches created here are seen here."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal, cast

from flask import Blueprint, Response, jsonify, request, stream_with_context, url_for

from api import screening
from api.admission import admit_batch
from api.auth import current_key
from api.compat.anthropic.rendering import batch_id_of, message_batch, result_line
from api.compat.anthropic.schemas import BatchCreate, ListPage, ListQuery, MessageBatch
from api.compat.anthropic.translation import translate
from api.compat.errors import CompatError
from api.request_scope import db, parse_body, parse_query
from api.submissions import new_job
from shared import job_announcements, outbox
from shared.batch_view import origin_id
from shared.logging import get_logger
from shared.models import OPEN_BATCH_STATUSES, Batch, BatchOrigin
from shared.repositories.batches import (
    Position,
    cancel_batch,
    counts_of,
    get_batch_for_user,
    iter_finished,
    list_batches,
)
from shared.settings import get_settings

bp = Blueprint("anthropic_message_batches", __name__, url_prefix="/messages/batches")
screening.install_headers(bp)
log = get_logger(__name__)
# Anthropic's batches have a day to finish.
WINDOW_S = 86_400
PRIORITIES = ("high", "normal", "low")
# Message Batches are background work: they wait behind interactive jobs unless told otherwise.
DEFAULT_PRIORITY = "low"
PRIORITY_HEADER = "Promptq-Priority"


@bp.before_request
def _batch_body_limit() -> None:
    request.max_content_length = get_settings().max_batch_request_bytes


def _own_batch(message_batch_id: str) -> Batch:
    batch = get_batch_for_user(db(), batch_id_of(message_batch_id), current_key().user_id)
    if batch.origin != BatchOrigin.ANTHROPIC:
        raise CompatError(404, f"No message batch with id {message_batch_id!r}.")
    return batch


def _view(batch: Batch, counts: dict[str, int]) -> MessageBatch:
    url = url_for(
        "anthropic.anthropic_message_batches.results",
        message_batch_id=origin_id(BatchOrigin.ANTHROPIC, batch.id),
        _external=True,
    )
    return message_batch(batch, counts, url)


def _json(batch: Batch) -> Response:
    counts = counts_of(db(), [batch.id], split_expired=True)[batch.id]
    return jsonify(_view(batch, counts).model_dump(mode="json"))


def _priority() -> Literal["high", "normal", "low"]:
    priority = request.headers.get(PRIORITY_HEADER, DEFAULT_PRIORITY)
    if priority not in PRIORITIES:
        raise CompatError(400, f"The {PRIORITY_HEADER} header must be one of {list(PRIORITIES)}.")
    return cast(Literal["high", "normal", "low"], priority)


@bp.post("")
def create() -> Response:
    key = current_key()
    body = parse_body(BatchCreate)
    settings = get_settings()
    if len(body.requests) > settings.max_batch_jobs:
        raise CompatError(
            400,
            f"requests: at most {settings.max_batch_jobs} requests a batch "
            f"(MAX_BATCH_JOBS); this one has {len(body.requests)}.",
        )
    jobs = [new_job(job, settings, key) for job in translate(body.requests, _priority())]
    batch = admit_batch(key, jobs, {}, WINDOW_S, origin=BatchOrigin.ANTHROPIC)
    return _json(batch)


@bp.get("/<message_batch_id>")
def retrieve(message_batch_id: str) -> Response:
    return _json(_own_batch(message_batch_id))


def _position(message_batch_id: str | None) -> Position | None:
    if message_batch_id is None:
        return None
    anchor = _own_batch(message_batch_id)
    return anchor.created_at, anchor.id


@bp.get("")
def list_own() -> Response:
    query = parse_query(ListQuery)
    if query.before_id is not None and query.after_id is not None:
        raise CompatError(400, "Give before_id or after_id, not both.")
    session = db()
    rows = list_batches(
        session,
        current_key().user_id,
        _position(query.after_id),
        query.limit + 1,
        before=_position(query.before_id),
        origin=BatchOrigin.ANTHROPIC,
    )
    # The row past the page is the farthest from the cursor: the newest when going back
    # (before_id), the oldest when going on.
    page = rows[1:] if query.before_id is not None and len(rows) > query.limit else rows
    page = page[: query.limit]
    counts = counts_of(session, [batch.id for batch in page], split_expired=True)
    data = [_view(batch, counts[batch.id]) for batch in page]
    listing = ListPage[MessageBatch](
        data=data,
        has_more=len(rows) > query.limit,
        first_id=data[0].id if data else None,
        last_id=data[-1].id if data else None,
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.post("/<message_batch_id>/cancel")
def cancel(message_batch_id: str) -> Response:
    session = db()
    batch = _own_batch(message_batch_id)
    batch, done = cancel_batch(
        session, str(batch.id), current_key().user_id, get_settings().public_base_url
    )
    session.commit()
    job_announcements.announce(done.cancelled_jobs)
    outbox.publish_webhooks(done.webhooks)
    log.info("message_batch.cancel", batch_id=str(batch.id), jobs=len(done.cancelled_jobs))
    return _json(batch)


@bp.get("/<message_batch_id>/results")
def results(message_batch_id: str) -> Response:
    batch = _own_batch(message_batch_id)
    if batch.status in OPEN_BATCH_STATUSES:
        raise CompatError(
            404, f"Message batch {message_batch_id} has not ended; its results are not ready."
        )

    def lines() -> Iterator[str]:
        # Flask tears the request's scope down when the view returns and again when a stream
        # ends, so the stream takes its session from db() once it starts: the second teardown
        # closes it.
        for row in iter_finished(db(), batch.id):
            yield result_line(row)

    return Response(stream_with_context(lines()), mimetype="application/x-jsonl")

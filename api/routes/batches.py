"""Batches: submit many jobs at once (POST /v1/batches), list and follow them, cancel them,
stream their results."""

from __future__ import annotations

from collections.abc import Iterator

from flask import Blueprint, Response, jsonify, request, stream_with_context, url_for

from api import openapi, screening
from api.admission import admit_batch
from api.auth import current_key
from api.cursor import decode_cursor, encode_cursor
from api.locations import located
from api.request_scope import db, parse_body, parse_query
from api.schemas.batches import (
    BatchCreate,
    BatchJobCreate,
    BatchList,
    BatchListQuery,
    BatchOut,
    BatchResultLine,
)
from api.submissions import new_job
from shared import job_announcements, outbox
from shared.errors import UnknownModelError, UrlNotAllowedError
from shared.job_view import Usage
from shared.logging import get_logger
from shared.models import Batch, JobStatus
from shared.pricing import PRICE_TABLE
from shared.repositories.batches import (
    cancel_batch,
    count_by_status,
    counts_of,
    get_batch_for_user,
    iter_finished,
    list_batches,
)
from shared.settings import Settings, get_settings
from shared.ssrf import TargetPolicy, check_target_url

bp = Blueprint("batches", __name__, url_prefix="/v1/batches")
screening.install_headers(bp)
log = get_logger(__name__)
TAGS = ["batches"]


@bp.before_request
def _batch_body_limit() -> None:
    # Larger than the per-request limit: a 10,000-job batch is megabytes of JSON.
    request.max_content_length = get_settings().max_batch_request_bytes


def _batch_out(batch: Batch, counts: dict[str, int]) -> BatchOut:
    results_url = url_for("batches.results", batch_id=str(batch.id), _external=True)
    return BatchOut.from_row(batch, counts, results_url)


def _batch_json(batch: Batch, counts: dict[str, int], status: int) -> Response:
    response = jsonify(_batch_out(batch, counts).model_dump(mode="json"))
    response.status_code = status
    return located(response, "batches.get_batch", batch_id=str(batch.id))


def _check_models(jobs: list[BatchJobCreate]) -> None:
    for index, job in enumerate(jobs):
        for model in (job.model, *job.fallbacks):
            if model not in PRICE_TABLE:
                raise UnknownModelError(
                    f"Unknown model {model!r} in job {job.custom_id!r} (jobs.{index}); "
                    "GET /v1/models lists the models promptq serves.",
                    details={
                        "index": index,
                        "custom_id": job.custom_id,
                        "model": model,
                        "known": sorted(PRICE_TABLE),
                    },
                )


def _check_callbacks(jobs: list[BatchJobCreate], settings: Settings) -> None:
    """Each distinct callback_url once (a batch usually repeats one): public targets only."""
    policy = TargetPolicy.from_settings(settings)
    checked: set[str] = set()
    for index, job in enumerate(jobs):
        if job.callback_url is None or job.callback_url in checked:
            continue
        try:
            check_target_url(job.callback_url, policy)
        except UrlNotAllowedError as exc:
            raise UrlNotAllowedError(
                f"jobs.{index}.callback_url: {exc.message}",
                details={**(exc.details or {}), "index": index, "custom_id": job.custom_id},
            ) from None
        checked.add(job.callback_url)


@bp.post("")
@openapi.operation(
    summary="Submit many jobs at once",
    request=BatchCreate,
    responses={202: BatchOut},
    errors=[429, 503],
    tags=TAGS,
    links={"GetBatch": openapi.link("batches.get_batch", batch_id="$response.body#/id")},
)
def submit_batch() -> Response:
    key = current_key()
    body = parse_body(BatchCreate)
    _check_models(body.jobs)
    settings = get_settings()
    _check_callbacks(body.jobs, settings)
    # The whole batch is one request, the sum of its jobs' tokens and one budget hold.
    jobs = [new_job(job, settings, key) for job in body.jobs]
    window_s = body.completion_window_s or settings.batch_completion_window_s
    batch = admit_batch(key, jobs, body.metadata, window_s)
    return _batch_json(batch, {JobStatus.QUEUED: len(jobs)}, 202)


@bp.get("")
@openapi.operation(
    summary="List the caller's batches, newest first",
    query=BatchListQuery,
    responses={200: BatchList},
    tags=TAGS,
)
def list_own_batches() -> Response:
    query = parse_query(BatchListQuery)
    after = decode_cursor(query.cursor) if query.cursor is not None else None
    session = db()
    rows = list_batches(session, current_key().user_id, after, query.limit + 1)
    page = rows[: query.limit]
    counts = counts_of(session, [batch.id for batch in page])
    listing = BatchList(
        data=[_batch_out(batch, counts[batch.id]) for batch in page],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id)
        if len(rows) > query.limit
        else None,
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.get("/<batch_id>")
@openapi.operation(
    summary="Get a batch and its counts by status", responses={200: BatchOut}, tags=TAGS
)
def get_batch(batch_id: str) -> Response:
    session = db()
    batch = get_batch_for_user(session, batch_id, current_key().user_id)
    return _batch_json(batch, count_by_status(session, batch.id), 200)


@bp.post("/<batch_id>/cancel")
@openapi.operation(
    summary="Cancel a batch: its queued jobs are cancelled, running ones finish",
    responses={200: BatchOut},
    errors=[409],
    tags=TAGS,
)
def cancel(batch_id: str) -> Response:
    session = db()
    batch, done = cancel_batch(
        session, batch_id, current_key().user_id, get_settings().public_base_url
    )
    counts = count_by_status(session, batch.id)
    session.commit()
    job_announcements.announce(done.cancelled_jobs)
    outbox.publish_webhooks(done.webhooks)
    log.info("batch.cancel", batch_id=batch_id, status=batch.status, jobs=len(done.cancelled_jobs))
    return _batch_json(batch, counts, 200)


@bp.get("/<batch_id>/results")
@openapi.operation(
    summary="Stream the batch's finished jobs",
    responses={
        200: openapi.Body(
            BatchResultLine, "application/x-ndjson", "JSON Lines: one finished job a line."
        )
    },
    tags=TAGS,
)
def results(batch_id: str) -> Response:
    batch = get_batch_for_user(db(), batch_id, current_key().user_id)

    def lines() -> Iterator[str]:
        # Flask tears the request's scope down once when the view returns and again when the
        # stream ends, so the stream takes its own session from db(): the second teardown
        # closes it, even when the client goes away half-way.
        for row in iter_finished(db(), batch.id):
            line = BatchResultLine(
                custom_id=row.custom_id,
                job_id=str(row.id),
                status=row.status,
                result=row.result,
                error=row.error,
                usage=Usage.of(row.input_tokens, row.output_tokens),
                cost_usd=row.cost_usd,
            )
            yield line.model_dump_json() + "\n"

    return Response(stream_with_context(lines()), mimetype="application/x-ndjson")

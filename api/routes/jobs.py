"""Jobs: submit (POST /v1/jobs), list, poll, cancel, and a job's attempts."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request, url_for

from api import openapi, screening
from api.admission import IDEMPOTENCY_HEADER, Idempotency, admit_job
from api.auth import current_key
from api.cursor import decode_cursor, encode_cursor
from api.job_waits import wait_until_final
from api.locations import located
from api.request_scope import db, parse_body, parse_query
from api.schemas.jobs import (
    AttemptList,
    AttemptOut,
    JobCreate,
    JobGetQuery,
    JobList,
    JobListQuery,
    JobOut,
)
from api.submissions import new_job
from shared import job_announcements, outbox
from shared.errors import ValidationError
from shared.logging import get_logger
from shared.models import Job
from shared.repositories.jobs import (
    JobFilter,
    cancel_job,
    get_job_for_user,
    list_attempts,
    list_jobs,
)
from shared.repositories.webhook_messages import enqueue_job_events
from shared.settings import get_settings
from shared.ssrf import TargetPolicy, check_target_url

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
screening.install_headers(bp)
log = get_logger(__name__)

TAGS = ["jobs"]
MAX_IDEMPOTENCY_KEY = 255


def _job_json(job: Job, status: int) -> Response:
    status_url = url_for("jobs.get_job", job_id=str(job.id), _external=True)
    response = jsonify(JobOut.from_row(job, status_url).model_dump(mode="json"))
    response.status_code = status
    return located(response, "jobs.get_job", job_id=str(job.id))


def _idempotency(body: JobCreate) -> Idempotency | None:
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY:
        problem = f"must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
        raise ValidationError(
            f"Invalid request: {IDEMPOTENCY_HEADER} header {problem}.",
            details=[{"field": f"header {IDEMPOTENCY_HEADER}", "problem": problem}],
        )
    return Idempotency(key, body.fingerprint())


@bp.post("")
@openapi.operation(
    summary="Submit a job (an Idempotency-Key header makes a retry return the first job)",
    request=JobCreate,
    responses={202: JobOut, 200: JobOut},
    errors=[409, 429, 503],
    tags=TAGS,
    links={"GetJob": openapi.link("jobs.get_job", job_id="$response.body#/id")},
)
def submit_job() -> Response:
    key = current_key()
    body = parse_body(JobCreate)
    # An unknown model or fallback is refused before anything is counted.
    body.check_models()
    settings = get_settings()
    if body.callback_url is not None:
        check_target_url(body.callback_url, TargetPolicy.from_settings(settings))
    idempotency = _idempotency(body)
    job, new = admit_job(key, new_job(body, settings, key), idempotency)
    return _job_json(job, 202 if new else 200)


@bp.get("")
@openapi.operation(
    summary="List the caller's jobs, newest first",
    query=JobListQuery,
    responses={200: JobList},
    tags=TAGS,
)
def list_own_jobs() -> Response:
    user_id = current_key().user_id
    query = parse_query(JobListQuery)
    after = decode_cursor(query.cursor) if query.cursor is not None else None
    filters = JobFilter(
        status=query.status,
        priority=query.priority,
        model=query.model,
        created_after=query.created_after,
        created_before=query.created_before,
        tag=query.tag,
    )
    rows = list_jobs(db(), user_id, filters, after, query.limit + 1)
    page = rows[: query.limit]
    more = len(rows) > query.limit
    listing = JobList(
        data=[
            JobOut.from_row(job, url_for("jobs.get_job", job_id=str(job.id), _external=True))
            for job in page
        ],
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if more else None,
    )
    return jsonify(listing.model_dump(mode="json"))


@bp.get("/<job_id>")
@openapi.operation(
    summary="Get a job; with ?wait=N, once it is final or after N seconds (a long-poll)",
    query=JobGetQuery,
    responses={200: JobOut},
    tags=TAGS,
)
def get_job(job_id: str) -> Response:
    user_id = current_key().user_id
    query = parse_query(JobGetQuery)
    session = db()
    if not query.wait:
        return _job_json(get_job_for_user(session, job_id, user_id), 200)
    job = wait_until_final(
        lambda: get_job_for_user(session, job_id, user_id), session.close, job_id, query.wait
    )
    return _job_json(job, 200)


@bp.post("/<job_id>/cancel")
@openapi.operation(
    summary="Cancel a queued or running job", responses={200: JobOut}, errors=[409], tags=TAGS
)
def cancel(job_id: str) -> Response:
    settings = get_settings()
    session = db()
    job = cancel_job(session, job_id, current_key().user_id)
    webhooks = enqueue_job_events(session, [job.id], settings.public_base_url)
    session.commit()
    job_announcements.announce([job.id])
    outbox.publish_webhooks(webhooks)
    log.info("job.cancelled", job_id=job_id)
    return _job_json(job, 200)


@bp.get("/<job_id>/attempts")
@openapi.operation(summary="List a job's attempts", responses={200: AttemptList}, tags=TAGS)
def attempts(job_id: str) -> Response:
    session = db()
    job = get_job_for_user(session, job_id, current_key().user_id)
    rows = list_attempts(session, job.id)
    listing = AttemptList(data=[AttemptOut.model_validate(a) for a in rows])
    return jsonify(listing.model_dump(mode="json"))

"""Jobs: submit (POST /v1/jobs) and poll (GET /v1/jobs/<id>)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, url_for

from api.auth import current_user
from api.request_scope import db, parse_body
from api.schemas import JobCreate, JobOut
from shared.logging import get_logger
from shared.models import Job
from shared.pricing import price_for
from shared.queueing import publish_job
from shared.repositories.jobs import create_job, get_job_for_user
from shared.settings import get_settings

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
log = get_logger(__name__)


def _job_json(job: Job, status: int) -> Response:
    status_url = url_for("jobs.get_job", job_id=str(job.id), _external=True)
    response = jsonify(JobOut.from_row(job, status_url).model_dump(mode="json"))
    response.status_code = status
    response.headers["Location"] = status_url
    return response


@bp.post("")
def submit_job() -> Response:
    user = current_user()
    body = parse_body(JobCreate)
    price_for(body.model)  # an unknown model is refused here, before anything is written
    session = db()
    job = create_job(
        session,
        user_id=user.id,
        model=body.model,
        priority=body.priority,
        request={
            "messages": [m.model_dump() for m in body.messages],
            "max_tokens": body.max_tokens or get_settings().default_max_tokens,
            "temperature": body.temperature,
        },
        fallbacks=[],
        meta=body.metadata,
    )
    # Outbox order: the row is durable before any worker can hear of it.
    session.commit()
    try:
        publish_job(str(job.id), job.priority)
    except Exception:
        # The job is safe in Postgres as `queued`; the sweeper republishes unpublished jobs.
        log.exception("job.publish_failed", job_id=str(job.id))
    log.info("job.accepted", job_id=str(job.id), user_id=str(user.id), model=job.model)
    return _job_json(job, 202)


@bp.get("/<job_id>")
def get_job(job_id: str) -> Response:
    user = current_user()
    return _job_json(get_job_for_user(db(), job_id, user.id), 200)

"""run_job: claim a job, call its model with no database connection held, record the outcome."""

from __future__ import annotations

import uuid

from shared.db import transaction
from shared.logging import get_logger
from shared.models import JobStatus
from shared.queueing import RUN_JOB_TASK
from shared.repositories.attempts import AttemptRecord, record_attempt
from shared.repositories.jobs import Outcome, claim_job, finish_job
from shared.settings import get_settings
from worker.celery_app import app
from worker.pipeline import AttemptResult, run_attempt
from worker.providers.base import ProviderRequest

log = get_logger(__name__)


@app.task(name=RUN_JOB_TASK)
def run_job(job_id: str) -> None:
    """Run one job to its final state. Idempotent: a redelivered message finds nothing to claim."""
    settings = get_settings()
    with transaction() as session:
        claim = claim_job(session, uuid.UUID(job_id), settings.job_lease_s)
    if claim is None:
        log.info("job.skip_not_claimable", job_id=job_id)
        return

    attempt = run_attempt(ProviderRequest.from_job(claim.model, claim.request))

    with transaction() as session:
        if not finish_job(session, claim, _outcome(attempt)):
            log.warning("job.lease_lost", job_id=job_id)
            return
        record_attempt(
            session, job_id=claim.job_id, user_id=claim.user_id, attempt=_attempt_record(attempt)
        )
    log.info(
        "job.finished",
        job_id=job_id,
        status="succeeded" if attempt.error is None else "failed",
        latency_ms=attempt.latency_ms,
    )


def _outcome(attempt: AttemptResult) -> Outcome:
    response = attempt.response
    if response is None:
        assert attempt.error is not None
        return Outcome(
            status=JobStatus.FAILED,
            result=None,
            error={"code": attempt.error.code, "message": attempt.error.message},
            input_tokens=0,
            output_tokens=0,
            cost_usd=attempt.cost_usd,
        )
    return Outcome(
        status=JobStatus.SUCCEEDED,
        result={
            "content": response.content,
            "finish_reason": response.finish_reason,
            "provider": attempt.provider,
            "model": response.model,
        },
        error=None,
        input_tokens=response.input_tokens,
        output_tokens=response.output_tokens,
        cost_usd=attempt.cost_usd,
    )


def _attempt_record(attempt: AttemptResult) -> AttemptRecord:
    response, error = attempt.response, attempt.error
    return AttemptRecord(
        provider=attempt.provider,
        model=attempt.model,
        outcome="succeeded" if response is not None else "failed",
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        latency_ms=attempt.latency_ms,
        input_tokens=response.input_tokens if response else 0,
        output_tokens=response.output_tokens if response else 0,
        cost_usd=attempt.cost_usd,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
    )

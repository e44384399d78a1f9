"""run_job: claim a job, run its model chain with no database connection held, and commit the
outcome (final attempt, usage, job state and budget settlement) in one transaction, fenced by
the lease."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import structlog

from shared import outbox
from shared.db import one_statement, transaction
from shared.logging import get_logger
from shared.models import JobStatus
from shared.pricing import model_chain
from shared.queueing import RUN_JOB_TASK
from shared.redis_client import get_redis
from shared.repositories.attempts import AttemptRecord, record_attempt
from shared.repositories.final_write import finish_unwatched
from shared.repositories.job_leases import (
    Claim,
    Outcome,
    add_charge,
    claim_job,
    finish_job,
    lease_status,
    requeue_job,
)
from shared.repositories.webhook_messages import enqueue_budget_alerts, enqueue_events_for
from shared.semantic_backend import semantic_backend_installed
from shared.settings import Settings, get_settings
from worker import metrics
from worker.attempt import AttemptResult
from worker.celery_app import app
from worker.dispatcher import get_dispatcher
from worker.final_announcements import get_final_announcer
from worker.lease_keeper import get_lease_keeper
from worker.pii_guard import guard, restored
from worker.pipeline import JobSpec, MaxCostExceededError, SemanticCache, run_chain
from worker.pipeline import Outcome as ChainOutcome
from worker.policies import get_policies
from worker.providers.base import ProviderRequest
from worker.resilience.database_retry import through_outage
from worker.token_stream import TokenStream

T = TypeVar("T")
log = get_logger(__name__)

# The name a last-resort answer goes by where a model's would: the job's own text answered.
LAST_RESORT_MODEL = "fallback_response"
TOO_MANY_DELIVERIES = {
    "code": "retries_exhausted",
    "message": "The job was delivered to workers too many times without finishing.",
}


class _Sink:
    """Persists a non-final attempt in its own transaction, fenced by the lease; each write
    rides out a database outage for as long as the lease is surely held."""

    def __init__(self, claim: Claim) -> None:
        self._claim = claim

    def save(self, attempt: AttemptResult) -> bool:
        record = _record(attempt)

        def write() -> list[tuple[str, int]] | None:
            with transaction() as session:
                if lease_status(session, self._claim.job_id, self._claim.lease_token) is None:
                    return None
                record_attempt(
                    session, job_id=self._claim.job_id, user_id=self._claim.user_id, attempt=record
                )
                if not record.billed:
                    return []
                alerts = add_charge(
                    session,
                    self._claim,
                    record.input_tokens,
                    record.output_tokens,
                    record.cost_usd,
                    alert_fractions=get_settings().budget_alert_fractions,
                )
                return enqueue_budget_alerts(session, alerts)

        webhooks = _while_leased(self._claim, write, "save_attempt")
        if webhooks is None:
            return False
        outbox.publish_webhooks(webhooks)
        metrics.record_attempt(record.model, record.outcome, _billed(record))
        return True

    def cancelled(self) -> bool:
        def read() -> str | None:
            with transaction() as session:
                return lease_status(session, self._claim.job_id, self._claim.lease_token)

        return _while_leased(self._claim, read, "lease_status") != JobStatus.RUNNING


def _while_leased(claim: Claim, operation: Callable[[], T], what: str) -> T:
    """`operation()`, retried through a database outage until the lease may have expired."""
    deadline = get_lease_keeper().held_until(claim.job_id, claim.lease_token)
    return through_outage(operation, deadline=deadline, what=what)


def _claim(job_id: uuid.UUID, lease_s: int) -> Claim | None:
    with one_statement() as session:
        return claim_job(session, job_id, lease_s)


@app.task(name=RUN_JOB_TASK)
def run_job(job_id: str) -> None:
    """Run one job to its final state. Idempotent: a redelivered message finds nothing to claim."""
    settings = get_settings()
    taken_at = time.monotonic()
    claim = through_outage(
        lambda: _claim(uuid.UUID(job_id), settings.job_lease_s),
        deadline=taken_at + settings.job_lease_s,
        what="claim",
    )
    if claim is None:
        log.info("job.skip_not_claimable", job_id=job_id)
        return
    structlog.contextvars.bind_contextvars(
        job_id=job_id,
        user_id=str(claim.user_id),
        request_id=claim.request_id,
        model=claim.model,
        delivery=claim.deliveries,
    )
    if claim.deliveries == 1:
        metrics.job_queue_wait.labels(claim.priority).observe(claim.age_s)
    if settings.log_prompts:
        log.info("job.prompt", request=claim.request)
    try:
        _run_claimed(claim, taken_at, settings)
    finally:
        structlog.contextvars.unbind_contextvars(
            "job_id", "user_id", "request_id", "model", "delivery", "attempt"
        )


def _run_claimed(claim: Claim, taken_at: float, settings: Settings) -> None:
    keeper = get_lease_keeper()
    keeper.hold(claim.job_id, claim.lease_token, taken_at)
    # Only jobs that asked are streamed: a job nobody watches costs no Redis write per token.
    tokens = (
        TokenStream(get_redis(), claim.job_id, settings) if claim.request.get("stream") else None
    )
    try:
        if claim.deliveries > settings.max_deliveries:
            _finish(claim, None, TOO_MANY_DELIVERIES, taken_at)
            return
        if tokens is not None and claim.deliveries > 1:
            tokens.resume(claim.model)
        request = ProviderRequest.from_job(claim.model, claim.request)
        originals = None
        if claim.scrub_pii:
            guarded = guard(claim, settings)
            request, originals = guarded.request, guarded.originals
        outcome = run_chain(
            _spec(claim, request, settings), get_policies(), _Sink(claim), tokens_to=tokens
        )
        if outcome.abandoned:
            # Cancelled meanwhile: the fenced final write keeps the status but releases the lease
            # and settles the reservation. If the lease was lost instead, it writes nothing.
            _finish(claim, None, None, taken_at)
            log.info("job.abandoned")
        elif outcome.requeue_at is not None:
            requeue_at = outcome.requeue_at

            def hand_back() -> bool:
                with transaction() as session:
                    return requeue_job(session, claim.job_id, claim.lease_token, requeue_at)

            _while_leased(claim, hand_back, "requeue")
            log.info("job.requeued", not_before=outcome.requeue_at.isoformat())
        elif (last_resort := _last_resort(claim, outcome)) is not None:
            if tokens is not None and outcome.final is not None and outcome.error is not None:
                tokens.fallback(outcome.final.model, LAST_RESORT_MODEL, outcome.error)
                tokens.text(last_resort)
            _finish(claim, outcome.final, None, taken_at, last_resort=last_resort)
        else:
            final = outcome.final
            if originals is not None:
                final = restored(final, originals)
            _finish(claim, final, _error(outcome), taken_at)
    finally:
        keeper.drop(claim.job_id, claim.lease_token)
        # The job is final or back in the backlog: its place in the window is free.
        get_dispatcher().wake()
        if tokens is not None:
            # After the job's state is written: a reader told the run ended reads the job.
            tokens.ended()


def _spec(claim: Claim, request: ProviderRequest, settings: Settings) -> JobSpec:
    if claim.routing is not None:
        models = tuple(claim.routing["chain"])
    else:
        models = model_chain(claim.model, claim.fallbacks)
    semantic = claim.request.get("semantic_cache")
    if claim.max_cost_usd is not None:
        cap = claim.max_cost_usd
    else:
        cap = claim.reserved_usd if claim.reserved_usd > 0 else None
    return JobSpec(
        models=models,
        request=request,
        response_format=claim.response_format,
        cache=claim.cache,
        cost_cap=cap,
        spent=claim.cost_usd,
        semantic=_semantic_cache(claim, semantic["threshold"], settings) if semantic else None,
        owner=str(claim.user_id),
    )


def _semantic_cache(claim: Claim, threshold: float, settings: Settings) -> SemanticCache | None:
    # The API refuses cache "semantic" without the extra; a worker installed without it runs
    # the job uncached rather than failing it.
    if not semantic_backend_installed():
        log.warning("semantic_cache.backend_missing", extra="promptq[semantic]")
        return None
    # Imported here: numpy and the embedding model's modules load only for jobs that ask.
    from worker.semantic_cache import JobSemanticCache

    return JobSemanticCache(
        claim.user_id, claim.response_format, threshold, settings, scrubbed=claim.scrub_pii
    )


def _last_resort(claim: Claim, outcome: ChainOutcome) -> str | None:
    """The job's fallback_response when every model of its chain failed. Not when the job's own
    cost cap stopped it: that is the user's limit, not the models' failure."""
    text = claim.request.get("fallback_response")
    if text is None or outcome.error is None or isinstance(outcome.error, MaxCostExceededError):
        return None
    return str(text)


def _error(outcome: ChainOutcome) -> dict[str, Any] | None:
    if outcome.error is None:
        return None
    return {"code": outcome.error.code, "message": outcome.error.message}


def _billed(record: AttemptRecord) -> Decimal:
    return record.cost_usd if record.billed else Decimal(0)


def _finish(
    claim: Claim,
    final: AttemptResult | None,
    error: dict[str, Any] | None,
    taken_at: float,
    last_resort: str | None = None,
) -> None:
    """One transaction: the final attempt and its usage, the job's final state, the settlement,
    and the webhook messages; one statement when no webhook waits on the job. With
    `last_resort`, `final` is the chain's last failure, and the job succeeds with that text."""
    record = _record(final) if final is not None else None
    response = final.response if final is not None and error is None else None
    charged = record if record is not None and record.billed else None
    result = None
    if last_resort is not None:
        result = {
            "content": last_resort,
            "finish_reason": "stop",
            "provider_finish_reason": LAST_RESORT_MODEL,
            "provider": "promptq",
            "model": LAST_RESORT_MODEL,
            "cached": False,
            "degraded": True,
        }
    elif response is not None and final is not None:
        result = {
            "content": response.content,
            "finish_reason": response.finish_reason,
            "provider_finish_reason": response.provider_finish_reason,
            "provider": final.provider,
            "model": response.model,
            "cached": final.cached,
        }
    outcome = Outcome(
        status=JobStatus.SUCCEEDED if result is not None else JobStatus.FAILED,
        result=result,
        error=error,
        input_tokens=charged.input_tokens if charged else 0,
        output_tokens=charged.output_tokens if charged else 0,
        cost_usd=charged.cost_usd if charged else Decimal(0),
    )
    settings = get_settings()
    fractions = settings.budget_alert_fractions

    def commit() -> list[tuple[str, int]] | None:
        if record is not None and not claim.watched:
            with one_statement() as session:
                if finish_unwatched(session, claim, outcome, record, fractions):
                    return []
        with transaction() as session:
            finished = finish_job(session, claim, outcome, alert_fractions=fractions)
            if finished is None:
                return None
            if record is not None:
                record_attempt(session, job_id=claim.job_id, user_id=claim.user_id, attempt=record)
            alerts = enqueue_budget_alerts(session, finished.alerts)
            # A job cancelled while it ran announced itself when it was cancelled.
            if finished.was != JobStatus.RUNNING:
                return alerts
            return alerts + enqueue_events_for(session, [finished.job], settings.public_base_url)

    # The provider's answer is in hand: a database blip must not cost a second call.
    webhooks = _while_leased(claim, commit, "finish")
    if webhooks is None:
        log.warning("job.lease_lost")
        return
    get_final_announcer().add(str(claim.job_id))
    outbox.publish_webhooks(webhooks)
    if record is not None:
        metrics.record_attempt(record.model, record.outcome, _billed(record))
    if error is not None or result is not None:
        # Not the settlement of a job cancelled while it ran: the API finished that one.
        model = final.model if final is not None else claim.model
        metrics.jobs_finished.labels(outcome.status, model).inc()
        if last_resort is not None:
            metrics.jobs_degraded.labels(claim.model).inc()
        metrics.job_end_to_end.labels(claim.priority, outcome.status).observe(
            claim.age_s + time.monotonic() - taken_at
        )
    log.info("job.finished", status=outcome.status)


def _record(attempt: AttemptResult) -> AttemptRecord:
    response, error = attempt.response, attempt.error
    outcome = "cached" if attempt.cached else ("succeeded" if error is None else "failed")
    if error is not None and error.code == "circuit_open":
        outcome = "skipped"
    return AttemptRecord(
        provider=attempt.provider,
        model=attempt.model,
        outcome=outcome,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
        latency_ms=attempt.latency_ms,
        input_tokens=response.input_tokens if response else 0,
        output_tokens=response.output_tokens if response else 0,
        cost_usd=attempt.cost_usd,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        backoff_ms=attempt.backoff_ms,
        cached=attempt.cached,
        similarity=attempt.similarity,
    )

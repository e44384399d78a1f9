"""The path of one job through its model chain: cache -> breaker -> permit -> rate limit ->
provider -> classify -> retry, back off, fall back or requeue.

It touches no database. What it must persist goes through an AttemptSink the task provides, so
the task alone opens transactions, and no connection is held while a model answers; a job that
asked for the semantic cache brings its SemanticCache the same way. A job that
asked to be streamed gets a TokenSink too: its calls are streamed into it, and it hears when
the text so far is void because another attempt follows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

import structlog

from shared.cost_estimate import estimated_tokens, prompt_tokens_upper_bound
from shared.pricing import price_for
from worker import response_cache
from worker.attempt import AttemptResult, run_attempt
from worker.output_validation import validate_output
from worker.policies import Policies
from worker.providers.base import (
    FinalProviderError,
    InvalidOutputError,
    ProviderError,
    ProviderRequest,
    ProviderResponse,
    RateLimitedError,
    RetryableProviderError,
)
from worker.resilience.backoff import compute_backoff

__all__ = [
    "AttemptResult",
    "JobSpec",
    "Outcome",
    "SemanticCache",
    "SemanticHit",
    "TokenSink",
    "run_attempt",
    "run_chain",
]


class CircuitOpenError(RetryableProviderError):
    code = "circuit_open"


class MaxCostExceededError(FinalProviderError):
    code = "max_cost_exceeded"


class AttemptSink(Protocol):
    def save(self, attempt: AttemptResult) -> bool:
        """Persist a non-final attempt (and its charge); False when the job's lease was lost."""
        ...

    def cancelled(self) -> bool:
        """Whether the user cancelled the job meanwhile."""
        ...


class TokenSink(Protocol):
    def text(self, piece: str) -> None:
        """A piece of the answer, as the model sends it."""
        ...

    def retry(self, model: str, error: ProviderError) -> None:
        """The text so far is void: `model` is tried again after `error`."""
        ...

    def fallback(self, failed: str, next_model: str, error: ProviderError) -> None:
        """The text so far is void: `next_model` answers instead of `failed`."""
        ...


@dataclass(frozen=True)
class SemanticHit:
    response: ProviderResponse
    similarity: float


class SemanticCache(Protocol):
    def lookup(self, request: ProviderRequest) -> SemanticHit | None:
        """An earlier answer to a request like this one (same model and parameters)."""
        ...

    def store(self, request: ProviderRequest, response: ProviderResponse) -> None:
        """Keep `response` for later requests like this one."""
        ...


@dataclass(frozen=True)
class JobSpec:
    models: tuple[str, ...]
    request: ProviderRequest
    response_format: dict[str, Any] | None
    cache: bool
    cost_cap: Decimal | None
    spent: Decimal
    semantic: SemanticCache | None = None
    # The user the job is run for: the exact cache's entries are theirs alone.
    owner: str = ""


@dataclass(frozen=True)
class Outcome:
    """`final` is the attempt to commit with the job's final state (None when nothing ran);
    `requeue_at` set means the job goes back to the queue instead; `abandoned` means stop
    writing (lease lost or cancelled)."""

    final: AttemptResult | None = None
    error: ProviderError | None = None
    requeue_at: datetime | None = None
    abandoned: bool = False


def _skipped(model: str, error: ProviderError) -> AttemptResult:
    now = datetime.now(UTC)
    return AttemptResult(price_for(model).provider, model, None, error, 0, Decimal(0), now, now)


def run_chain(
    spec: JobSpec,
    policies: Policies,
    sink: AttemptSink,
    sleep: Callable[[float], None] = time.sleep,
    tokens_to: TokenSink | None = None,
) -> Outcome:
    """Run the job to an outcome: success on some model, failure after the chain, or requeue;
    with `tokens_to`, every call is streamed into it."""
    settings = policies.settings
    contents = [m.content for m in spec.request.messages]
    prompt_bound = prompt_tokens_upper_bound(contents)
    tokens = estimated_tokens(contents, spec.request.max_tokens)
    spent = spec.spent
    last: AttemptResult | None = None
    pending: AttemptResult | None = None
    # The claim has just proved the job running; a cancellation is looked for before each
    # later attempt, not before the first.
    first = True

    def flush() -> bool:
        nonlocal pending
        saved = pending is None or sink.save(pending)
        pending = None
        return saved

    on_text = tokens_to.text if tokens_to is not None else None
    for model in spec.models:
        if tokens_to is not None and last is not None and last.error is not None:
            tokens_to.fallback(last.model, model, last.error)
        price = price_for(model)
        key = f"{price.provider}:{model}"
        request = replace(spec.request, model=model)
        backoff_ms = 0
        for number in range(1, settings.max_attempts_per_model + 1):
            # The worker's lines from here on name the model and attempt they are about.
            structlog.contextvars.bind_contextvars(model=model, attempt=number)
            if not flush() or (not first and sink.cancelled()):
                return Outcome(abandoned=True)
            first = False
            worst = price.cost(prompt_bound, request.max_tokens)
            if spec.cost_cap is not None and spent + worst > spec.cost_cap:
                # `last` is already saved: the failure is committed without a further attempt.
                return Outcome(
                    error=MaxCostExceededError(
                        f"Another call to {model} could cost up to ${worst} and the job's cap "
                        f"(${spec.cost_cap}) has ${spec.cost_cap - spent} left."
                    ),
                )
            cache_key = None
            if response_cache.cacheable(request, spec.cache):
                cache_key = response_cache.cache_key(spec.owner, request, spec.response_format)
                hit = response_cache.lookup(policies.redis, cache_key)
                if hit is not None:
                    now = datetime.now(UTC)
                    cached = AttemptResult(
                        price.provider, model, hit, None, 0, Decimal(0), now, now, cached=True
                    )
                    return Outcome(final=cached)
            if spec.semantic is not None and number == 1:
                found = _semantic_hit(spec.semantic, request, price.provider)
                if found is not None:
                    return Outcome(final=found)
            permit = policies.breaker.allow(key)
            if permit is None:
                pending = _skipped(model, CircuitOpenError(f"The circuit for {key} is open."))
                last = pending
                break
            wait = _wait_for_capacity(policies, key, model, price.provider, tokens, sleep)
            if wait is not None:
                policies.breaker.record(permit, success=True)
                return Outcome(requeue_at=datetime.now(UTC) + timedelta(seconds=wait))
            slot = policies.permits.acquire_blocking(
                key,
                policies.model_cap(model),
                settings.permit_ttl_s,
                timeout=settings.permit_wait_s,
                keep_alive=True,
            )
            if slot is None:
                policies.breaker.record(permit, success=True)
                return Outcome(requeue_at=datetime.now(UTC) + timedelta(seconds=1))
            try:
                result = run_attempt(request, on_text)
            except BaseException:
                policies.permits.release(key, slot)
                raise
            # Only provider-side trouble counts against the breaker; a 400 is a healthy answer.
            policies.after_call(
                key,
                slot,
                permit,
                success=not _is_fault(result.error),
                answered_ms=result.latency_ms if result.error is None else None,
            )
            result = replace(result, backoff_ms=backoff_ms)
            if result.response is not None:
                try:
                    validate_output(result.response.content, spec.response_format)
                except InvalidOutputError as exc:
                    result = replace(result, error=exc)
            spent += result.cost_usd
            last = result
            if result.error is None:
                if cache_key is not None and result.response is not None:
                    response_cache.store(
                        policies.redis,
                        cache_key,
                        result.response,
                        settings.response_cache_ttl_s,
                    )
                if spec.semantic is not None and result.response is not None:
                    spec.semantic.store(request, result.response)
                return Outcome(final=result)
            if not _retry_same_model(result.error) or number == settings.max_attempts_per_model:
                pending = result
                break
            delay = compute_backoff(
                number,
                base=settings.retry_base_s,
                cap=settings.retry_cap_s,
                retry_after=_retry_after(result.error),
            )
            pending = result
            if tokens_to is not None:
                tokens_to.retry(model, result.error)
            if delay > settings.retry_inline_max_s:
                if not flush():
                    return Outcome(abandoned=True)
                return Outcome(requeue_at=datetime.now(UTC) + timedelta(seconds=delay))
            sleep(delay)
            backoff_ms = round(delay * 1000)
    # The chain is spent: its last attempt, still unsaved, is committed with the failure.
    return Outcome(final=last, error=last.error if last else None)


def _semantic_hit(
    semantic: SemanticCache, request: ProviderRequest, provider: str
) -> AttemptResult | None:
    """The semantic cache's answer as an attempt of its own: no call, no cost, its similarity
    and the lookup's time recorded."""
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    hit = semantic.lookup(request)
    if hit is None:
        return None
    return AttemptResult(
        provider,
        request.model,
        hit.response,
        None,
        round((time.perf_counter() - clock) * 1000),
        Decimal(0),
        started_at,
        datetime.now(UTC),
        cached=True,
        similarity=hit.similarity,
    )


def _wait_for_capacity(
    policies: Policies,
    key: str,
    model: str,
    provider: str,
    tokens: int,
    sleep: Callable[[float], None],
) -> float | None:
    """Wait out the provider's shared RPM/TPM budget; a wait too long to hold a worker slot for
    comes back as the delay to requeue with. Waiting is not an attempt."""
    while (wait := policies.rate_limits.try_acquire(provider, tokens)) > 0:
        if wait > policies.settings.retry_inline_max_s:
            return wait
        sleep(wait)
    return None


def _is_fault(error: ProviderError | None) -> bool:
    return error is not None and error.retryable


def _retry_same_model(error: ProviderError) -> bool:
    # An invalid reply is worth another try of the same model; other final errors are not.
    return error.retryable or isinstance(error, InvalidOutputError)


def _retry_after(error: ProviderError) -> float | None:
    return error.retry_after_s if isinstance(error, RateLimitedError) else None

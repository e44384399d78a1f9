"""One call to one model: timing, classification and cost. Touches no database."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from shared.logging import get_logger
from shared.pricing import price_for
from worker import metrics
from worker.providers.base import (
    ProviderError,
    ProviderRequest,
    ProviderResponse,
    ServerError,
    TextSink,
)
from worker.providers.registry import provider_for

log = get_logger(__name__)


@dataclass(frozen=True)
class AttemptResult:
    provider: str
    model: str
    response: ProviderResponse | None
    error: ProviderError | None
    latency_ms: int
    cost_usd: Decimal
    started_at: datetime
    finished_at: datetime
    backoff_ms: int = 0
    cached: bool = False
    # A semantic cache hit's cosine similarity to the prompt its answer was stored for.
    similarity: float | None = None


def run_attempt(request: ProviderRequest, on_text: TextSink | None = None) -> AttemptResult:
    """Call the model once (streamed when `on_text` takes the text); a provider failure comes
    back as `error`, never as an exception."""
    provider = provider_for(request.model)
    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    response: ProviderResponse | None = None
    error: ProviderError | None = None
    try:
        response = provider.complete(request, on_text)
    except ProviderError as exc:
        error = exc
    except Exception as exc:
        # An adapter bug must not strand the job in `running`; record it as a server error.
        log.exception("provider.unexpected_error", model=request.model)
        error = ServerError(f"Unexpected {type(exc).__name__} while calling the provider.")
    seconds = time.perf_counter() - clock
    latency_ms = round(seconds * 1000)
    metrics.record_provider_call(
        provider.name,
        request.model,
        seconds,
        error.code if error is not None else None,
        response.input_tokens if response is not None else 0,
        response.output_tokens if response is not None else 0,
    )
    cost = Decimal(0)
    if response is not None:
        cost = price_for(request.model).cost(response.input_tokens, response.output_tokens)
    return AttemptResult(
        provider=provider.name,
        model=request.model,
        response=response,
        error=error,
        latency_ms=latency_ms,
        cost_usd=cost,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )

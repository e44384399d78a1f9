"""What a worker process exports on /metrics (its own port, WORKER_METRICS_PORT).

Provider calls carry OpenTelemetry's GenAI client metrics under the names Prometheus gives them
(`gen_ai.client.token.usage` -> `gen_ai_client_token_usage`, with the spec's advised buckets);
everything promptq adds is `promptq_*`. No label holds a user or key id: per-user cost is in
PostgreSQL (`GET /v1/usage`), and ids would make the series unbounded.

Each worker process serves its own registry (a Celery worker with the threads pool is one
process), so nothing here needs prometheus_client's multiprocess mode.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from shared.logging import get_logger
from shared.pricing import PRICE_TABLE
from shared.settings import Settings

log = get_logger(__name__)

GEN_AI_OPERATION = "chat"
_GEN_AI_LABELS = ("gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model")

# The buckets OpenTelemetry's GenAI semantic conventions advise for these two histograms.
TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))
DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
JOB_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800)

gen_ai_token_usage = Histogram(
    "gen_ai_client_token_usage",
    "Tokens used per provider call (OpenTelemetry gen_ai.client.token.usage).",
    [*_GEN_AI_LABELS, "gen_ai_token_type"],
    buckets=TOKEN_BUCKETS,
)
gen_ai_operation_duration = Histogram(
    "gen_ai_client_operation_duration_seconds",
    "Duration of provider calls (OpenTelemetry gen_ai.client.operation.duration); "
    "error_type is empty on success.",
    [*_GEN_AI_LABELS, "error_type"],
    buckets=DURATION_BUCKETS,
)
jobs_finished = Counter(
    "promptq_jobs_finished_total", "Jobs that reached a final state.", ["status", "model"]
)
jobs_degraded = Counter(
    "promptq_jobs_degraded_total",
    "Jobs that succeeded with their fallback_response after every model of their chain failed "
    "(counted among the succeeded ones too).",
    ["model"],
)
job_queue_wait = Histogram(
    "promptq_job_queue_wait_seconds",
    "From acceptance to the first claim (a requeued job's later claims are not counted).",
    ["priority"],
    buckets=JOB_LATENCY_BUCKETS,
)
job_end_to_end = Histogram(
    "promptq_job_end_to_end_seconds",
    "From acceptance to the final state.",
    ["priority", "status"],
    buckets=JOB_LATENCY_BUCKETS,
)
attempts = Counter(
    "promptq_attempts_total",
    "Attempts recorded, by model and outcome (succeeded, failed, cached, skipped).",
    ["model", "outcome"],
)
cost_usd = Counter("promptq_cost_usd_total", "US dollars billed, by model.", ["model"])
webhook_deliveries = Counter(
    "promptq_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, failed, refused, ...).",
    ["outcome"],
)
webhook_delivery_duration = Histogram(
    "promptq_webhook_delivery_duration_seconds",
    "Duration of webhook delivery attempts.",
    ["outcome"],
    buckets=JOB_LATENCY_BUCKETS,
)
sweeper_actions = Counter(
    "promptq_sweeper_actions_total",
    "Jobs the sweeper acted on (lease_expired_requeued, failed_worker_lost, republished).",
    ["action"],
)
jobs_dispatched = Counter(
    "promptq_jobs_dispatched_total",
    "Jobs the workers' dispatchers took from the backlog into the broker's window.",
)
dispatcher_actions = Counter(
    "promptq_dispatcher_actions_total",
    "Webhook messages the dispatcher acted on (published, handed_back).",
    ["action"],
)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


def record_provider_call(
    provider: str,
    model: str,
    seconds: float,
    error_type: str | None,
    input_tokens: int,
    output_tokens: int,
) -> None:
    """One provider call: its duration, and on success its token usage."""
    gen_ai_operation_duration.labels(GEN_AI_OPERATION, provider, model, error_type or "").observe(
        seconds
    )
    if error_type is None:
        gen_ai_token_usage.labels(GEN_AI_OPERATION, provider, model, "input").observe(input_tokens)
        gen_ai_token_usage.labels(GEN_AI_OPERATION, provider, model, "output").observe(
            output_tokens
        )


def record_attempt(model: str, outcome: str, billed_usd: Decimal) -> None:
    attempts.labels(model, outcome).inc()
    if billed_usd:
        cost_usd.labels(model).inc(float(billed_usd))


class _SharedStateCollector(Collector):
    """Breaker state and permits in use per model, read from Redis at scrape time: both are
    shared by every worker, so any worker's scrape tells the whole fleet's."""

    def collect(self) -> Iterable[Metric]:
        from worker.policies import get_policies

        policies = get_policies()
        breaker = GaugeMetricFamily(
            "promptq_breaker_state",
            "Circuit breaker state per model: 0 closed, 1 half open, 2 open.",
            labels=["provider", "model"],
        )
        permits = GaugeMetricFamily(
            "promptq_permits_in_use",
            "Live concurrency permits per model, across all workers.",
            labels=["provider", "model"],
        )
        try:
            for model, price in PRICE_TABLE.items():
                key = f"{price.provider}:{model}"
                state = policies.breaker.state(key)
                breaker.add_metric([price.provider, model], BREAKER_STATE_VALUES[state.value])
                permits.add_metric([price.provider, model], policies.permits.in_use(key))
        except Exception as exc:
            # Redis away: the scrape still answers with the process's own metrics.
            log.warning("metrics.shared_state_unavailable", error=repr(exc))
            return
        yield breaker
        yield permits


_serving = threading.Lock()
_served: list[int] = []


def serve(settings: Settings) -> None:
    """Serve this process's /metrics on `worker_metrics_port` (once; 0 serves nothing). A taken
    port is logged and skipped: metrics must never stop a worker from working."""
    port = settings.worker_metrics_port
    with _serving:
        if port == 0 or _served:
            return
        REGISTRY.register(_SharedStateCollector())
        try:
            start_http_server(port)
        except OSError as exc:
            log.error("metrics.port_unavailable", port=port, error=str(exc))
            return
        _served.append(port)
    log.info("metrics.serving", port=port)

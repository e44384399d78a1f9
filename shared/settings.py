"""One settings object for every process, read from the environment (and `.env`) once."""

from __future__ import annotations

import ipaddress
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Self

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from shared.pricing import is_known_model

# Standard Webhooks' recommended schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h,
# 20 h and 24 h after the previous attempt (about three days in all).
# The bounds of a batch's completion window: a minute to a week.
MIN_BATCH_WINDOW_S = 60
MAX_BATCH_WINDOW_S = 7 * 86_400
DEFAULT_WEBHOOK_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


def normalize_database_url(url: str) -> str:
    """Point plain `postgresql://` URLs at the psycopg 3 driver SQLAlchemy should use."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def parse_nameserver(value: str) -> tuple[str, int]:
    """Parse "1.1.1.1", "1.1.1.1:5353", "::1" or "[::1]:5353" to (ip, port); port 53 by default."""
    value = value.strip()
    host, port_text = value, ""
    if value.startswith("["):
        host, closed, rest = value[1:].partition("]")
        if not closed or (rest and not rest.startswith(":")):
            raise ValueError(f"webhook_nameserver {value!r} is not host:port")
        port_text = rest[1:]
    elif value.count(":") == 1:
        host, _, port_text = value.partition(":")
    try:
        ipaddress.ip_address(host)
        port = int(port_text) if port_text else 53
    except ValueError:
        raise ValueError(
            f"webhook_nameserver {value!r} must be an IP address with an optional port, "
            "e.g. 10.0.0.2:53 or [fd00::2]:53"
        ) from None
    if not 0 < port < 65536:
        raise ValueError(f"webhook_nameserver {value!r} has an invalid port")
    return host, port


class Settings(BaseSettings):
    """Everything configurable about promptq; `.env.example` documents each variable."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/promptq"
    redis_url: str = "redis://127.0.0.1:6379/0"

    # `make dev` and the tests point both base URLs at the provider simulator (sim/).
    openai_api_key: str = ""
    openai_base_url: str = "https://api.openai.com/v1"
    anthropic_api_key: str = ""
    anthropic_base_url: str = "https://api.anthropic.com"
    provider_timeout_s: float = Field(default=60.0, gt=0)

    # Celery: see worker/celery_app.py for why each of these matters.
    worker_concurrency: int = Field(default=16, ge=1)
    worker_prefetch_multiplier: int = Field(default=1, ge=1)
    worker_task_events: bool = False
    broker_max_connections: int = Field(default=64, ge=10)
    broker_visibility_timeout_s: int = Field(default=3600, ge=60)
    # A running job's lease: renewed every third of it while the call lasts (so a call may take
    # far longer than the lease), and what a killed worker's jobs wait before another takes them.
    job_lease_s: int = Field(default=30, ge=5)

    # Fair dispatch (shared/repositories/job_dispatch.py): PostgreSQL holds the backlog, and at
    # most this many jobs per live worker slot are dispatched (published) and unfinished at once.
    # 0 turns the window off: admission publishes every job at once, in arrival order (the design
    # before fair dispatch, kept for comparison and as an escape hatch); turns and caps then apply
    # only to jobs that come back to the backlog.
    dispatch_window_per_slot: float = Field(default=2.0, ge=0)
    # Each job worker's dispatcher fills the window when a job of its finishes, and at least
    # this often.
    dispatch_interval_s: float = Field(default=1.0, gt=0)

    max_request_bytes: int = Field(default=1024 * 1024, ge=1024)
    # A batch of 10,000 jobs does not fit in the per-request limit above.
    max_batch_request_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    max_batch_jobs: int = Field(default=10_000, ge=1)
    # The OpenAI-compatible Files API (/openai/v1/files): the largest upload, and the most
    # request lines a batch input file may hold (OpenAI's own limits).
    max_file_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    max_file_lines: int = Field(default=50_000, ge=1)
    # A batch not finished this long after its creation expires (its queued jobs are
    # cancelled); a batch may ask for its own window within the same bounds.
    batch_completion_window_s: int = Field(
        default=86_400, ge=MIN_BATCH_WINDOW_S, le=MAX_BATCH_WINDOW_S
    )
    # How often beat settles batches whose jobs are all final, and expires overdue ones.
    batch_settle_interval_s: float = Field(default=2.0, gt=0)
    default_max_tokens: int = Field(default=1024, ge=1)

    # Admission control. An empty admin key disables the admin API.
    admin_api_key: str = ""
    default_rpm_limit: int = Field(default=600, ge=1)
    default_tpm_limit: int = Field(default=2_000_000, ge=1)
    # Above this many jobs waiting (in PostgreSQL's backlog and the broker), submissions get
    # 503 + Retry-After. The backlog's count is refreshed every sweep and counts admissions
    # since, so the ceiling is approximate by what a sweep interval dispatches.
    max_queue_depth: int = Field(default=100_000, ge=1)
    # Attempts a job may be billed for; its budget reservation covers this many worst cases.
    max_billed_attempts: int = Field(default=3, ge=1)
    webhook_secret_rotation_grace_s: int = Field(default=24 * 3600, ge=0)
    # Budget alerts (shared/repositories/budget_alerts.py): a `budget.threshold` webhook event
    # when a user's daily or monthly spend crosses one of these fractions of the budget, once
    # per period and fraction. Empty: no alerts.
    budget_alert_fractions: Annotated[list[Decimal], NoDecode] = Field(
        default_factory=lambda: [Decimal("0.8"), Decimal("1.0")], max_length=10
    )

    # Retry and fallback (worker/pipeline.py).
    max_attempts_per_model: int = Field(default=3, ge=1)
    retry_base_s: float = Field(default=0.5, gt=0)
    retry_cap_s: float = Field(default=20.0, gt=0)
    # A wait longer than this puts the job back (queued, not before a time) instead of holding
    # a worker slot while it sleeps.
    retry_inline_max_s: float = Field(default=10.0, ge=0)

    # Circuit breaker per provider+model, shared by all workers in Redis.
    breaker_window_s: float = Field(default=30.0, gt=0)
    breaker_min_calls: int = Field(default=10, ge=1)
    breaker_failure_threshold: float = Field(default=0.5, gt=0, le=1)
    breaker_cooldown_s: float = Field(default=30.0, gt=0)
    breaker_half_open_probes: int = Field(default=1, ge=1)

    # Named routing policies for `model: "auto"`: policy name -> candidate models (JSON), e.g.
    # {"cheap": ["gpt-4o-mini", "claude-3-5-haiku-latest"]}; plain "auto" takes every model.
    routing_policies: dict[str, list[str]] = Field(default_factory=dict)

    # In-flight call caps shared by all workers; a permit expires so a dead worker's comes back.
    model_concurrency_cap: int = Field(default=64, ge=1)
    model_concurrency_caps: dict[str, int] = Field(default_factory=dict)
    permit_wait_s: float = Field(default=30.0, ge=0)
    # A held permit is renewed every third of this; a dead worker's permits lapse within it.
    permit_ttl_s: float = Field(default=20.0, ge=1)
    # Requests and tokens per minute per provider, shared by all workers; unset = unlimited.
    openai_rpm: int | None = Field(default=None, ge=1)
    openai_tpm: int | None = Field(default=None, ge=1)
    anthropic_rpm: int | None = Field(default=None, ge=1)
    anthropic_tpm: int | None = Field(default=None, ge=1)

    response_cache_ttl_s: int = Field(default=3600, ge=1)
    # Semantic cache (jobs with cache "semantic", the promptq[semantic] extra): how long an
    # answer is kept; how many entries of a scope, ranked by sign code, a lookup scores exactly
    # (more finds a paraphrase among more look-alikes, at more time per lookup); and how many
    # sign codes a worker process keeps in memory, about 50 bytes each (worker/semantic/index.py).
    semantic_cache_ttl_s: int = Field(default=3600, ge=1)
    semantic_cache_candidates: int = Field(default=16, ge=1, le=256)
    semantic_cache_index_entries: int = Field(default=1_000_000, ge=1000)

    # Input safety (README: "Input safety"). Phone numbers not written in international form
    # are read as numbers of this region (ISO 3166 alpha-2).
    pii_phone_region: str = Field(default="US", pattern=r"^[A-Z]{2}$")
    # A Fernet key (`python -c "from cryptography.fernet import Fernet;
    # print(Fernet.generate_key().decode())"`) that encrypts a job's placeholder mapping while
    # it waits to be restored, when its owner does not allow keeping original prompts. Empty:
    # such jobs cannot ask for restore_pii.
    pii_vault_key: str = ""
    # A screened prompt whose injection score reaches this is flagged, or rejected.
    injection_threshold: float = Field(default=0.5, gt=0, le=1)

    # Live token streams of jobs submitted with "stream": true (shared/token_streams.py). Each
    # job's Redis stream keeps about this many entries (a late client of a longer answer misses
    # its start; the result has all of it) and lives this long after its last entry.
    token_stream_maxlen: int = Field(default=10_000, ge=100)
    token_stream_ttl_s: int = Field(default=600, ge=10)
    # The relay (GET /v1/jobs/<id>/stream) waits this long per Redis read, under the Redis
    # client's 2 s socket timeout; it reads the job this often when the stream says nothing (a
    # cancellation, or a run's end whose entry was lost); and it sends a comment after this long
    # without an event, so proxies keep an idle stream open.
    token_stream_block_ms: int = Field(default=1000, ge=10, le=1500)
    token_stream_check_s: float = Field(default=5.0, gt=0)
    token_stream_keepalive_s: float = Field(default=15.0, gt=0)

    # Sweeper (Celery beat): republish dispatched jobs whose message went missing (their stamp
    # older than the grace and than the oldest message still waiting), and return jobs
    # whose worker's lease expired, up to max_deliveries, then fail them as worker_lost.
    sweep_interval_s: float = Field(default=10.0, gt=0)
    requeue_grace_s: float = Field(default=30.0, ge=0)
    max_deliveries: int = Field(default=5, ge=1)
    # SIGTERM: in-flight calls get this long to finish before the rest go back to the queue.
    shutdown_grace_s: float = Field(default=60.0, ge=0)

    # Webhook delivery (worker/tasks/deliver_webhook.py). The schedule is the wait before each
    # attempt; its length is the number of attempts. Each wait is jittered by +-jitter.
    webhook_schedule_s: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(DEFAULT_WEBHOOK_SCHEDULE_S), min_length=1
    )
    webhook_jitter: float = Field(default=0.2, ge=0, lt=1)
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    # How long a delivery may go unreported before another worker takes it over: the timeout,
    # DNS and two short transactions must fit (a killed worker's message waits this long).
    webhook_lease_s: float = Field(default=60.0, gt=0)
    # An endpoint whose every delivery failed for this long is disabled (and says why).
    webhook_disable_after_s: float = Field(default=5 * 24 * 3600, gt=0)
    # Networks webhook targets may be in although private (e.g. 127.0.0.0/8 for `make dev`).
    # Everything loopback, private, link-local, multicast or reserved is refused otherwise.
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Resolve webhook hosts with this DNS server (host:port) instead of the system resolver.
    webhook_nameserver: str | None = None
    # How often beat publishes deliveries that are due (retries, and any whose publish was lost).
    webhook_dispatch_interval_s: float = Field(default=2.0, gt=0)
    # A published delivery no worker started within this long is published again.
    webhook_redispatch_s: float = Field(default=300.0, gt=0)
    # The base URL clients reach the API at; webhooks' status_url is built from it.
    public_base_url: str = "http://localhost:8000"

    # Connections each process keeps open. Beyond them, overflow connections are opened and
    # closed again at every burst (each a new backend to fork); 0 makes a burst wait instead.
    # How long an API process trusts a key it looked up: the bound on how late a revocation,
    # an expiry change or new limits take effect in the other processes.
    key_cache_s: float = Field(default=5.0, ge=0, le=5)
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=0, ge=0)
    log_level: str = "INFO"
    log_json: bool = True
    # Prompts and answers stay out of log lines unless an operator opts in.
    log_prompts: bool = False

    # Observability. Each worker process serves /metrics on a port of its own (0: none); the
    # API's gunicorn processes share counters through files in a directory gunicorn's
    # configuration (api/gunicorn_conf.py) empties at start.
    worker_metrics_port: int = Field(default=9101, ge=0, lt=65536)
    prometheus_multiproc_dir: str = ""
    # /ready fails when no job worker's heartbeat was seen within this long.
    ready_worker_heartbeat_s: float = Field(default=30.0, gt=0)
    ready_check_timeout_s: float = Field(default=1.0, gt=0)

    # Flower: "user:password" for its basic auth (empty: Flower refuses to start, see
    # worker/flower_config.py), and the file its persistent state lives in.
    flower_basic_auth: str = ""
    flower_db: str = ".data/flower.db"
    # Celery beat's schedule file.
    beat_schedule_file: str = ".data/celerybeat-schedule"

    @field_validator(
        "webhook_schedule_s", "webhook_allowed_networks", "budget_alert_fractions", mode="before"
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # Environment variables give "0,5,300"; code and tests may pass a list.
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            # Strict: 127.0.0.1/8 (host bits set) is a typo for 127.0.0.0/8, not a network.
            ipaddress.ip_network(network)
        return value

    @field_validator("routing_policies")
    @classmethod
    def _known_candidates(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, models in value.items():
            unknown = [m for m in models if not is_known_model(m)]
            if not models or unknown:
                raise ValueError(
                    f"routing policy {name!r} needs one or more catalogue models (unknown: "
                    f"{unknown})"
                )
        return value

    @field_validator("budget_alert_fractions")
    @classmethod
    def _fractions(cls, value: list[Decimal]) -> list[Decimal]:
        # Four decimal places: what budget_alerts.fraction keeps, so the key is exact.
        if any(not 0 < f <= 1 or f != f.quantize(Decimal("0.0001")) for f in value):
            raise ValueError("budget_alert_fractions must be in (0, 1], at most 4 decimals")
        return sorted(set(value))

    @field_validator("webhook_nameserver")
    @classmethod
    def _nameserver(cls, value: str | None) -> str | None:
        if value:
            parse_nameserver(value)
        return value

    @field_validator("webhook_schedule_s")
    @classmethod
    def _non_negative_waits(cls, value: list[float]) -> list[float]:
        if any(wait < 0 for wait in value):
            raise ValueError("webhook_schedule_s waits must be >= 0")
        return value

    @model_validator(mode="after")
    def _lease_outlasts_timeout(self) -> Self:
        if self.webhook_lease_s <= self.webhook_timeout_s:
            raise ValueError("webhook_lease_s must be longer than webhook_timeout_s")
        return self

    @model_validator(mode="after")
    def _permits_lapse_within_a_lease(self) -> Self:
        # A dead worker's jobs come back after a lease; its permits must not block them longer.
        if self.permit_ttl_s > self.job_lease_s:
            raise ValueError("permit_ttl_s must not be longer than job_lease_s")
        return self

    @field_validator("pii_vault_key")
    @classmethod
    def _fernet_key(cls, value: str) -> str:
        if value:
            from cryptography.fernet import Fernet

            try:
                Fernet(value.encode())
            except ValueError:
                raise ValueError(
                    "pii_vault_key must be a Fernet key: 32 bytes, url-safe base64"
                ) from None
        return value

    @field_validator("database_url")
    @classmethod
    def _psycopg_driver(cls, value: str) -> str:
        return normalize_database_url(value)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, built on first use (never at import time)."""
    return Settings()

"""The model chain on real Redis policies and the simulator: fallback, breaker skips, retries,
requeue on a long Retry-After, output validation, the per-job cost cap, the response cache and
the semantic cache.

The sink records what the task would persist; it is promptq's own interface, not a stand-in
for a library."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import redis
import requests

from shared.settings import Settings
from tests.conftest import Account, Services
from worker.attempt import AttemptResult
from worker.pipeline import JobSpec, Outcome, run_chain
from worker.policies import Policies
from worker.providers.base import Message, ProviderError, ProviderRequest
from worker.resilience.circuit_breaker import BreakerPolicy, CircuitBreaker
from worker.resilience.concurrency import ConcurrencyLimiter
from worker.resilience.rate_limit import ProviderLimits, ProviderRateLimiter
from worker.semantic_cache import JobSemanticCache


class RecordingSink:
    def __init__(self) -> None:
        self.saved: list[AttemptResult] = []
        self.cancel = False
        self.cancel_once_saved = False
        self.asked = 0

    def save(self, attempt: AttemptResult) -> bool:
        self.saved.append(attempt)
        self.cancel = self.cancel or self.cancel_once_saved
        return True

    def cancelled(self) -> bool:
        self.asked += 1
        return self.cancel


def _policies(services: Services, **overrides: object) -> Policies:
    settings = Settings(
        **{
            "max_attempts_per_model": 2,
            "retry_base_s": 0.01,
            "retry_cap_s": 0.05,
            "retry_inline_max_s": 1.0,
            "provider_timeout_s": 2.0,
            **overrides,
        }
    )
    client = redis.Redis.from_url(services.redis_url)
    return Policies(
        settings=settings,
        redis=client,
        breaker=CircuitBreaker(client, BreakerPolicy(min_calls=2, cooldown_s=30, window_s=30)),
        permits=ConcurrencyLimiter(client),
        rate_limits=ProviderRateLimiter(client, {"openai": ProviderLimits()}),
    )


def _spec(models: tuple[str, ...], **overrides: object) -> JobSpec:
    fields: dict[str, object] = {
        "models": models,
        "request": ProviderRequest(models[0], (Message("user", "hello"),), max_tokens=20),
        "response_format": None,
        "cache": False,
        "cost_cap": None,
        "spent": Decimal(0),
    }
    fields.update(overrides)
    return JobSpec(**fields)  # type: ignore[arg-type]


def _faults(sim: str, *rules: dict[str, object]) -> None:
    requests.put(f"{sim}/sim/faults", json={"rules": list(rules)}, timeout=5).raise_for_status()


def test_success_on_the_first_model(sim: str, clean: Services) -> None:
    """A healthy primary answers; nothing is left to persist before the final attempt."""
    sink = RecordingSink()
    outcome = run_chain(_spec(("gpt-4o-mini",)), _policies(clean), sink)
    assert outcome.error is None and outcome.final is not None
    assert outcome.final.response is not None and outcome.final.model == "gpt-4o-mini"
    assert sink.saved == []


def test_outage_retries_then_falls_back(sim: str, clean: Services) -> None:
    """A primary in outage is tried max_attempts times with backoff, then the fallback serves;
    the failed attempts are persisted before the final one."""
    _faults(sim, {"model": "gpt-4o-mini", "kind": "server_error"})
    sink = RecordingSink()
    outcome = run_chain(
        _spec(("gpt-4o-mini", "claude-haiku-4-5")), _policies(clean), sink, sleep=lambda _: None
    )
    assert outcome.error is None and outcome.final is not None
    assert outcome.final.model == "claude-haiku-4-5"
    assert [(a.model, a.error.code if a.error else None) for a in sink.saved] == [
        ("gpt-4o-mini", "server_error"),
        ("gpt-4o-mini", "server_error"),
    ]
    assert outcome.final.backoff_ms == 0


def test_open_breaker_skips_straight_to_the_fallback(sim: str, clean: Services) -> None:
    """Once the breaker is open, the primary is not called: a skipped attempt, then fallback."""
    _faults(sim, {"model": "gpt-4o-mini", "kind": "server_error"})
    policies = _policies(clean)
    run_chain(
        _spec(("gpt-4o-mini", "claude-haiku-4-5")), policies, RecordingSink(), sleep=lambda _: None
    )
    before = requests.get(f"{sim}/sim/stats", timeout=5).json()["requests_by_model"]
    sink = RecordingSink()
    outcome = run_chain(_spec(("gpt-4o-mini", "claude-haiku-4-5")), policies, sink)
    after = requests.get(f"{sim}/sim/stats", timeout=5).json()["requests_by_model"]
    assert after["gpt-4o-mini"] == before["gpt-4o-mini"]
    assert [a.error.code for a in sink.saved if a.error] == ["circuit_open"]
    assert outcome.final is not None and outcome.final.model == "claude-haiku-4-5"


def test_long_retry_after_requeues_instead_of_sleeping(sim: str, clean: Services) -> None:
    """A 429 whose Retry-After exceeds the inline limit hands the job back with a not-before."""
    _faults(sim, {"model": "gpt-4o-mini", "kind": "rate_limit", "retry_after_s": 30})
    sink = RecordingSink()
    slept: list[float] = []
    outcome = run_chain(_spec(("gpt-4o-mini",)), _policies(clean), sink, sleep=slept.append)
    assert outcome.requeue_at is not None and outcome.final is None
    assert slept == []
    assert [a.error.code for a in sink.saved if a.error] == ["rate_limited"]


def test_invalid_output_is_retried_then_fails(sim: str, clean: Services) -> None:
    """A reply breaking the requested JSON format costs an attempt each time, then fails."""
    _faults(sim, {"model": "gpt-4o-mini", "kind": "schema_violation"})
    sink = RecordingSink()
    outcome = run_chain(
        _spec(("gpt-4o-mini",), response_format={"type": "json_object"}),
        _policies(clean),
        sink,
        sleep=lambda _: None,
    )
    assert outcome.error is not None and outcome.error.code == "invalid_output"
    assert outcome.final is not None and outcome.final.cost_usd > 0
    assert len(sink.saved) == 1 and sink.saved[0].cost_usd > 0


def test_cost_cap_stops_before_a_call_that_could_exceed_it(sim: str, clean: Services) -> None:
    """With too little of the job's cap left for a worst-case call, nothing more is called."""
    outcome = run_chain(
        _spec(("gpt-4o-mini",), cost_cap=Decimal("0.0000001")), _policies(clean), RecordingSink()
    )
    assert outcome.error is not None and outcome.error.code == "max_cost_exceeded"
    assert outcome.final is None
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["total_requests"] == 0


def test_cache_serves_a_repeat_at_zero_cost(sim: str, clean: Services) -> None:
    """A temperature-0 job that opted in is answered from the cache the second time."""
    spec = _spec(
        ("gpt-4o-mini",),
        cache=True,
        request=ProviderRequest("gpt-4o-mini", (Message("user", "hi"),), 20, temperature=0.0),
        owner="a-user",
    )
    policies = _policies(clean)
    first: Outcome = run_chain(spec, policies, RecordingSink())
    second = run_chain(spec, policies, RecordingSink())
    assert first.final is not None and not first.final.cached
    assert second.final is not None and second.final.cached
    assert second.final.cost_usd == 0
    assert second.final.response == first.final.response
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["total_requests"] == 1
    # Another user's identical job is not served the first user's entry.
    other = run_chain(replace(spec, owner="another-user"), policies, RecordingSink())
    assert other.final is not None and not other.final.cached
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["total_requests"] == 2


def test_semantic_cache_answers_a_paraphrase_as_a_free_attempt(
    sim: str, clean: Services, make_account: Callable[[str], Account]
) -> None:
    """A job that asked for the semantic cache stores its answer; a paraphrase of its prompt is
    then answered from it with no call: a cached attempt at zero cost, with its similarity."""
    user = uuid.UUID(make_account("semantic").user_id)
    policies = _policies(clean)

    def spec(prompt: str) -> JobSpec:
        request = ProviderRequest("gpt-4o-mini", (Message("user", prompt),), 20, temperature=0.0)
        cache = JobSemanticCache(user, None, 0.95, policies.settings)
        return _spec(("gpt-4o-mini",), request=request, semantic=cache)

    first = run_chain(spec("How do I reverse a list in Python?"), policies, RecordingSink())
    sink = RecordingSink()
    second = run_chain(spec("How can I reverse a Python list?"), policies, sink)
    assert first.final is not None and not first.final.cached and first.final.cost_usd > 0
    assert second.final is not None and second.final.cached
    assert second.final.cost_usd == 0 and second.final.error is None
    assert second.final.similarity is not None and 0.95 <= second.final.similarity < 1
    assert second.final.response == first.final.response
    assert sink.saved == []
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["total_requests"] == 1


def test_cancelled_job_is_abandoned_before_its_next_call(sim: str, clean: Services) -> None:
    """A job cancelled after a failed attempt makes no further call; a cancellation is not
    looked for before the first call (the claim has just found the job running)."""
    _faults(sim, {"model": "gpt-4o-mini", "kind": "server_error"})
    sink = RecordingSink()
    sink.cancel_once_saved = True
    assert run_chain(_spec(("gpt-4o-mini",)), _policies(clean), sink).abandoned
    assert len(sink.saved) == 1
    assert requests.get(f"{sim}/sim/stats", timeout=5).json()["total_requests"] == 1


def test_the_first_call_asks_nothing_about_cancellation(sim: str, clean: Services) -> None:
    """A job that succeeds at its first call costs no cancellation query."""
    sink = RecordingSink()
    outcome = run_chain(_spec(("gpt-4o-mini",)), _policies(clean), sink)
    assert outcome.final is not None and outcome.final.response is not None
    assert sink.asked == 0


class RecordingTokens:
    """The token sink the task gives a streamed job, recording what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []

    def text(self, piece: str) -> None:
        self.events.append(("token", piece))

    def retry(self, model: str, error: ProviderError) -> None:
        self.events.append(("retry", model, error.code))

    def fallback(self, failed: str, next_model: str, error: ProviderError) -> None:
        self.events.append(("fallback", failed, next_model, error.code))


def test_a_streamed_chain_says_when_its_text_is_void(sim: str, clean: Services) -> None:
    """Every call of a streamed job is streamed; a stream cut half way is retried, then the
    fallback answers, each restart announced; the outcome is the fallback's unstreamed answer."""
    spec = _spec(("gpt-4o-mini", "claude-haiku-4-5"))
    plain = run_chain(_spec(("claude-haiku-4-5",)), _policies(clean), RecordingSink())
    _faults(sim, {"model": "gpt-4o-mini", "kind": "cut"})
    tokens = RecordingTokens()
    sink = RecordingSink()
    outcome = run_chain(spec, _policies(clean), sink, sleep=lambda _: None, tokens_to=tokens)

    assert outcome.final is not None and plain.final is not None
    assert outcome.final.response == plain.final.response
    assert outcome.final.cost_usd == plain.final.cost_usd
    assert [(a.model, a.error.code if a.error else None) for a in sink.saved] == [
        ("gpt-4o-mini", "connection_error"),
        ("gpt-4o-mini", "connection_error"),
    ]
    markers = [event for event in tokens.events if event[0] != "token"]
    assert markers == [
        ("retry", "gpt-4o-mini", "connection_error"),
        ("fallback", "gpt-4o-mini", "claude-haiku-4-5", "connection_error"),
    ]
    # Half a reply before each marker, then the whole of the fallback's.
    after = tokens.events[tokens.events.index(markers[-1]) + 1 :]
    assert "".join(event[1] for event in after) == plain.final.response.content

"""Automatic model choice on the catalogue and on made-up models: context-window fit,
structured-output fit, the cheapest first, latency between equal prices, an open breaker last,
and the reason recorded."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.errors import NoModelFitsError, UnknownRoutingPolicyError
from shared.model_health import ModelHealth
from shared.model_routing import candidates, route
from shared.pricing import ModelPrice, price_for

SHORT = ["Classify this ticket: the printer is on fire."]


def _model(name: str, usd: str, window: int = 128_000, structured: bool = True) -> ModelPrice:
    return ModelPrice(name, "openai", Decimal(usd), Decimal(usd), (), window, structured)


def _route(models: list[ModelPrice], health: dict[str, ModelHealth] | None = None, **kw: object):
    args = {"contents": SHORT, "max_tokens": 256, "needs_structured_output": False, **kw}
    return route("auto", models, health=health or {}, **args)  # type: ignore[arg-type]


def test_the_cheapest_catalogue_model_goes_first_and_the_chain_follows_price() -> None:
    policy, models = candidates(None, {})
    routing = _route(models)
    assert policy == "auto"
    assert routing.chain[0] == "gpt-4o-mini"
    costs = [price_for(m).cost(100, 256) for m in routing.chain]
    assert costs == sorted(costs)
    # Every model fits a short prompt: the chain holds them all, so the hold covers the dearest.
    assert len(routing.chain) == 7 and routing.chain[-1] == "claude-sonnet-4-5"
    assert routing.reason.startswith("the cheapest model with a closed breaker that fits")
    assert routing.as_json()["chosen"] == "gpt-4o-mini"


def test_a_prompt_too_long_for_a_window_leaves_that_model_out() -> None:
    """About 150,000 tokens: the 128k models do not fit, the 200k and 1M ones do."""
    long_prompt = ["word " * 120_000]
    _, models = candidates(None, {})
    routing = _route(models, contents=long_prompt)
    assert "gpt-4o-mini" not in routing.chain and "gpt-4o" not in routing.chain
    assert routing.skipped["gpt-4o-mini"].startswith("context window 128000 < ")
    assert routing.chain[0] == "gpt-4.1-mini"
    with pytest.raises(NoModelFitsError) as refused:
        _route(models, contents=["word " * 5_000_000])
    assert refused.value.code == "no_model_fits"


def test_a_response_format_needs_native_structured_output() -> None:
    cheap = _model("cheap-prose", "0.1", structured=False)
    dear = _model("dear-json", "0.2")
    assert _route([cheap, dear]).chain == ("cheap-prose", "dear-json")
    routing = _route([cheap, dear], needs_structured_output=True)
    assert routing.chain == ("dear-json",)
    assert routing.skipped == {"cheap-prose": "no native structured output for the response_format"}
    assert "structured output" in routing.reason


def test_an_open_breaker_goes_last_and_the_reason_says_so() -> None:
    cheap, dear = _model("cheap", "0.1"), _model("dear", "0.2")
    health = {"openai:cheap": ModelHealth(breaker_open=True, latency_ms=100.0)}
    routing = _route([cheap, dear], health)
    assert routing.chain == ("dear", "cheap")
    assert routing.skipped == {"cheap": "circuit breaker open (kept last in the chain)"}
    everything_open = {
        "openai:cheap": ModelHealth(True, None),
        "openai:dear": ModelHealth(True, None),
    }
    assert _route([cheap, dear], everything_open).reason.startswith("every fitting model")


def test_a_lower_latency_wins_between_equal_prices_and_unmeasured_goes_last() -> None:
    slow, fast, unseen = _model("slow", "0.1"), _model("fast", "0.1"), _model("unseen", "0.1")
    health = {
        "openai:slow": ModelHealth(False, 900.0),
        "openai:fast": ModelHealth(False, 150.0),
    }
    routing = _route([unseen, slow, fast], health)
    assert routing.chain == ("fast", "slow", "unseen")
    assert routing.reason.endswith("faster than slow, unseen at the same price")


def test_a_named_policy_limits_the_candidates() -> None:
    policies = {"anthropic-only": ["claude-sonnet-4-5", "claude-haiku-4-5"]}
    policy, models = candidates("anthropic-only", policies)
    assert policy == "anthropic-only"
    assert _route(models).chain == ("claude-haiku-4-5", "claude-sonnet-4-5")
    with pytest.raises(UnknownRoutingPolicyError) as unknown:
        candidates("nope", policies)
    assert unknown.value.details["known"] == ["anthropic-only"]

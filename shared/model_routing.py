"""Automatic model choice for `model: "auto"`: from a routing policy's candidates (every
catalogue model, or a named policy of ROUTING_POLICIES), the chain a job walks.

1. A candidate must fit: its context window holds the prompt's estimated tokens plus the
   reply's `max_tokens`, and, for a job with a JSON response_format, it has native structured
   outputs. Those that do not fit are left out, each with its reason.
2. The ones that fit go cheapest first (this prompt's estimated cost), a lower observed latency
   first between equal prices, a model never measured last among its equals.
3. A model whose circuit breaker is open goes to the end of the chain rather than out of it: by
   the time the others have failed it may have recovered, and the worker skips it while it is
   still open, as it skips any model.

The job's model is the chain's head, its fallbacks the rest; the budget hold is reserved for the
chain's dearest member, as for any job. The choice and its reason are kept on the job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.cost_estimate import estimated_prompt_tokens
from shared.errors import NoModelFitsError, UnknownRoutingPolicyError
from shared.model_health import ModelHealth, latency_rank
from shared.pricing import PRICE_TABLE, ModelPrice, price_for

AUTO = "auto"


@dataclass(frozen=True)
class Routing:
    policy: str
    chain: tuple[str, ...]
    reason: str
    skipped: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "chosen": self.chain[0],
            "chain": list(self.chain),
            "reason": self.reason,
            "skipped": self.skipped,
        }


def candidates(
    policy: str | None, policies: Mapping[str, Sequence[str]]
) -> tuple[str, list[ModelPrice]]:
    """The policy's name and candidate models: the named one, or every catalogue model."""
    if policy is None:
        return AUTO, list(PRICE_TABLE.values())
    if policy not in policies:
        raise UnknownRoutingPolicyError(
            f"Unknown routing policy {policy!r}; the operator defines them in ROUTING_POLICIES.",
            details={"routing_policy": policy, "known": sorted(policies)},
        )
    return policy, [price_for(model) for model in policies[policy]]


def health_key(price: ModelPrice) -> str:
    return f"{price.provider}:{price.model}"


def route(
    policy: str,
    models: Sequence[ModelPrice],
    contents: Sequence[str],
    max_tokens: int,
    needs_structured_output: bool,
    health: Mapping[str, ModelHealth],
) -> Routing:
    """The chain for this prompt: every candidate that fits, in order, so the hold covers the
    dearest of them; and why. NoModelFitsError when no candidate fits."""
    prompt = estimated_prompt_tokens(contents)
    needed = prompt + max_tokens
    skipped: dict[str, str] = {}
    fitting: list[ModelPrice] = []
    for price in models:
        if price.context_window < needed:
            skipped[price.model] = f"context window {price.context_window} < {needed} tokens needed"
        elif needs_structured_output and not price.structured_output:
            skipped[price.model] = "no native structured output for the response_format"
        else:
            fitting.append(price)
    if not fitting:
        raise NoModelFitsError(
            f"No model of routing policy {policy!r} fits this request ({needed} tokens"
            f"{', structured output' if needs_structured_output else ''}); shorten it or name "
            "a model.",
            details={"routing_policy": policy, "needed_tokens": needed, "skipped": skipped},
        )

    def rank(price: ModelPrice) -> tuple[bool, Any, float]:
        state = health.get(health_key(price))
        is_open = state is not None and state.breaker_open
        return is_open, price.cost(prompt, max_tokens), latency_rank(state)

    ordered = sorted(fitting, key=rank)
    chain = tuple(p.model for p in ordered)
    for price in ordered:
        if rank(price)[0]:
            skipped[price.model] = "circuit breaker open (kept last in the chain)"
    return Routing(policy, chain, _reason(ordered, rank, needed, needs_structured_output), skipped)


def _reason(ordered: list[ModelPrice], rank: Any, needed: int, structured: bool) -> str:
    head = ordered[0]
    needs = f"{needed} tokens" + (" and structured output" if structured else "")
    if rank(head)[0]:
        return f"every fitting model's circuit breaker is open; {head.model} is the cheapest"
    reason = f"the cheapest model with a closed breaker that fits {needs}"
    ties = [p for p in ordered[1:] if not rank(p)[0] and rank(p)[1] == rank(head)[1]]
    if ties:
        reason += f", faster than {', '.join(p.model for p in ties)} at the same price"
    return reason

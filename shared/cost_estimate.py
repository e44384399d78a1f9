"""What a job may cost before it runs: a token estimate for rate limits, and a worst case for
budget reservations.

Two different numbers on purpose. Rate limits want a typical count (about four characters a
token, like the providers' own guidance), so they neither over- nor under-throttle. A budget
reservation must never be below the real charge, so it uses a true upper bound on input tokens:
every tokenizer promptq talks to emits at least one byte per token, so the UTF-8 length of the
text plus the chat format's per-message wrapping bounds the prompt from above.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from decimal import Decimal

from shared.pricing import price_for

CHARS_PER_TOKEN = 4
# Role and separator tokens the chat formats add around every message (OpenAI documents 3-4).
PER_MESSAGE_TOKENS = 4
# The bound's overhead: generous, since an under-reservation would let a budget be overspent.
PER_MESSAGE_TOKENS_BOUND = 16
# Tokens that prime the assistant's reply, counted once per request.
REPLY_PRIMING_TOKENS_BOUND = 16


def estimated_prompt_tokens(contents: Iterable[str]) -> int:
    """A typical prompt size in tokens: ceil(chars / 4) plus the wrapping of each message."""
    return sum(math.ceil(len(text) / CHARS_PER_TOKEN) + PER_MESSAGE_TOKENS for text in contents)


def estimated_tokens(contents: Iterable[str], max_tokens: int) -> int:
    """Tokens a request is charged against a tokens-per-minute limit: prompt estimate + reply."""
    return estimated_prompt_tokens(contents) + max_tokens


def prompt_tokens_upper_bound(contents: Iterable[str]) -> int:
    """Input tokens can never exceed this (a token is at least one byte of UTF-8)."""
    return (
        sum(len(text.encode()) + PER_MESSAGE_TOKENS_BOUND for text in contents)
        + REPLY_PRIMING_TOKENS_BOUND
    )


def worst_case_cost(
    models: Sequence[str], contents: Sequence[str], max_tokens: int, attempts: int
) -> Decimal:
    """The most `attempts` billed calls to the dearest of `models` can cost."""
    prompt_bound = prompt_tokens_upper_bound(contents)
    dearest = max(price_for(model).cost(prompt_bound, max_tokens) for model in models)
    return dearest * attempts


def reservation_usd(
    models: Sequence[str],
    contents: Sequence[str],
    max_tokens: int,
    attempts: int,
    max_cost_usd: Decimal | None,
) -> Decimal:
    """What admission holds against the user's budgets for one job until it settles.

    A job's own `max_cost_usd` caps it; the worst case caps that in turn, since holding more
    than a job can ever be charged would only refuse other work for nothing.
    """
    worst = worst_case_cost(models, contents, max_tokens, attempts)
    return worst if max_cost_usd is None else min(max_cost_usd, worst)

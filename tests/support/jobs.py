"""A queued job written the way admission writes it, for tests below the API."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.db import transaction
from shared.repositories.jobs import insert_held_job


def queued_job(
    user_id: str,
    held: Decimal = Decimal(0),
    window: int | None = None,
    dispatched: bool = False,
    **values: Any,
) -> uuid.UUID:
    """A small gpt-4o-mini job holding `held` of the user's budgets (as its reservation too);
    `values` adds or overrides Job attributes. Given the broker's `window`, dispatched at once
    when admission would; `dispatched`: stamped as dispatched (a worker may claim it); neither:
    it waits in the backlog."""
    if dispatched:
        values.setdefault("dispatched_at", datetime.now(UTC))
    with transaction() as session:
        job = insert_held_job(
            session,
            {
                "user_id": uuid.UUID(user_id),
                "model": "gpt-4o-mini",
                "priority": "normal",
                "request": {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
                "fallbacks": [],
                "meta": {},
                "reserved_usd": held,
                **values,
            },
            held,
            window,
        )
    assert job is not None, "the hold did not fit"
    return job.id


def succeeded_result(content: str) -> dict[str, Any]:
    """A succeeded job's `result` as the worker writes it (an OpenAI model's answer)."""
    return {
        "content": content,
        "finish_reason": "stop",
        "provider_finish_reason": "stop",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "cached": False,
    }

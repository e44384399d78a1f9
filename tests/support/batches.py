"""Batches written the way admission writes them, and webhook endpoints, for tests below the
API."""

from __future__ import annotations

import uuid
from decimal import Decimal

from shared.db import transaction
from shared.repositories.audit_log import CLI
from shared.repositories.batches import create_batch
from shared.repositories.budgets import reserve
from shared.repositories.webhook_endpoints import create_endpoint
from tests.conftest import Account

HOLD = Decimal("0.01")


def held_batch(account: Account, n: int = 3, window_s: int = 3600) -> uuid.UUID:
    """A batch of `n` queued jobs, each holding HOLD of the user's budgets."""
    user_id = uuid.UUID(account.user_id)
    job = {
        "model": "gpt-4o-mini",
        "priority": "low",
        "request": {"messages": [{"role": "user", "content": "x"}], "max_tokens": 5},
        "fallbacks": [],
        "meta": {},
        "reserved_usd": HOLD,
    }
    with transaction() as session:
        batch = create_batch(
            session,
            user_id=user_id,
            meta={"run": "t"},
            jobs=[{**job, "id": uuid.uuid4(), "custom_id": f"r{i}"} for i in range(n)],
            window_s=window_s,
        )
        assert reserve(session, user_id, HOLD * n)
        return batch.id


def subscribe(account: Account, events: list[str]) -> None:
    with transaction() as session:
        create_endpoint(
            session,
            uuid.UUID(account.user_id),
            url="https://hooks.example.com/in",
            event_types=events,
            description=None,
            enabled=True,
            actor=CLI,
        )

"""Helpers shared by the job, batch, admission and budget API tests."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update

from api.schemas.jobs import JobCreate
from shared.cost_estimate import reservation_usd
from shared.db import get_engine, transaction
from shared.models import ApiKey, Job, User
from shared.repositories.api_keys import hash_key
from shared.settings import get_settings
from tests.conftest import Account

VALID: dict[str, Any] = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


def auth(account: Account, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {account.key}", **extra}


def error_of(response: Any, status: int, code: str) -> dict[str, Any]:
    """The error body of `response`, after checking its status, shape and code."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.is_json
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["message"]
    return error


def set_key_limits(account: Account, rpm: int | None = None, tpm: int | None = None) -> None:
    with transaction() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == hash_key(account.key))
            .values(rpm_limit=rpm, tpm_limit=tpm)
        )


def set_budgets(
    account: Account, daily: Decimal | None = None, monthly: Decimal | None = None
) -> None:
    with transaction() as session:
        session.execute(
            update(User)
            .where(User.id == uuid.UUID(account.user_id))
            .values(daily_budget_usd=daily, monthly_budget_usd=monthly)
        )


def reservation_of(body: dict[str, Any]) -> Decimal:
    """What admission reserves for `body`, computed with the same estimate the API uses."""
    job = JobCreate.model_validate(body)
    return reservation_usd(
        job.models(),
        job.contents(),
        job.effective_max_tokens(),
        get_settings().max_billed_attempts,
        job.max_cost_usd,
    )


def job_count(account: Account) -> int:
    with transaction() as session:
        return session.scalar(
            select(func.count()).select_from(Job).where(Job.user_id == uuid.UUID(account.user_id))
        )


def reserved_total(account: Account) -> Decimal:
    with transaction() as session:
        return session.scalar(
            select(func.coalesce(func.sum(Job.reserved_usd), 0)).where(
                Job.user_id == uuid.UUID(account.user_id)
            )
        )


def open_transactions() -> list[str]:
    """Other sessions on the test database that are inside a transaction."""
    with get_engine().connect() as connection:
        return list(
            connection.scalars(
                text(
                    "SELECT state FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%'"
                )
            )
        )
